package server

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/rs/zerolog"
)

// HTTPServer is the http.Server Serve runs, with every timeout set from the
// Config. Exposed so that callers can inspect or adjust it before serving.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10, // headers here are short; the default 1 MiB only invites abuse
		ErrorLog:          log.New(logWriter{s.log}, "", 0),
	}
}

// logWriter sends net/http's own complaints (TLS noise, bad requests it
// answers itself) to the structured log.
type logWriter struct{ l zerolog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	msg := string(p)
	if n := len(msg); n > 0 && msg[n-1] == '\n' {
		msg = msg[:n-1]
	}
	w.l.Warn().Str("source", "net/http").Msg(msg)
	return len(p), nil
}

// Serve is ServeWithOps without a listener of its own for the probes and
// metrics: the API listener serves them too.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.ServeWithOps(ctx, ln, nil)
}

// ServeWithOps answers the API on ln and, if ops is not nil, health,
// readiness and metrics on ops (OpsHandler), until ctx ends; then it shuts
// down gracefully: /readyz turns 503 at once and every response from then
// on carries Connection: close, new connections are taken for DrainDelay
// more, then the API listener closes, in-flight requests finish (up to
// ShutdownTimeout) and finally the batchers answer whatever is still
// queued and stop. The ops listener closes last, so that probes see the
// drain rather than a refused connection. It returns nil after a clean
// shutdown.
//
// Keep-alive connections are the hazard: closing one the client is just
// sending a request on loses that request (the client sees EOF or a reset,
// and may not retry a POST). So during the delay the server does not close
// idle connections; it asks each client, in its next response, to close the
// connection itself, and clients then send their next request on a new
// connection, which the load balancer (having seen /readyz) can route
// elsewhere. Only when the delay ends are keep-alives disabled for good
// (http.Server.SetKeepAlivesEnabled(false), which also closes whatever is
// idle) and Shutdown called. A DrainDelay long enough for every client to
// send one more request is what makes this lossless; see the README.
func (s *Server) ServeWithOps(ctx context.Context, ln, ops net.Listener) error {
	hs := s.HTTPServer()
	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info().Str("addr", ln.Addr().String()).Msg("listening")
	var opsSrv *http.Server
	if ops != nil {
		opsSrv = s.HTTPServer()
		opsSrv.Handler = s.OpsHandler()
		go func() { errc <- opsSrv.Serve(ops) }()
		s.log.Info().Str("addr", ops.Addr().String()).Msg("ops listening")
	}

	select {
	case err := <-errc:
		// A listener failed on its own; nothing is in flight worth saving.
		hs.Close()
		if opsSrv != nil {
			opsSrv.Close()
		}
		_ = s.Close(context.Background())
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}

	start := time.Now()
	s.Drain()
	if d := s.cfg.DrainDelay; d > 0 {
		wait := s.drainWait
		if wait == nil {
			wait = time.Sleep
		}
		wait(d)
	}
	hs.SetKeepAlivesEnabled(false)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	if err := hs.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("server: shutdown: %w", err))
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("server: %w", err))
	}
	// Requests that were in flight are answered by now, which means their
	// forward passes are done; anything left in a queue belongs to handlers
	// cut off by the timeout, and Close still answers it.
	if err := s.Close(sctx); err != nil {
		errs = append(errs, fmt.Errorf("server: closing batchers: %w", err))
	}
	if opsSrv != nil {
		opsSrv.SetKeepAlivesEnabled(false)
		if err := opsSrv.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("server: ops shutdown: %w", err))
		}
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("server: ops: %w", err))
		}
	}
	err := errors.Join(errs...)
	ev := s.log.Info()
	if err != nil {
		ev = s.log.Error().Err(err)
	}
	ev.Dur("took", time.Since(start)).Msg("shut down")
	return err
}
