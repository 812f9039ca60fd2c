package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aeserve/aeserve/internal/server"
)

// SIGTERM under load: the process, this test binary running main, is
// signalled while clients keep sending. Every request the server read (it
// logs each one) is answered to its client, 200 or 503, none cut off; the
// rest were never accepted (the connection was refused or reset from the
// listen backlog, which no server can answer); and it exits 0. The counts
// are logged.
func TestSIGTERMUnderLoad(t *testing.T) {
	img, err := os.ReadFile(filepath.Join("..", "..", "api", "testdata", "seven.png"))
	if err != nil {
		t.Fatal(err)
	}
	sink := newLogSink()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "AESERVE_TEST_RUN_MAIN=1",
		"AESERVE_TEST_ARGS=--addr 127.0.0.1:0 --models conv --workers 1 --max-batch 4")
	cmd.Stderr = sink.pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var base string
	select {
	case a := <-sink.addr:
		base = "http://" + a
	case err := <-exited:
		t.Fatalf("server exited before listening: %v", err)
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatal("server never listened")
	}
	for get(t, base+"/readyz") != http.StatusOK {
		time.Sleep(10 * time.Millisecond)
	}

	// A connection a request, so that a refused connection means "not
	// accepted" and nothing else.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	var (
		mu        sync.Mutex
		answered  = map[string]int{} // request ID → status
		failed    = map[string]error{}
		signalled bool
		sent      int
	)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("load-%d-%d", w, i)
				req, _ := http.NewRequest(http.MethodPost, base+"/v1/reconstruct", bytes.NewReader(img))
				req.Header.Set("Content-Type", "image/png")
				req.Header.Set(server.HeaderRequestID, id)
				resp, err := client.Do(req)
				mu.Lock()
				sent++
				if err != nil {
					failed[id] = err
					stop := signalled
					mu.Unlock()
					if stop {
						return // the server is going or gone
					}
					continue
				}
				mu.Unlock()
				_, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				if rerr != nil {
					failed[id] = rerr
				} else {
					answered[id] = resp.StatusCode
				}
				mu.Unlock()
			}
		})
	}
	// Some load first, then the signal, with requests in flight.
	for {
		mu.Lock()
		n := len(answered)
		mu.Unlock()
		if n >= 40 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	signalled = true
	mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v, want status 0", err)
		}
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatal("server did not exit after SIGTERM")
	}
	wg.Wait()
	sink.drain()

	// What the server read, it answered, and the client got.
	logged := map[string]float64{}
	for _, l := range sink.lines {
		if id, ok := l["request_id"].(string); ok && l["message"] == "request" {
			logged[id], _ = l["status"].(float64)
		}
	}
	counts := map[int]int{}
	for id, st := range logged {
		got, ok := answered[id]
		switch {
		case !ok:
			t.Errorf("request %s: logged %v by the server, but its client got %v", id, st, failed[id])
		case got != int(st):
			t.Errorf("request %s: logged %v, answered %d", id, st, got)
		case got != http.StatusOK && got != http.StatusServiceUnavailable:
			t.Errorf("request %s: status %d under shutdown", id, got)
		}
		counts[int(st)]++
	}
	for id, st := range answered {
		if _, ok := logged[id]; !ok {
			t.Errorf("request %s answered %d but not logged", id, st)
		}
	}
	refused := 0
	for _, err := range failed {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) {
			refused++
		}
	}
	if counts[http.StatusOK] < 40 {
		t.Errorf("%d answered 200, want the 40 before the signal at least", counts[http.StatusOK])
	}
	if !sink.has("shut down") {
		t.Error(`no "shut down" log line`)
	}
	t.Logf("SIGTERM under load: %d sent, %d answered 200, %d answered 503, %d not accepted (%d of them refused, reset or EOF before being read)",
		sent, counts[http.StatusOK], counts[http.StatusServiceUnavailable], len(failed), refused)
}
