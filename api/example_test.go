package api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"io/fs"
	"log"
	"net/http/httptest"
	"os"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/internal/server"
	"github.com/aeserve/aeserve/weights"
)

// exampleServer serves the embedded models on loopback, as `go run
// ./cmd/server` does on :8080, and returns its URL and a function that stops
// it. The examples run against it, so `go test` checks their output.
func exampleServer() (baseURL string, stop func()) {
	s, err := server.New(server.Config{})
	if err != nil {
		log.Fatal(err)
	}
	entries, err := fs.ReadDir(weights.FS, ".")
	if err != nil {
		log.Fatal(err)
	}
	var ms []*model.Model
	for _, e := range entries {
		if e.IsDir() {
			m, err := model.LoadFS(weights.FS, e.Name())
			if err != nil {
				log.Fatal(err)
			}
			ms = append(ms, m)
		}
	}
	if err := s.Load(ms...); err != nil {
		log.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	return ts.URL, func() {
		ts.Close()
		s.Close(context.Background())
	}
}

func readFile(name string) []byte {
	b, err := os.ReadFile(name)
	if err != nil {
		log.Fatal(err)
	}
	return b
}

func ExampleClient_Encode() {
	url, stop := exampleServer()
	defer stop()

	c := &api.Client{BaseURL: url} // e.g. "http://localhost:8080"
	seven, two := readFile("testdata/seven.png"), readFile("testdata/two.png")
	l, err := c.Encode(context.Background(), api.EncodeOptions{}, seven, two)
	if err != nil {
		log.Fatal(err)
	}
	wire, err := l.MarshalBinary() // what travels to a decoder: 6,287 bytes an image
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(l.Model, l.Shape, len(wire), "bytes")

	// A smaller code, as JSON: the same numbers, for people and scripts.
	l, err = c.Encode(context.Background(), api.EncodeOptions{Model: "dense", Encoding: api.LatentJSON}, seven)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(l.Model, l.Shape, len(l.Data), "numbers")
	// Output:
	// conv [2 32 7 7] 12559 bytes
	// dense [1 32] 32 numbers
}

func ExampleClient_Decode() {
	url, stop := exampleServer()
	defer stop()

	// The sender encodes a digit into compact's int8 latent and ships it...
	sender := &api.Client{BaseURL: url}
	l, err := sender.Encode(context.Background(), api.EncodeOptions{Model: "compact", Quant: api.DTypeInt8}, readFile("testdata/seven.png"))
	if err != nil {
		log.Fatal(err)
	}
	wire, err := l.MarshalBinary()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(wire), "bytes")

	// ...and the receiver decodes it: the fingerprint in the latent picks
	// the model, and a latent from other weights is refused (409).
	receiver := &api.Client{BaseURL: url}
	var got api.Latent
	if err := got.UnmarshalBinary(wire); err != nil {
		log.Fatal(err)
	}
	pngs, err := receiver.Decode(context.Background(), &got, api.DecodeOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for _, b := range pngs {
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(img.Bounds().Dx(), "×", img.Bounds().Dy())
	}
	// Output:
	// 47 bytes
	// 28 × 28
}

func ExampleClient_Reconstruct() {
	url, stop := exampleServer()
	defer stop()

	c := &api.Client{BaseURL: url}
	out, err := c.Reconstruct(context.Background(), api.ImageOptions{Model: "deep"}, readFile("testdata/seven.png"))
	if err != nil {
		log.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(out[0]))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(out), "image,", img.Bounds().Dx(), "×", img.Bounds().Dy())
	// Output: 1 image, 28 × 28
}

func ExampleClient_Denoise() {
	url, stop := exampleServer()
	defer stop()

	c := &api.Client{BaseURL: url}
	ctx := context.Background()
	clean, err := c.Denoise(ctx, api.ImageOptions{}, readFile("testdata/noisy-seven.png"))
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.Classify(ctx, api.ClassifyOptions{}, clean...)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("denoised, then classified as", res.Results[0].Digit)
	// Output: denoised, then classified as 7
}

