package server

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
)

// HTTPServer is the http.Server Serve runs, with every timeout set from the
// Config. Exposed so that callers can inspect or adjust it before serving.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         s.TLSConfig(), // nil without TLS; ServeAll serves TLS when it is set
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
	ev := w.l.Warn()
	if strings.HasPrefix(msg, "http: TLS handshake error") {
		// Port scanners, TCP health checks and clients that do not trust
		// the certificate: one a connection, not worth a warning each.
		ev = w.l.Debug()
	}
	ev.Str("source", "net/http").Msg(msg)
	return len(p), nil
}

// Listeners are what ServeAll serves on. API is required; the others are
// optional.
type Listeners struct {
	API  net.Listener // the HTTP API (Handler)
	Ops  net.Listener // health, readiness and metrics alone (OpsHandler)
	GRPC net.Listener // the Open Inference Protocol over gRPC (GRPCServer)
}

// Serve is ServeAll with the API listener alone: it serves the probes and
// metrics too.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.ServeAll(ctx, Listeners{API: ln})
}

// ServeAll answers the API, and the ops and gRPC listeners if given, until
// ctx ends. With a certificate (Config.TLSCertFile) the API and gRPC
// listeners serve TLS only; the ops listener is always plain HTTP, for
// probes and scrapers inside the cluster. Then it shuts down gracefully:
// /readyz turns 503 (and gRPC health NOT_SERVING) at once and every HTTP
// response from then on carries Connection: close, new connections are
// taken for DrainDelay more, then the API and gRPC listeners close,
// in-flight requests finish (up to ShutdownTimeout) and finally the
// batchers answer whatever is still queued and stop. The ops listener
// closes last, so that probes see the drain rather than a refused
// connection. It returns nil after a clean shutdown.
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
func (s *Server) ServeAll(ctx context.Context, l Listeners) error {
	hs := s.HTTPServer()
	errc := make(chan error, 3)
	tlsOn := hs.TLSConfig != nil // read before serving, which writes it (HTTP/2 set-up)
	go func() {
		if tlsOn {
			errc <- hs.ServeTLS(l.API, "", "") // the certificate comes from TLSConfig
			return
		}
		errc <- hs.Serve(l.API)
	}()
	s.log.Info().Str("addr", l.API.Addr().String()).Bool("tls", tlsOn).Msg("listening")
	var opsSrv *http.Server
	if l.Ops != nil {
		opsSrv = s.HTTPServer()
		opsSrv.Handler = s.OpsHandler()
		// Plain HTTP always: kubelet probes and Prometheus in the cluster.
		opsSrv.TLSConfig = nil
		go func() { errc <- opsSrv.Serve(l.Ops) }()
		s.log.Info().Str("addr", l.Ops.Addr().String()).Msg("ops listening")
	}
	var gs *grpc.Server
	grpcDone := make(chan error, 1)
	if l.GRPC != nil {
		gs = s.GRPCServer()
		go func() { grpcDone <- gs.Serve(l.GRPC) }()
		s.log.Info().Str("addr", l.GRPC.Addr().String()).Bool("tls", s.sec.certs != nil).Msg("grpc listening")
	}

	select {
	case err := <-errc:
		// A listener failed on its own; nothing is in flight worth saving.
		hs.Close()
		if opsSrv != nil {
			opsSrv.Close()
		}
		if gs != nil {
			gs.Stop()
		}
		_ = s.Close(context.Background())
		return fmt.Errorf("server: %w", err)
	case err := <-grpcDone:
		hs.Close()
		if opsSrv != nil {
			opsSrv.Close()
		}
		_ = s.Close(context.Background())
		return fmt.Errorf("server: grpc: %w", err)
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
	grpcStopped := make(chan struct{})
	if gs != nil {
		// GracefulStop waits for every RPC; past the shutdown timeout the
		// rest are cut off, as for HTTP.
		go func() {
			gs.GracefulStop()
			close(grpcStopped)
		}()
	} else {
		close(grpcStopped)
	}
	if err := hs.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("server: shutdown: %w", err))
	}
	select {
	case <-grpcStopped:
	case <-sctx.Done():
		gs.Stop()
		<-grpcStopped
		errs = append(errs, errors.New("server: grpc: shutdown timed out"))
	}
	if gs != nil {
		if err := <-grpcDone; !isGRPCStopped(err) {
			errs = append(errs, fmt.Errorf("server: grpc: %w", err))
		}
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
	ev.Stringer("took", time.Since(start).Round(time.Millisecond)).Msg("shut down")
	return err
}
