package oip

import (
	"math"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/aeserve/aeserve/api"
)

// The same cases as package api's: the policy is mirrored.
func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"1", time.Second},
		{" 120 ", 2 * time.Minute},
		{"Sun, 01 Mar 2026 12:01:30 GMT", 90 * time.Second},
		{"Sunday, 01-Mar-26 12:00:05 GMT", 5 * time.Second},
		{"Sun, 01 Mar 2026 11:59:00 GMT", 0},
		{"-1", 0},
		{"1.5", 0},
		{"soon", 0},
		{"99999999999999999999", 0},
		{"9223372036854775807", math.MaxInt64},
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	for attempt := 1; attempt < 40; attempt++ {
		full := min(retryBackoff<<min(attempt-1, 16), api.DefaultMaxRetryWait)
		for range 50 {
			if d := backoff(attempt, api.DefaultMaxRetryWait); d < full/2 || d > full {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempt, d, full/2, full)
			}
		}
	}
}

// HTTP statuses and gRPC codes map onto each other as the server maps them.
func TestStatusCodes(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   codes.Code
	}{
		{http.StatusBadRequest, codes.InvalidArgument},
		{http.StatusNotFound, codes.NotFound},
		{http.StatusServiceUnavailable, codes.Unavailable},
		{http.StatusTooManyRequests, codes.ResourceExhausted},
		{http.StatusInternalServerError, codes.Internal},
		{499, codes.Canceled},
	} {
		if c := codeOf(tc.status); c != tc.code {
			t.Errorf("codeOf(%d) = %v, want %v", tc.status, c, tc.code)
		}
		if s := statusOf(tc.code); s != tc.status {
			t.Errorf("statusOf(%v) = %d, want %d", tc.code, s, tc.status)
		}
	}
	for _, s := range []int{http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity} {
		if c := codeOf(s); c != codes.InvalidArgument {
			t.Errorf("codeOf(%d) = %v, want InvalidArgument as the server's", s, c)
		}
	}
}

func TestErrorKind(t *testing.T) {
	for msg, want := range map[string]string{
		"unknown-model: no model named \"x\"": "unknown-model",
		"malformed: input \"images\": …":      "malformed",
		"no healthy upstream":                 "",
		"Bad: thing":                          "",
		": nothing":                           "",
	} {
		if k := (&Error{Message: msg}).Kind(); k != want {
			t.Errorf("Kind of %q = %q, want %q", msg, k, want)
		}
	}
}
