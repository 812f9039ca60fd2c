// Command soak drives a running aeserve at moderate load for a bounded
// time, with a mix of routes and some bad requests, and checks that it
// holds steady: after warm-up, resident memory grows less than -max-growth,
// and once the load stops the goroutines return to their idle count
// (within -goroutine-slack). bench/soak.sh builds and starts the server and
// runs this against it; it is outside CI's time budget.
//
//	go run ./bench/soak -url http://127.0.0.1:8080 -metrics http://127.0.0.1:9090 -duration 3m
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aeserve/aeserve/internal/digit"
)

func main() {
	base := flag.String("url", "http://127.0.0.1:8080", "the server's API")
	metrics := flag.String("metrics", "", "where /metrics is served (default: -url)")
	png := flag.String("png", "api/testdata/seven.png", "a 28×28 digit")
	duration := flag.Duration("duration", 4*time.Minute, "how long to load the server, warm-up included")
	warmup := flag.Duration("warmup", time.Minute, "load before the RSS baseline is taken")
	conc := flag.Int("c", 8, "concurrent clients")
	rate := flag.Float64("rate", 200, "requests a second, all clients together (moderate: well under capacity)")
	maxGrowth := flag.Float64("max-growth", 0.10, "largest RSS growth after warm-up, as a fraction")
	slack := flag.Int("goroutine-slack", 5, "goroutines allowed above or below the idle count")
	flag.Parse()
	if *metrics == "" {
		*metrics = *base
	}
	if err := run(*base, *metrics, *png, *duration, *warmup, *conc, *rate, *maxGrowth, *slack); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

type request struct {
	name, path, ctype string
	body              []byte
	want              int
}

func run(base, metricsURL, pngFile string, duration, warmup time.Duration, conc int, rate, maxGrowth float64, slack int) error {
	img, err := os.ReadFile(pngFile)
	if err != nil {
		return err
	}
	px, err := digit.Decode(img, digit.Limits{}, digit.Options{})
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 30 * time.Second}
	idleG, _, err := sample(client, metricsURL)
	if err != nil {
		return fmt.Errorf("idle sample: %w", err)
	}
	// The requests: the routes a client uses, and some a client gets wrong.
	latent, err := post(client, base+"/v1/encode?model=conv", "image/png", img, http.StatusOK)
	if err != nil {
		return err
	}
	var l map[string]any
	if err := json.Unmarshal(latent, &l); err != nil {
		return err
	}
	l["shape"] = []int{1}
	badShape, _ := json.Marshal(l)
	mp, mpType := multipartOf(img, img, img, img)
	v2, _ := json.Marshal(map[string]any{"inputs": []any{map[string]any{
		"name": "images", "datatype": "FP32", "shape": []int{1, len(px)}, "data": px}}})
	reqs := []request{
		{"encode", "/v1/encode?model=conv", "image/png", img, 200},
		{"reconstruct batch", "/v1/reconstruct?model=conv", mpType, mp, 200},
		{"denoise", "/v1/denoise", "image/png", img, 200},
		{"decode", "/v1/decode", "application/json", latent, 200},
		{"v2 infer", "/v2/models/conv/infer", "application/json", v2, 200},
		{"truncated png", "/v1/encode?model=conv", "image/png", img[:len(img)/2], 400},
		{"wrong latent shape", "/v1/decode", "application/json", badShape, 422},
		{"unknown model", "/v1/encode?model=nope", "image/png", img, 404},
	}

	ctx, stop := context.WithTimeout(context.Background(), duration)
	defer stop()
	var sent, unexpected atomic.Int64
	var firstBad sync.Once
	var wg sync.WaitGroup
	// One ticket a request, at the rate asked, shared by the clients.
	tickets := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tickets.Stop()
	for w := range conc {
		wg.Go(func() {
			for i := w; ctx.Err() == nil; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tickets.C:
				}
				r := reqs[i%len(reqs)]
				sent.Add(1)
				if _, err := post(client, base+r.path, r.ctype, r.body, r.want); err != nil {
					unexpected.Add(1)
					firstBad.Do(func() { fmt.Fprintf(os.Stderr, "%s: %v\n", r.name, err) })
				}
			}
		})
	}
	time.Sleep(min(warmup, duration))
	_, baseRSS, err := sample(client, metricsURL)
	if err != nil {
		return err
	}
	peak := baseRSS
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			g, rss, err := sample(client, metricsURL)
			if err == nil {
				peak = max(peak, rss)
				fmt.Printf("%s  requests %d  goroutines %d  rss %.1f MiB\n", time.Now().Format("15:04:05"), sent.Load(), g, rss/(1<<20))
			}
		}
	}
	wg.Wait()
	client.CloseIdleConnections()
	time.Sleep(5 * time.Second) // idle connections time out, handlers finish
	endG, endRSS, err := sample(client, metricsURL)
	if err != nil {
		return err
	}
	growth := (max(peak, endRSS) - baseRSS) / baseRSS
	fmt.Printf("soak: %d requests in %v with %d clients at up to %.0f/s, %d unexpected answers\n", sent.Load(), duration, conc, rate, unexpected.Load())
	fmt.Printf("soak: RSS after warm-up %.1f MiB, peak %.1f MiB, at the end %.1f MiB: growth %.1f%% (limit %.0f%%)\n",
		baseRSS/(1<<20), peak/(1<<20), endRSS/(1<<20), 100*growth, 100*maxGrowth)
	fmt.Printf("soak: goroutines idle %d, after the load %d (limit ±%d)\n", idleG, endG, slack)
	switch {
	case unexpected.Load() > 0:
		return fmt.Errorf("%d unexpected answers", unexpected.Load())
	case growth > maxGrowth:
		return fmt.Errorf("RSS grew %.1f%% after warm-up", 100*growth)
	case endG > idleG+slack || endG < idleG-slack:
		return fmt.Errorf("goroutines %d after the load, %d idle", endG, idleG)
	}
	return nil
}

// post sends one request and checks its status.
func post(c *http.Client, url, ctype string, body []byte, want int) ([]byte, error) {
	resp, err := c.Post(url, ctype, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("status %d, want %d: %.200s", resp.StatusCode, want, b)
	}
	return b, nil
}

// sample reads go_goroutines and process_resident_memory_bytes.
func sample(c *http.Client, base string) (goroutines int, rss float64, err error) {
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	found := 0
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		switch name {
		case "go_goroutines":
			g, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, 0, err
			}
			goroutines, found = int(g), found+1
		case "process_resident_memory_bytes":
			if rss, err = strconv.ParseFloat(v, 64); err != nil {
				return 0, 0, err
			}
			found++
		}
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("%s/metrics lacks go_goroutines or process_resident_memory_bytes", base)
	}
	return goroutines, rss, sc.Err()
}

func multipartOf(files ...[]byte) ([]byte, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i, f := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="img"; filename="%d.png"`, i))
		h.Set("Content-Type", "image/png")
		w, _ := mw.CreatePart(h)
		w.Write(f)
	}
	mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}