func ExampleClient_Classify() {
	url, stop := exampleServer()
	defer stop()

	c := &api.Client{BaseURL: url}
	res, err := c.Classify(context.Background(), api.ClassifyOptions{Denoise: true},
		readFile("testdata/seven.png"), readFile("testdata/noisy-seven.png"), readFile("testdata/two.png"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Model, "after", res.Denoiser)
	for _, r := range res.Results {
		fmt.Println(r.Digit, r.Probabilities[r.Digit] > 0.9)
	}
	// Output:
	// classifier after denoise
	// 7 true
	// 7 true
	// 2 true
}

func ExampleClient_Models() {
	url, stop := exampleServer()
	defer stop()

	c := &api.Client{BaseURL: url}
	list, err := c.Models(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range list.Models {
		if m.Task == api.TaskClassifier {
			fmt.Println(m.Name, m.Task, m.Classes, "classes")
			continue
		}
		fmt.Println(m.Name, m.Task, m.LatentShape, m.Code.BinaryBytes, "bytes", m.TrainedOnNoise)
	}
	fmt.Println("default:", list.Default)
	// Output:
	// classifier classifier 10 classes
	// compact autoencoder [32] 141 bytes false
	// contractive autoencoder [64] 269 bytes false
	// contractive-unpenalised autoencoder [64] 269 bytes false
	// conv autoencoder [32 7 7] 6287 bytes false
	// deep autoencoder [32] 141 bytes false
	// denoise autoencoder [32 7 7] 6287 bytes true
	// dense autoencoder [32] 141 bytes false
	// sparse autoencoder [128] 526 bytes false
	// sparse-unpenalised autoencoder [128] 526 bytes false
	// vae autoencoder [20] 93 bytes false
	// vae2 autoencoder [2] 21 bytes false
	// default: conv
}

// A variational autoencoder draws new digits from its prior: the same seed,
// the same digits. Without a seed the server chooses one and says which.
func ExampleClient_Sample() {
	url, stop := exampleServer()
	defer stop()

	c := &api.Client{BaseURL: url}
	seed := int64(1)
	pngs, used, err := c.Sample(context.Background(), api.SampleOptions{N: 4, Seed: &seed})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(pngs), "new digits from seed", used)
	// Output:
	// 4 new digits from seed 1
}

// Interpolate morphs one digit into another: the decodings of codes evenly
// spaced between the two images' means, both ends included.
func ExampleClient_Interpolate() {
	url, stop := exampleServer()
	defer stop()

	c := &api.Client{BaseURL: url}
	seven, two := readFile("testdata/seven.png"), readFile("testdata/two.png")
	steps, err := c.Interpolate(context.Background(), api.InterpolateOptions{K: 6}, seven, two)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(steps), "digits from a seven to a two")
	// Output:
	// 6 digits from a seven to a two
}

// Failures are problem documents: errors.As finds the *api.Problem, with the
// server's detail and, for a batch, the failing image.
func ExampleProblem() {
	url, stop := exampleServer()
	defer stop()

	c := &api.Client{BaseURL: url}
	seven := readFile("testdata/seven.png")
	// The second image is a PNG cut short: the whole batch fails, and the
	// problem says which image.
	_, err := c.Reconstruct(context.Background(), api.ImageOptions{}, seven, seven[:len(seven)/2])
	var p *api.Problem
	if errors.As(err, &p) {
		fmt.Println(p.Status, p.Type, "image", *p.Index)
	}
	_, err = c.Encode(context.Background(), api.EncodeOptions{Model: "nope"}, seven)
	if errors.As(err, &p) {
		fmt.Println(p.Status, p.Title)
	}
	// Output:
	// 400 urn:aeserve:problem:malformed image 1
	// 404 Unknown model
}
