package oip

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/aeserve/aeserve/api"
)

// The retry policy is package api's (api.Client's documentation), mirrored
// here for both transports: an Unavailable answer (503) is sent again, up to
// MaxAttempts sends in all, after its Retry-After or a short jittered
// backoff, unless the server asks for longer than MaxRetryWait or the
// context would end first.

// retryBackoff is the first wait after an Unavailable answer without
// Retry-After; it doubles with each attempt (then jittered, and capped by
// MaxRetryWait), as api.Client's.
const retryBackoff = 250 * time.Millisecond

// retry calls once until it returns anything but an Unavailable *Error, or
// the attempts run out, and returns that. what names the call in the error
// of a context that ends while waiting, which wraps the context's error and
// the last *Error.
func retry(ctx context.Context, maxAttempts int, maxWait time.Duration, what string, once func() error) error {
	if maxAttempts <= 0 {
		maxAttempts = api.DefaultMaxAttempts
	}
	if maxWait <= 0 {
		maxWait = api.DefaultMaxRetryWait
	}
	for attempt := 1; ; attempt++ {
		err := once()
		var e *Error
		if err == nil || !errors.As(err, &e) || e.Code != codes.Unavailable || attempt >= maxAttempts {
			return err
		}
		wait := e.RetryAfter
		if wait <= 0 {
			wait = backoff(attempt, maxWait)
		} else if wait > maxWait {
			return err // the server asks for longer than we may wait
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return err // the context would end first: no point sleeping
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("oip: %s: %w; gave up waiting to retry: %w", what, e, ctx.Err())
		}
	}
}

// backoff is the wait before retry number attempt when the server did not
// say: exponential from retryBackoff, jittered by up to half so that clients
// turned away together do not come back together.
func backoff(attempt int, limit time.Duration) time.Duration {
	d := retryBackoff << min(attempt-1, 16)
	d = min(d, limit)
	return d/2 + rand.N(d/2+1)
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date
// (RFC 9110, section 10.2.3). It is 0 when absent or unreadable, and for a
// date already past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseUint(v, 10, 63); err == nil {
		if secs > uint64(math.MaxInt64/int64(time.Second)) {
			return math.MaxInt64
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
