package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// flaky answers 503 (with the given Retry-After, none if "") to the first
// fails requests, then 200 with an Images answer; it records every body.
type flaky struct {
	fails      int // -1: always 503
	retryAfter string
	plain      bool // a proxy's text/plain 503, not a problem document

	mu     sync.Mutex
	bodies [][]byte
	times  []time.Time
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.bodies = append(f.bodies, b)
	f.times = append(f.times, time.Now())
	n := len(f.bodies)
	f.mu.Unlock()
	if f.fails < 0 || n <= f.fails {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		if f.plain {
			http.Error(w, "no healthy upstream", http.StatusServiceUnavailable)
			return
		}
		problem(w, http.StatusServiceUnavailable, "the model's queue is full; retry later", nil)
		return
	}
	w.Header().Set("Content-Type", MediaJSON)
	json.NewEncoder(w).Encode(Images{Model: "ae", Fingerprint: fakeFP, Images: []string{"AA=="}})
}

func (f *flaky) attempts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.bodies)
}

func flakyClient(t *testing.T, f *flaky) *Client {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return &Client{BaseURL: srv.URL, HTTP: srv.Client()}
}

func status503(t *testing.T, err error) *Problem {
	t.Helper()
	var p *Problem
	if !errors.As(err, &p) || p.Status != http.StatusServiceUnavailable {
		t.Fatalf("error %v, want a 503 *Problem", err)
	}
	return p
}

// Two 503s asking for a second each, then success: the client waits as told
// and resends the same body.
func TestRetryHonoursRetryAfter(t *testing.T) {
	f := &flaky{fails: 2, retryAfter: "1"}
	c := flakyClient(t, f)
	out, err := c.Reconstruct(t.Context(), ImageOptions{Model: "ae"}, greyPNG(t, 9))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || f.attempts() != 3 {
		t.Fatalf("%d images after %d attempts, want 1 after 3", len(out), f.attempts())
	}
	for i, b := range f.bodies[1:] {
		if !bytes.Equal(b, f.bodies[0]) {
			t.Errorf("attempt %d sent a different body (%d bytes, first %d)", i+2, len(b), len(f.bodies[0]))
		}
	}
	// Not a timing test: only that the client did not come back before it
	// was told it might (the header has whole seconds; allow for rounding).
	for i := 1; i < len(f.times); i++ {
		if gap := f.times[i].Sub(f.times[i-1]); gap < 900*time.Millisecond {
			t.Errorf("attempt %d came %v after the previous one, before Retry-After: 1", i+1, gap)
		}
	}
}

func TestRetryGivesUpAfterMaxAttempts(t *testing.T) {
	for _, tc := range []struct {
		max, want int
	}{{0, DefaultMaxAttempts}, {1, 1}, {2, 2}} {
		// No Retry-After: the client backs off on its own, briefly.
		f := &flaky{fails: -1}
		c := flakyClient(t, f)
		c.MaxAttempts = tc.max
		_, err := c.Denoise(t.Context(), ImageOptions{}, greyPNG(t, 1))
		p := status503(t, err)
		if f.attempts() != tc.want {
			t.Errorf("MaxAttempts %d: %d attempts, want %d", tc.max, f.attempts(), tc.want)
		}
		if p.Detail != "the model's queue is full; retry later" || p.RetryAfter != 0 {
			t.Errorf("last problem %+v", p)
		}
		if err.Error() != "503 Service Unavailable: the model's queue is full; retry later" {
			t.Errorf("error reads %q", err)
		}
	}
}

// A load balancer's plain-text 503 is retried like the server's own.
func TestRetryPlainText503(t *testing.T) {
	f := &flaky{fails: 1, plain: true}
	c := flakyClient(t, f)
	if _, err := c.Reconstruct(t.Context(), ImageOptions{}, greyPNG(t, 1)); err != nil {
		t.Fatal(err)
	}
	if f.attempts() != 2 {
		t.Errorf("%d attempts, want 2", f.attempts())
	}
}

// Cancelling the context while the client waits for a retry ends the call at
// once, with an error that is both the context's and the server's.
func TestRetryStopsWhenContextEnds(t *testing.T) {
	f := &flaky{fails: -1, retryAfter: "4"}
	c := flakyClient(t, f)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Reconstruct(ctx, ImageOptions{}, greyPNG(t, 1))
	took := time.Since(start)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
	p := status503(t, err)
	if p.RetryAfter != 4*time.Second {
		t.Errorf("RetryAfter %v, want 4s", p.RetryAfter)
	}
	if took > 3*time.Second {
		t.Errorf("returned after %v: waited out the Retry-After instead of the context", took)
	}
	if f.attempts() != 1 {
		t.Errorf("%d attempts, want 1", f.attempts())
	}
	if !strings.Contains(err.Error(), "503 Service Unavailable") || !strings.HasSuffix(err.Error(), "context canceled") {
		t.Errorf("error reads %q", err)
	}
}

// The client does not start a wait that cannot end in time: neither one
// longer than MaxRetryWait nor one past the context's deadline.
func TestRetryDoesNotWaitInVain(t *testing.T) {
	for _, tc := range []struct {
		name       string
		retryAfter string
		maxWait    time.Duration
		deadline   time.Duration
	}{
		{"longer than the default MaxRetryWait", "60", 0, 0},
		{"longer than MaxRetryWait", "2", time.Second, 0},
		{"past the deadline", "3", 10 * time.Second, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &flaky{fails: 1, retryAfter: tc.retryAfter}
			c := flakyClient(t, f)
			c.MaxRetryWait = tc.maxWait
			ctx := t.Context()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}
			start := time.Now()
			_, err := c.Denoise(ctx, ImageOptions{}, greyPNG(t, 1))
			status503(t, err)
			if errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v: the context did not end", err)
			}
			if took := time.Since(start); took > 800*time.Millisecond || f.attempts() != 1 {
				t.Errorf("%d attempts in %v, want 1 and no wait", f.attempts(), took)
			}
		})
	}
}

// Only 503 is retried: other statuses, and transport errors, are final.
func TestRetryOnly503(t *testing.T) {
	var n int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		w.Header().Set("Retry-After", "1")
		problem(w, http.StatusTooManyRequests, "slow down", nil)
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL}
	var p *Problem
	if _, err := c.Models(t.Context()); !errors.As(err, &p) || p.Status != http.StatusTooManyRequests || p.RetryAfter != time.Second {
		t.Errorf("429: %v (%+v)", err, p)
	}
	if n != 1 {
		t.Errorf("429 sent %d times, want 1", n)
	}
}

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
		{"Sunday, 01-Mar-26 12:00:05 GMT", 5 * time.Second}, // RFC 850, obsolete but allowed
		{"Sun, 01 Mar 2026 11:59:00 GMT", 0},                // past
		{"-1", 0},
		{"1.5", 0},
		{"soon", 0},
		{"99999999999999999999", 0}, // beyond uint63: unreadable
		{"9223372036854775807", math.MaxInt64},
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	for attempt := 1; attempt < 70; attempt++ {
		full := min(retryBackoff<<min(attempt-1, 16), DefaultMaxRetryWait)
		for range 20 {
			if d := backoff(attempt, DefaultMaxRetryWait); d < full/2 || d > full {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempt, d, full/2, full)
			}
		}
	}
}
