// Package api is the HTTP contract of aeserve: wire types, the binary latent
// format and a Go client. It uses the standard library and
// github.com/x448/float16 (binary16 conversion) only, so that programs
// talking to the service can import it without pulling in the server, its
// router or its tensor library.
//
// # Endpoints
//
//	POST /v1/encode       images → latent
//	POST /v1/decode       latent → images
//	POST /v1/reconstruct  images → images (encoder then decoder)
//	POST /v1/denoise      images → images (the denoising model)
//	POST /v1/classify     images → Classification or Classifications
//	GET  /v1/models       → ModelList
//	GET  /v1/models/{name} → ModelInfo
//
// Each POST takes an optional ?model=name; without it the server's default
// model answers. Images go up as multipart/form-data, one PNG per part in
// field "img", and come back as Images (JSON, base64 PNGs in request order).
// Latents travel as JSON (Latent) or, with Accept or Content-Type
// application/octet-stream, in the binary format below. Errors are RFC 9457
// problem details (Problem) with media type application/problem+json.
//
// # Client
//
// Client has one method per route. Each call takes the context first, then
// its options struct, whose zero value means the server's defaults, then the
// images (PNG files, sent as one batch):
//
//	c := &api.Client{BaseURL: "http://localhost:8080"}
//	l, err := c.Encode(ctx, api.EncodeOptions{}, png1, png2)    // *Latent, [2, 32, 7, 7]
//	pngs, err := c.Decode(ctx, l, api.DecodeOptions{})          // two PNGs
//	pngs, err = c.Denoise(ctx, api.ImageOptions{Fit: true}, photo)
//	res, err := c.Classify(ctx, api.ClassifyOptions{Denoise: true}, png1)
//	list, err := c.Models(ctx)
//
// The options structs (EncodeOptions, DecodeOptions, ImageOptions,
// ClassifyOptions) grow with the API: new parameters are new fields, whose
// zero value keeps the old behaviour, so callers that name their fields keep
// compiling. Latents travel in the binary format unless the options ask for
// LatentJSON; either way the caller gets the same *Latent.
//
// A non-2xx answer is returned as a *Problem (use errors.As), carrying the
// server's type, detail and, for a batch, the Index of the failing image. A
// 503 (queue full, not ready, shutting down) is retried, up to
// Client.MaxAttempts sends in all (default 3): the client waits as long as
// the answer's Retry-After says (seconds or an HTTP date), or a short jittered
// backoff without one, and gives up at once, returning that 503, when the
// server asks for longer than Client.MaxRetryWait (default 5s) or when the
// context's deadline would pass first. If the context ends while the client
// waits, the error wraps both the context's error and the last *Problem.
// Retrying is safe: every route is a pure function of its input, and the body
// is resent byte for byte. Other errors (a refused connection, a context that
// ends during a request) are not retried.
//
// A server run with --auth-tokens answers 401 (a *Problem of type
// urn:aeserve:problem:unauthorized) to requests without one of its tokens:
// set Client.Token and every request carries it as a bearer token. A server
// run with --tls-cert is reached at https://; if its certificate is not one
// the system trusts, give Client.HTTP a transport trusting its CA.
//
// # Binary latent format
//
// A latent is one tensor, [N, …the model's latent shape] for N images
// ([N, 32, 7, 7] for conv, [N, 32] for dense; GET /v1/models). Version 1:
//
//	offset  size  field
//	0       1     magic 0xAE
//	1       1     version<<4 | dtype; version 1; dtype 1 = float32, 2 = float16, 3 = int8
//	2       8     fingerprint of the weights that made it (raw bytes; 16 hex digits in JSON)
//	10      1     ndim, 1 to 8
//	11      …     ndim dimensions, unsigned LEB128 varints (encoding/binary.AppendUvarint),
//	              each ≥ 1 and in their shortest form; their product is at most 2^28
//	…       2     int8 only: scale, IEEE 754 binary16, little-endian
//	…       …     product(dims) values, row-major, little-endian:
//	              float32: 4 bytes each (IEEE 754 binary32)
//	              float16: 2 bytes each (IEEE 754 binary16)
//	              int8:    1 byte each, two's complement q in [-127, 127], value = q × scale
//
// The data must end the message exactly: missing or extra bytes are errors.
// There is no model name: the fingerprint identifies the weights, and a server
// refuses to decode a latent whose fingerprint is not that of the model asked
// for (409). A float32 latent of one image, [1,32,7,7], takes
// 2+8+1+4 = 15 header bytes and 6272 data bytes (3136 as float16, 2+1568 as
// int8); an int8 latent of shape [1,32] takes 2+8+3+2+32 = 47 bytes
// (BinarySize).
//
// All three dtypes are implemented. In a Latent, float16 data holds float32
// values that binary16 represents exactly, and int8 data holds the whole
// numbers q, with the scale in Latent.Scale ("scale" in JSON, where the data
// prints as integers); Values gives the numbers either stands for, and
// Quantize makes either from a float32 latent. The int8 scale must be a
// positive normal binary16 value and q must lie in [-127, 127] (-128 is
// unused, so the range is symmetric). Bytes that break those rules, or hold a
// float16 NaN or infinity, are still well-formed: UnmarshalBinary reads them
// faithfully, CheckValues refuses them with a *ValueError (a server answers
// 422), and MarshalBinary never writes them. Malformed bytes are a
// *FormatError (400).
package api
