package server

import (
	"context"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A client that sends a request and never reads the answer holds a handler
// only until WriteTimeout: the write fails, the handler returns and logs,
// and its goroutine is freed (goleak checks the rest at the end). The
// answer is larger than the socket buffers can take once both are clamped,
// so the server's write must block; without WriteTimeout it would block
// until the client went away and waitFor's guard would fail the test.
func TestSlowReaderFreed(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.RequestTimeout = 5 * time.Second
		c.WriteTimeout = 6 * time.Second
	})
	// Serve on a listener whose connections have small send buffers, as
	// Linux would otherwise take the whole answer into its own.
	e.ts.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.ts.URL = "http://" + ln.Addr().String()
	ctx, stop := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- e.s.Serve(ctx, smallSendBuffers{ln}) }()
	defer func() {
		stop()
		waitServed(t, served)
	}()
	imgs := make([][]byte, DefaultMaxImages)
	for i := range imgs {
		imgs[i] = mustPNG(t, i)
	}
	body, ctype := multipartBody(t, imageField, imgs...)
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(e.ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/reconstruct HTTP/1.1\r\nHost: aeserve\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s: slow-reader\r\n\r\n",
		ctype, len(body), HeaderRequestID)
	if _, err := conn.Write(body); err != nil {
		t.Fatal(err)
	}
	// Nothing is read: the handler must give up on its own.
	start := time.Now()
	var line map[string]any
	waitFor(t, "the slow reader's request to end", func() bool {
		for _, l := range e.logs.lines() {
			if l["request_id"] == "slow-reader" {
				line = l
			}
		}
		return line != nil
	})
	// The same request read normally: the slow reader got only part of it.
	full := e.post("/v1/reconstruct", ctype, body)
	wantStatus(t, full, 200)
	if b, _ := line["bytes"].(float64); int(b) >= len(full.body) {
		t.Errorf("log line %v: the whole answer (%d bytes) was written, so nothing blocked", line, len(full.body))
	}
	t.Logf("freed after %v with %v of %d bytes written", time.Since(start).Round(time.Millisecond), line["bytes"], len(full.body))
}

type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}
