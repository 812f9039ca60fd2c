package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/grpc/credentials"
)

// certSource is the API's and gRPC's certificate: loaded at startup (a bad
// pair stops the server), then served to every handshake and re-read when
// either file changes. A pair that fails to load then (unreadable, not PEM,
// key not matching the certificate, or a half-written update) leaves the
// previous certificate in place, logs an error and counts it, and is tried
// again when a file changes again: a certificate and key written one after
// the other load once the second is there.
type certSource struct {
	certFile, keyFile string
	watch             *fileWatch
	cert              atomic.Pointer[tls.Certificate]
	log               zerolog.Logger

	reloadErrors prometheus.Counter
	notAfter     prometheus.Gauge
}

func newCertSource(certFile, keyFile string, every time.Duration, log zerolog.Logger, reg prometheus.Registerer) (*certSource, error) {
	c := &certSource{certFile: certFile, keyFile: keyFile, log: log,
		watch: newFileWatch(every, certFile, keyFile),
		reloadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aeserve_tls_reload_errors_total",
			Help: "Changes of the TLS certificate or key file that could not be loaded; the previous certificate stays in use.",
		}),
		notAfter: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aeserve_tls_certificate_not_after_timestamp_seconds",
			Help: "When the TLS certificate being served expires (its NotAfter, Unix seconds).",
		}),
	}
	cert, err := loadPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	for _, m := range []prometheus.Collector{c.reloadErrors, c.notAfter} {
		if err := reg.Register(m); err != nil {
			return nil, fmt.Errorf("server: register TLS metrics: %w", err)
		}
	}
	c.set(cert)
	ev := log.Info()
	if time.Now().After(cert.Leaf.NotAfter) {
		ev = log.Warn()
	}
	ev.Str("cert", certFile).Str("subject", cert.Leaf.Subject.String()).Time("not_after", cert.Leaf.NotAfter).Msg("TLS certificate loaded")
	return c, nil
}

func loadPair(certFile, keyFile string) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s with key %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("TLS certificate %s: %w", certFile, err)
		}
	}
	return &cert, nil
}

func (c *certSource) set(cert *tls.Certificate) {
	c.cert.Store(cert)
	c.notAfter.Set(float64(cert.Leaf.NotAfter.Unix()))
}

// getCertificate is tls.Config.GetCertificate: the current certificate,
// after a look at the files (at most once per interval).
func (c *certSource) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.watch.check(c.reload)
	return c.cert.Load(), nil
}

func (c *certSource) reload() {
	cert, err := loadPair(c.certFile, c.keyFile)
	if err != nil {
		c.reloadErrors.Inc()
		c.log.Error().Err(err).Msg("TLS certificate not reloaded: serving the previous one")
		return
	}
	c.set(cert)
	c.log.Info().Str("cert", c.certFile).Str("subject", cert.Leaf.Subject.String()).Time("not_after", cert.Leaf.NotAfter).
		Msg("TLS certificate reloaded")
}

// TLSConfig is the TLS configuration of the API and gRPC listeners, or nil
// when the server has no certificate (Config.TLSCertFile). ServeAll uses
// it; it is exposed for callers serving the handlers on listeners of their
// own.
func (s *Server) TLSConfig() *tls.Config {
	if s.sec.certs == nil {
		return nil
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.sec.certs.getCertificate,
	}
}

// grpcTLS is gRPC's transport credentials from tc (which adds h2 to the
// protocols it offers).
func grpcTLS(tc *tls.Config) credentials.TransportCredentials { return credentials.NewTLS(tc) }
