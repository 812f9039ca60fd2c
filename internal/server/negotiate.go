package server

import (
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// Media types the server speaks.
const (
	ctJSON      = "application/json"
	ctPNG       = "image/png"
	ctBinary    = "application/octet-stream"
	ctMultipart = "multipart/form-data"
	ctYAML      = "application/yaml"
	ctProblem   = "application/problem+json"
)

type acceptRange struct {
	typ, sub string
	q        float64
}

// parseAccept reads an Accept header (RFC 9110 §12.5.1). Ranges it cannot
// parse are skipped rather than failing the request: a client with a quirky
// header still gets the default type.
func parseAccept(header string) []acceptRange {
	var out []acceptRange
	for _, part := range strings.Split(header, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		mt, params, err := mime.ParseMediaType(part)
		if err != nil {
			continue
		}
		typ, sub, ok := strings.Cut(mt, "/")
		if !ok || typ == "" || sub == "" || (typ == "*" && sub != "*") {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				continue
			}
			q = f
		}
		out = append(out, acceptRange{typ: typ, sub: sub, q: q})
	}
	return out
}

// qValue is the q of the most specific range matching offer, 0 if none.
func qValue(ranges []acceptRange, offer string) float64 {
	typ, sub, _ := strings.Cut(offer, "/")
	best, spec := 0.0, -1
	for _, r := range ranges {
		s := -1
		switch {
		case r.typ == typ && r.sub == sub:
			s = 2
		case r.typ == typ && r.sub == "*":
			s = 1
		case r.typ == "*" && r.sub == "*":
			s = 0
		}
		if s > spec {
			best, spec = r.q, s
		}
	}
	return best
}

// negotiate picks the offer the client prefers; on a tie, or with no Accept
// header, the earlier offer (the server's preference) wins. ok is false when
// the client accepts none of them (406).
func negotiate(r *http.Request, offers ...string) (string, bool) {
	header := strings.Join(r.Header.Values("Accept"), ",")
	if strings.TrimSpace(header) == "" {
		return offers[0], true
	}
	ranges := parseAccept(header)
	if len(ranges) == 0 {
		return offers[0], true
	}
	best, bestQ := "", 0.0
	for _, o := range offers {
		if q := qValue(ranges, o); q > bestQ {
			best, bestQ = o, q
		}
	}
	return best, best != ""
}

// mustNegotiate is negotiate returning the 406 problem.
func mustNegotiate(r *http.Request, offers ...string) (string, error) {
	ct, ok := negotiate(r, offers...)
	if !ok {
		return "", problemf(http.StatusNotAcceptable, kindNotAcceptable,
			"Accept %q matches none of the types this endpoint can send: %s",
			strings.Join(r.Header.Values("Accept"), ", "), strings.Join(offers, ", "))
	}
	return ct, nil
}

// mediaType is the request's Content-Type without parameters, lowercased.
func mediaType(r *http.Request) (string, map[string]string) {
	ct := r.Header.Get("Content-Type")
	switch ct {
	case "":
		return "", nil
	case ctPNG, ctJSON, ctBinary, "image/jpeg", "image/gif":
		// What nearly every request sends, exactly: mime.ParseMediaType
		// would give it back as it is, with no parameters, after
		// allocating a map and a lowercased copy.
		return ct, nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		// An unparsable type cannot be one we take: 415 says so.
		return strings.ToLower(strings.TrimSpace(ct)), nil
	}
	return mt, params
}

func unsupportedMediaType(got string, want ...string) *Problem {
	if got == "" {
		got = "none"
	}
	p := problemf(http.StatusUnsupportedMediaType, kindMediaType,
		"Content-Type %s is not accepted here; send one of %s", got, strings.Join(want, ", "))
	p.Accept = want
	return p
}
