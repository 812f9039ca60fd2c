package oip_test

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"log"
	"os"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/api/oip"
)

// readDigit reads a 28×28 grey PNG into 784 pixels in [0, 1], as a client
// without aeserve's code would.
func readDigit(name string) []float32 {
	f, err := os.Open(name)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		log.Fatal(err)
	}
	g, ok := img.(*image.Gray)
	if !ok || g.Rect.Dx() != 28 || g.Rect.Dy() != 28 {
		log.Fatalf("%s: not a 28×28 grey PNG", name)
	}
	px := make([]float32, 784)
	for i, v := range g.Pix {
		px[i] = float32(v) / 255
	}
	return px
}

// A latent made over V2 is the one /v1 makes: it travels in the binary
// latent format and decodes over either.
func ExampleClient_Encode() {
	c := &oip.Client{BaseURL: restURL} // e.g. "http://localhost:8080"
	ctx := context.Background()
	seven := readDigit("../testdata/seven.png")
	l, err := c.Encode(ctx, "conv", seven, oip.InferOptions{})
	if err != nil {
		log.Fatal(err)
	}
	wire, err := l.MarshalBinary()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(l.Model, l.Shape, l.Fingerprint, len(wire), "bytes")

	// Decoded by /v1: the fingerprint in the binary latent picks the model.
	var got api.Latent
	if err := got.UnmarshalBinary(wire); err != nil {
		log.Fatal(err)
	}
	pngs, err := (&api.Client{BaseURL: restURL}).Decode(ctx, &got, api.DecodeOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(pngs), "PNG")
	// Output:
	// conv [1 32 7 7] 82231c4ca0887f78 6287 bytes
	// 1 PNG
}

// Infer over gRPC, with the tensors in binary both ways: the classifier's
// two outputs.
func ExampleGRPCClient_Infer() {
	g := oip.NewGRPCClient(grpcConn) // grpc.NewClient("localhost:8081", …)
	px := append(readDigit("../testdata/seven.png"), readDigit("../testdata/two.png")...)
	res, err := g.Infer(context.Background(), "classifier", &oip.InferRequest{
		Inputs: []oip.Tensor{{Name: oip.TensorImages, Datatype: oip.FP32, Shape: []int64{2, 784}, FP32: px}},
	}, oip.InferOptions{BinaryInputs: true, BinaryOutputs: true})
	if err != nil {
		log.Fatal(err)
	}
	for _, o := range res.Outputs {
		fmt.Println(o.Name, o.Datatype, o.Shape)
	}
	fmt.Println("digits:", res.Output(oip.TensorDigit).INT64)
	// Output:
	// probabilities FP32 [2 10]
	// digit INT64 [2]
	// digits: [7 2]
}
