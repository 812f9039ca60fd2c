package server

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The switches for a server that may face a network, each off by default:
// TLS on the API and gRPC listeners (tls.go), bearer tokens on /v1, /v2 and
// gRPC inference (auth.go), and CORS for named origins (cors.go). The ops
// listener (--metrics-addr) has none of them: it serves kubelet probes and
// Prometheus inside the cluster, in plain HTTP, and a NetworkPolicy keeps
// clients off it.

// DefaultReloadCheck is how often, at most, the TLS certificate and key and
// the token file are looked at (one stat each) for changes. They are looked
// at on use (a TLS handshake, a request needing a token), so an idle server
// does nothing, and a change is in effect at the first use after it.
const DefaultReloadCheck = time.Second

// security is what New makes of the Config's security fields.
type security struct {
	certs  *certSource  // nil: no TLS
	tokens *tokenSource // nil: no authentication
	cors   *corsPolicy  // nil: no CORS headers
}

func (s *Server) setupSecurity() error {
	c := &s.cfg
	every := c.reloadCheck
	if every == 0 {
		every = DefaultReloadCheck
	}
	if every < 0 {
		every = 0 // tests: look on every use
	}
	var err error
	switch {
	case (c.TLSCertFile == "") != (c.TLSKeyFile == ""):
		return fmt.Errorf("server: TLS needs both a certificate and a key file (got certificate %q, key %q)", c.TLSCertFile, c.TLSKeyFile)
	case c.TLSCertFile != "":
		if s.sec.certs, err = newCertSource(c.TLSCertFile, c.TLSKeyFile, every, s.log, s.reg); err != nil {
			return err
		}
	}
	if c.AuthTokensFile != "" {
		if s.sec.tokens, err = newTokenSource(c.AuthTokensFile, every, s.log, s.reg); err != nil {
			return err
		}
	}
	if len(c.CORSOrigins) > 0 {
		if s.sec.cors, err = newCORSPolicy(c.CORSOrigins); err != nil {
			return err
		}
	}
	return nil
}

// fileWatch tells when files have changed, with no goroutine and no inotify:
// its owner asks on use (check), and at most once per interval the files are
// stat'ed and compared with what was seen before (same file, size and
// modification time). A file replaced by a rename, as Kubernetes updates a
// mounted Secret, is a new file even with the same size and time.
type fileWatch struct {
	paths []string
	every time.Duration
	next  atomic.Int64 // no look before this (Unix ns)
	mu    sync.Mutex   // one look at a time; the others go on
	seen  []os.FileInfo
}

// newFileWatch notes the files as they are now: call it before reading
// them, so that a change made in between is seen at the next look.
func newFileWatch(every time.Duration, paths ...string) *fileWatch {
	w := &fileWatch{paths: paths, every: every}
	w.seen = w.stat()
	return w
}

func (w *fileWatch) stat() []os.FileInfo {
	out := make([]os.FileInfo, len(w.paths))
	for i, p := range w.paths {
		out[i], _ = os.Stat(p) // a missing file is nil: a change too
	}
	return out
}

// check runs reload if a file changed since the last look. A caller that
// finds another one looking, or the interval not yet over, returns at once.
// reload runs once per change, whatever it makes of it: a bad file is
// reported once, and read again only when it changes again.
func (w *fileWatch) check(reload func()) {
	now := time.Now().UnixNano()
	if now < w.next.Load() || !w.mu.TryLock() {
		return
	}
	defer w.mu.Unlock()
	if now < w.next.Load() {
		return
	}
	w.next.Store(now + int64(w.every))
	cur := w.stat()
	if slices.EqualFunc(cur, w.seen, sameFile) {
		return
	}
	w.seen = cur
	reload()
}

func sameFile(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
