// Package oip is a client of aeserve's Open Inference Protocol (V2, the
// protocol of KServe, Triton, MLServer and Seldon), over HTTP/REST (Client)
// and over gRPC (GRPCClient), with the same methods, types and errors.
//
// (The package is oip, not v2, because an import path ending in /v2 reads
// as a Go major version.)
//
// # Models
//
// Each stage a server runs is a V2 model: "conv" is the whole autoencoder
// conv (images in, images out), "conv.encoder" and "conv.decoder" its
// halves (images → latent, latent → images), and "classifier" a classifier
// (images → probabilities and digit). A model's only version is the
// fingerprint of its weights. The tensors:
//
//	images         FP32  [N, 1, 28, 28], or [N, 784] as input; values in [0, 1]
//	latent         FP32  [N, …the model's latent shape], e.g. [N, 32, 7, 7];
//	                     parameters.fingerprint names its weights
//	probabilities  FP32  [N, 10]
//	digit          INT64 [N]
//
// The protocol has no route listing the models: /v1/models (api.Client.Models)
// lists them, and each ModelInfo.Halves gives its V2 models.
//
// # Calls
//
//	c := &oip.Client{BaseURL: "http://localhost:8080"}
//	ok, err := c.ServerReady(ctx)
//	md, err := c.ModelMetadata(ctx, "conv.encoder", "")
//	res, err := c.Infer(ctx, "conv.encoder", &oip.InferRequest{Inputs: []oip.Tensor{{
//		Name: oip.TensorImages, Datatype: oip.FP32, Shape: []int64{1, 784}, FP32: pixels}}},
//		oip.InferOptions{BinaryInputs: true, BinaryOutputs: true})
//
// Infer sends the protocol's JSON, or with InferOptions the binary tensor
// data extension (Inference-Header-Content-Length; raw contents over gRPC)
// for the inputs, the outputs or both; an InferResponse is the same either
// way, with every tensor's data in FP32 or INT64.
//
// The helpers Encode, Decode, Reconstruct and Classify run a stage on
// pixels and answer in package api's types: Encode's *api.Latent marshals
// into the binary latent format, so a latent made over V2 decodes over /v1
// and the other way round.
//
//	l, err := c.Encode(ctx, "conv", pixels, oip.InferOptions{})   // *api.Latent, [N, 32, 7, 7]
//	px, err := c.Decode(ctx, "", l, oip.InferOptions{})          // N×784 pixels
//
// # Errors and retries
//
// A server's refusal is an *Error (use errors.As) holding the HTTP status
// and the gRPC code, whichever transport answered, and aeserve's message,
// "<kind>: <detail>": a 404 (NotFound) for an unknown model or version, a
// 400 (InvalidArgument) for a malformed input. A 503 (Unavailable: queue
// full, not ready, shutting down) is retried as api.Client retries it, up
// to MaxAttempts sends, waiting as Retry-After says or a short jittered
// backoff.
//
// Unlike package api, this package depends on google.golang.org/grpc (for
// GRPCClient, and the codes in Error), which the module requires anyway.
package oip
