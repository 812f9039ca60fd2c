package server

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
)

// CORS (the Fetch standard's cross-origin protocol), for browser pages
// served from other origins, off unless Config.CORSOrigins names some. A
// request from a named origin gets Access-Control-Allow-Origin (and the
// response headers a page may read); a preflight from one is answered 204
// here, before routing (which would answer OPTIONS 405) and before the
// token check (browsers send preflights without credentials). Requests
// from any other origin get no CORS headers, so browsers keep their
// answers from the page, and their preflights go on to the 405 (or 401)
// they always got. No Access-Control-Allow-Credentials is ever sent: the
// API uses no cookies, and a page sends its bearer token in the
// Authorization header, which the preflight allows.

// CORS answers' fixed parts.
const (
	corsAllowHeaders  = "Authorization, Content-Type, Accept, Inference-Header-Content-Length, X-Request-ID"
	corsExposeHeaders = "X-Request-ID, X-Model, X-Model-Fingerprint, X-Denoiser, X-Denoiser-Fingerprint, " +
		"X-Seed, Inference-Header-Content-Length, Retry-After, WWW-Authenticate"
	// corsMaxAge is how long browsers may cache a preflight's answer: short,
	// so that an origin taken off the list loses access soon.
	corsMaxAge = 600
)

type corsPolicy struct {
	any     bool // "*": every origin, and no Vary: Origin
	origins map[string]bool
}

// ParseCORSOrigins reads a comma-separated list of origins as browsers send
// them in the Origin header, scheme://host[:port] (a default port and a
// trailing slash are dropped, scheme and host lower-cased), or * alone for
// every origin; an empty list is none. "null" is refused: sandboxed and
// file: pages all send it.
func ParseCORSOrigins(list string) ([]string, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil // off
	}
	var out []string
	for _, o := range strings.Split(list, ",") {
		o = strings.TrimSpace(o)
		n, err := normalizeOrigin(o)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	if _, err := newCORSPolicy(out); err != nil {
		return nil, err
	}
	return out, nil
}

func normalizeOrigin(o string) (string, error) {
	switch o {
	case "*":
		return o, nil
	case "":
		return "", errors.New("empty origin")
	case "null":
		return "", errors.New(`origin "null" is what sandboxed and file: pages send, and would let any of them in`)
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Opaque != "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", fmt.Errorf("origin %q: want scheme://host[:port], such as https://app.example.com", o)
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("origin %q: bad port %q", o, port)
		}
	}
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	switch {
	case port != "":
		host = net.JoinHostPort(host, port)
	case strings.Contains(host, ":"):
		host = "[" + host + "]"
	}
	return u.Scheme + "://" + host, nil
}

func newCORSPolicy(origins []string) (*corsPolicy, error) {
	p := &corsPolicy{origins: map[string]bool{}}
	for _, o := range origins {
		n, err := normalizeOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("server: CORS: %w", err)
		}
		if n == "*" {
			p.any = true
		}
		p.origins[n] = true
	}
	if p.any && len(p.origins) > 1 {
		return nil, errors.New("server: CORS: * allows every origin; give it alone, or name the origins")
	}
	return p, nil
}

func (p *corsPolicy) allows(origin string) bool {
	return origin != "" && (p.any || p.origins[origin])
}

// cors is the API router's CORS middleware (none without origins).
func (s *Server) cors(next http.Handler) http.Handler {
	p := s.sec.cors
	if p == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if !p.any {
			// Caches must keep the answers for each origin apart.
			h.Add("Vary", "Origin")
		}
		origin := r.Header.Get("Origin")
		if !p.allows(origin) {
			next.ServeHTTP(w, r)
			return
		}
		allow := origin
		if p.any {
			allow = "*"
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			path := routePath(r)
			var methods []string
			route := ""
			for _, m := range allMethods {
				if pat := s.router.Find(chi.NewRouteContext(), m, path); pat != "" && m != http.MethodOptions {
					methods, route = append(methods, m), pat
				}
			}
			if len(methods) == 0 {
				next.ServeHTTP(w, r) // no such route: its 404
				return
			}
			infoOf(r.Context()).route = route
			h.Add("Vary", "Access-Control-Request-Method, Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Origin", allow)
			h.Set("Access-Control-Allow-Methods", strings.Join(methods, ", "))
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", strconv.Itoa(corsMaxAge))
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Allow-Origin", allow)
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		next.ServeHTTP(w, r)
	})
}
