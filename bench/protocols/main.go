// Command protocols drives a running aeserve with one protocol at a time,
// from Go, so that /v1 PNG, V2 JSON, V2 binary and V2 gRPC are measured with
// the same client machinery, and prints one markdown row.
//
//	go run ./bench/protocols -mode v2binary -n 64 -c 8 -d 10s
//
// bench/protocols.sh runs every mode at 1 and 64 images per request.
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/aeserve/aeserve/api/inference"
	"github.com/aeserve/aeserve/internal/digit"
	"github.com/aeserve/aeserve/internal/train"
)

func main() {
	var (
		addr  = flag.String("addr", "http://127.0.0.1:8080", "HTTP base URL")
		gaddr = flag.String("grpc", "127.0.0.1:8081", "gRPC address")
		mode  = flag.String("mode", "v1png", "v1png, v2json, v2binary or grpc")
		model = flag.String("model", "denoise", "model (its full stage)")
		n     = flag.Int("n", 1, "images per request")
		c     = flag.Int("c", 64, "concurrent requests")
		d     = flag.Duration("d", 10*time.Second, "duration")
		warm  = flag.Duration("warmup", 2*time.Second, "warm-up, not measured")
		data  = flag.String("data", "../shared/mnist", "MNIST directory")
	)
	flag.Parse()
	if err := run(*addr, *gaddr, *mode, *model, *data, *n, *c, *d, *warm); err != nil {
		fmt.Fprintln(os.Stderr, "protocols:", err)
		os.Exit(1)
	}
}

// sender sends one request and reports whether it succeeded.
type sender func(ctx context.Context) error

func run(addr, gaddr, mode, model, data string, n, c int, d, warm time.Duration) error {
	set, err := train.Load(data, "t10k")
	if err != nil {
		return err
	}
	// Real digits, quantised as PNGs would carry them, the same for every mode.
	px := make([]float32, 0, n*784)
	var pngs [][]byte
	for i := range n {
		b, err := digit.EncodePNG(set.Image(9000 + i))
		if err != nil {
			return err
		}
		q, err := digit.Decode(b, digit.Limits{}, digit.Options{})
		if err != nil {
			return err
		}
		pngs = append(pngs, b)
		px = append(px, q...)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c}}
	post := func(ctx context.Context, url, ctype string, body []byte, hdr ...string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", ctype)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		return err
	}
	var send sender
	switch mode {
	case "v1png":
		var body bytes.Buffer
		ctype := "image/png"
		if n == 1 {
			body.Write(pngs[0])
		} else {
			mw := multipart.NewWriter(&body)
			for i, p := range pngs {
				h := textproto.MIMEHeader{}
				h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="img"; filename="%d.png"`, i))
				h.Set("Content-Type", "image/png")
				w, _ := mw.CreatePart(h)
				w.Write(p)
			}
			mw.Close()
			ctype = mw.FormDataContentType()
		}
		b := body.Bytes()
		send = func(ctx context.Context) error { return post(ctx, addr+"/v1/reconstruct?model="+model, ctype, b) }
	case "v2json":
		b, err := json.Marshal(map[string]any{"inputs": []any{map[string]any{
			"name": "images", "shape": []int{n, 784}, "datatype": "FP32", "data": px}}})
		if err != nil {
			return err
		}
		send = func(ctx context.Context) error {
			return post(ctx, addr+"/v2/models/"+model+"/infer", "application/json", b)
		}
	case "v2binary":
		hdr := fmt.Sprintf(`{"inputs":[{"name":"images","shape":[%d,784],"datatype":"FP32","parameters":{"binary_data_size":%d}}],"parameters":{"binary_data_output":true}}`,
			n, 4*len(px))
		b := append([]byte(hdr), fp32Bytes(px)...)
		send = func(ctx context.Context) error {
			return post(ctx, addr+"/v2/models/"+model+"/infer", "application/octet-stream", b, "Inference-Header-Content-Length", strconv.Itoa(len(hdr)))
		}
	case "grpc":
		conn, err := grpc.NewClient("passthrough:///"+gaddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer conn.Close()
		cl := inference.NewGRPCInferenceServiceClient(conn)
		req := &inference.ModelInferRequest{ModelName: model,
			Inputs:           []*inference.ModelInferRequest_InferInputTensor{{Name: "images", Datatype: "FP32", Shape: []int64{int64(n), 784}}},
			RawInputContents: [][]byte{fp32Bytes(px)}}
		send = func(ctx context.Context) error { _, err := cl.ModelInfer(ctx, req); return err }
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}

	if err := drive(send, c, warm, nil); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	var lat []time.Duration
	start := time.Now()
	if err := drive(send, c, d, &lat); err != nil {
		return err
	}
	el := time.Since(start).Seconds()
	slices.Sort(lat)
	q := func(f float64) float64 {
		return float64(lat[int(math.Min(float64(len(lat)-1), f*float64(len(lat))))].Microseconds()) / 1000
	}
	fmt.Printf("| %s | %d | %d | %.0f | %.0f | %.1f | %.1f |\n", mode, n, c, float64(len(lat))/el, float64(len(lat)*n)/el, q(0.5), q(0.99))
	return nil
}

// drive runs c workers sending for d; any failed request stops the run.
func drive(send sender, c int, d time.Duration, lat *[]time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			var mine []time.Duration
			for ctx.Err() == nil {
				t := time.Now()
				err := send(context.Background())
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					cancel()
					return
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			if lat != nil {
				*lat = append(*lat, mine...)
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return first
}

func fp32Bytes(v []float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}
