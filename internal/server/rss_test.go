package server

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPhotoDecodeRSS measures the process's peak RSS while several 48 Mpx
// phone photos (8000×6000 YCbCr 4:2:0 JPEGs, as phones write them) are
// fitted and classified at once, with the default limits and decode
// budget. It takes a minute and half a gigabyte, so it only runs when asked:
//
//	AESERVE_RSS=1 go test ./internal/server -run TestPhotoDecodeRSS -v -count=1
//
// (AESERVE_RSS_N sets how many photos at once, 4 by default;
// AESERVE_RSS_BUDGET the decode budget in pixels.) The peak is
// VmHWM from /proc/self/status, reset (clear_refs 5) once the photos are
// made, so it counts the server's work and the client's request bodies.
func TestPhotoDecodeRSS(t *testing.T) {
	if os.Getenv("AESERVE_RSS") == "" {
		t.Skip("set AESERVE_RSS=1 to measure peak RSS while decoding 48 Mpx photos")
	}
	n := 4
	if v := os.Getenv("AESERVE_RSS_N"); v != "" {
		fmt.Sscan(v, &n)
	}
	var budget int64
	if v := os.Getenv("AESERVE_RSS_BUDGET"); v != "" {
		fmt.Sscan(v, &budget)
	}
	e := newEnv(t, func(c *Config) { c.DecodeBudget = budget })
	const w, h = 8000, 6000
	grey := photoOf(t, 6, w, h, 3000, 2500, 1500)
	ycc := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	copy(ycc.Y, grey.Pix)
	for i := range ycc.Cb {
		ycc.Cb[i], ycc.Cr[i] = 128, 128
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, ycc, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	photo := buf.Bytes()
	grey, ycc = nil, nil
	t.Logf("photo: %d×%d = %d Mpx, JPEG %.1f MiB", w, h, w*h/1_000_000, float64(len(photo))/(1<<20))

	// One alone, for the time a decode takes.
	start := time.Now()
	r := e.post("/v1/classify?fit=true", ctJPEG, photo)
	wantStatus(t, r, http.StatusOK)
	t.Logf("one photo alone: %v, digit %d (want %d)", time.Since(start).Round(time.Millisecond), digitOf(t, r), mnistLabel(t, 6))

	runtime.GC()
	debug.FreeOSMemory()
	before := procStatus(t, "VmRSS")
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("resetting the peak RSS: %v", err)
	}
	start = time.Now()
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = e.post("/v1/classify?fit=true", ctJPEG, photo).StatusCode
		}()
	}
	wg.Wait()
	t.Logf("%d photos at once: %v, statuses %v", n, time.Since(start).Round(time.Millisecond), statuses)
	t.Logf("RSS before %s, peak (VmHWM) %s; decode budget %d pixels, GOGC %q, GOMEMLIMIT %q",
		before, procStatus(t, "VmHWM"), e.s.cfg.DecodeBudget, os.Getenv("GOGC"), os.Getenv("GOMEMLIMIT"))
}

func procStatus(t *testing.T, field string) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return ""
}
