package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Client calls an aeserve server. It is safe for concurrent use, and its
// zero value (with BaseURL set) is ready to use.
//
// Any non-2xx answer is returned as a *Problem, built from the server's
// problem+json body or, failing that, from the status line and body text. A
// 503 is retried (see MaxAttempts); the other statuses are returned at once.
type Client struct {
	// BaseURL is the server's root, e.g. "http://localhost:8080" (no /v1).
	BaseURL string
	// HTTP is nil for http.DefaultClient. Set its Timeout, or pass contexts
	// with deadlines: the server may queue requests for a while under load.
	// For a server whose certificate the system does not trust, give it a
	// Transport whose TLSClientConfig has the RootCAs that do.
	HTTP *http.Client
	// Token, if not empty, is sent with every request as
	// "Authorization: Bearer <Token>", for a server run with --auth-tokens
	// (which answers 401 without it). Use https:// with it beyond loopback:
	// over http:// anyone on the path can read it.
	Token string

	// MaxAttempts is how many times a request is sent while the server
	// answers 503 Service Unavailable (queue full, not ready, shutting down):
	// 0 means DefaultMaxAttempts, 1 sends it once and never retries.
	MaxAttempts int
	// MaxRetryWait is the longest the client waits before one retry: 0 means
	// DefaultMaxRetryWait. A Retry-After asking for longer is not shortened:
	// the client gives up at once and returns that 503 as a *Problem.
	MaxRetryWait time.Duration
}

// Retry defaults of a Client whose fields are zero.
const (
	DefaultMaxAttempts  = 3
	DefaultMaxRetryWait = 5 * time.Second
)

// retryBackoff is the first wait after a 503 without Retry-After; it doubles
// with each attempt (then jittered, and capped by MaxRetryWait).
const retryBackoff = 250 * time.Millisecond

// maxResponse bounds what the client reads from a server: the largest
// legitimate answers (a few thousand images) are far below it.
const maxResponse = 256 << 20

// LatentEncoding is how a latent travels: the compact binary format (the
// zero value) or JSON (see the package documentation).
type LatentEncoding int

const (
	LatentBinary LatentEncoding = iota // application/octet-stream, the default
	LatentJSON                         // application/json, readable
)

func (e LatentEncoding) String() string {
	switch e {
	case LatentBinary:
		return "binary"
	case LatentJSON:
		return "json"
	}
	return "LatentEncoding(" + strconv.Itoa(int(e)) + ")"
}

func (e LatentEncoding) mediaType() (string, error) {
	switch e {
	case LatentBinary:
		return MediaLatent, nil
	case LatentJSON:
		return MediaJSON, nil
	}
	return "", fmt.Errorf("api: unknown latent encoding %d", int(e))
}

// EncodeOptions are /v1/encode's parameters; the zero value encodes 28×28
// images with the server's default model and fetches the binary latent.
type EncodeOptions struct {
	Model    string         // the autoencoder ("" for the server's default, conv)
	Fit      bool           // prepare images of any size as MNIST did (?fit=true)
	Encoding LatentEncoding // how the latent comes back; the result is the same
	// Quant is the dtype the server sends the latent in: "" or
	// DTypeFloat32, DTypeFloat16, or DTypeInt8 where the model offers it
	// (ModelInfo.Quantizations). Decode takes every dtype back.
	Quant string
}

// DecodeOptions are /v1/decode's parameters. The model always comes from the
// latent's fingerprint.
type DecodeOptions struct {
	// Model, if set, is sent as ?model= and the server refuses (409) a latent
	// made by another model; "" sends the latent's own Model, if any.
	Model    string
	Encoding LatentEncoding // how the latent goes up; the result is the same
}

// ImageOptions are the parameters of the routes that turn images into images,
// /v1/reconstruct and /v1/denoise.
type ImageOptions struct {
	Model string // the autoencoder ("" for the route's default: conv, or denoise for /v1/denoise)
	Fit   bool   // prepare images of any size as MNIST did (?fit=true)
}

// ScoreOptions are /v1/score's parameters; the zero value scores with the
// server's default autoencoder (conv).
type ScoreOptions struct {
	Model string // the autoencoder ("" for the server's default)
	Fit   bool   // prepare images of any size as MNIST did
	// IncludeInput asks for the 28×28 images the model was given
	// (Scores.Inputs), to see what Fit made of an image.
	IncludeInput bool
}

// ClassifyOptions are /v1/classify's parameters; the zero value classifies
// with the server's default classifier, without denoising.
type ClassifyOptions struct {
	Model    string // the classifier ("" for the server's default)
	Denoise  bool   // clean the images with a denoising autoencoder first
	Denoiser string // that autoencoder ("" for the server's default); only with Denoise
	Fit      bool   // prepare images of any size as MNIST did
}

// Encode sends PNG images to the encoder and returns their latent, one row
// per image in order. Latent.Model is the model that answered, whichever
// encoding carried the latent.
func (c *Client) Encode(ctx context.Context, opts EncodeOptions, pngs ...[]byte) (*Latent, error) {
	accept, err := opts.Encoding.mediaType()
	if err != nil {
		return nil, err
	}
	body, ctype, err := multipartImages(pngs)
	if err != nil {
		return nil, err
	}
	q := modelFit(opts.Model, opts.Fit)
	if opts.Quant != "" {
		q.Set("quant", opts.Quant)
	}
	r, err := c.do(ctx, http.MethodPost, "/v1/encode", q, body, ctype, accept)
	if err != nil {
		return nil, err
	}
	var l Latent
	switch r.mediaType {
	case MediaJSON:
		// Asked for, or sent by a server or proxy that ignored Accept.
		if err := json.Unmarshal(r.body, &l); err != nil {
			return nil, fmt.Errorf("api: encode: reading JSON latent: %w", err)
		}
		if err := l.Validate(); err != nil {
			return nil, fmt.Errorf("api: encode: %w", err)
		}
	default:
		if err := l.UnmarshalBinary(r.body); err != nil {
			return nil, fmt.Errorf("api: encode: %w", err)
		}
		// The binary format carries no name; the response header does.
		l.Model = r.header.Get("X-Model")
		if l.Model == "" {
			l.Model = opts.Model
		}
	}
	if len(l.Shape) < 2 || l.Shape[0] != len(pngs) {
		return nil, fmt.Errorf("api: encode: sent %d images, got a latent of shape %v", len(pngs), l.Shape)
	}
	return &l, nil
}

// Decode sends a latent to the decoder and returns one PNG per row, in order.
// The latent is checked before it is sent: a malformed one is a
// *FormatError, a quantised one with a bad scale or values a *ValueError,
// and no request is made. Every dtype is taken.
func (c *Client) Decode(ctx context.Context, l *Latent, opts DecodeOptions) ([][]byte, error) {
	if l == nil {
		return nil, errors.New("api: decode: nil latent")
	}
	ctype, err := opts.Encoding.mediaType()
	if err != nil {
		return nil, err
	}
	var body []byte
	if opts.Encoding == LatentJSON {
		body, err = marshalJSONLatent(l)
	} else {
		body, err = l.MarshalBinary()
	}
	if err != nil {
		return nil, fmt.Errorf("api: decode: %w", err)
	}
	model := opts.Model
	if model == "" {
		model = l.Model
	}
	want := -1 // the server refuses shapes other than its model's; let it say so
	if len(l.Shape) >= 2 {
		want = l.Shape[0]
	}
	return c.images(ctx, "/v1/decode", modelFit(model, false), body, ctype, want)
}

func marshalJSONLatent(l *Latent) ([]byte, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if i, ok := l.CheckFinite(); !ok {
		return nil, fmt.Errorf("latent value %d is %v, which JSON cannot carry (the binary encoding can)", i, l.Data[i])
	}
	return json.Marshal(l)
}

// Reconstruct runs images through the whole autoencoder.
func (c *Client) Reconstruct(ctx context.Context, opts ImageOptions, pngs ...[]byte) ([][]byte, error) {
	return c.imagesToImages(ctx, "/v1/reconstruct", opts, pngs)
}

// Denoise runs noisy images through a denoising autoencoder (any autoencoder
// answers; ModelInfo.TrainedOnNoise says which were trained for it).
func (c *Client) Denoise(ctx context.Context, opts ImageOptions, pngs ...[]byte) ([][]byte, error) {
	return c.imagesToImages(ctx, "/v1/denoise", opts, pngs)
}

// Score sends images to an autoencoder and returns each image's
// reconstruction error, its anomaly score, in order: cheaper than
// Reconstruct, as no image comes back.
func (c *Client) Score(ctx context.Context, opts ScoreOptions, pngs ...[]byte) (*Scores, error) {
	body, ctype, err := multipartImages(pngs)
	if err != nil {
		return nil, err
	}
	q := modelFit(opts.Model, opts.Fit)
	if opts.IncludeInput {
		q.Set("include", "input")
	}
	r, err := c.do(ctx, http.MethodPost, "/v1/score", q, body, ctype, MediaJSON)
	if err != nil {
		return nil, err
	}
	var sc Scores
	if err := json.Unmarshal(r.body, &sc); err != nil {
		return nil, fmt.Errorf("api: /v1/score: %w", err)
	}
	if len(sc.Scores) != len(pngs) || (opts.IncludeInput && len(sc.Inputs) != len(pngs)) {
		return nil, fmt.Errorf("api: /v1/score: want %d scores, got %d (and %d inputs)", len(pngs), len(sc.Scores), len(sc.Inputs))
	}
	return &sc, nil
}

// Classify sends PNG images to a classifier and returns one result per image,
// in order. With Denoise, the answer names the denoiser that ran.
func (c *Client) Classify(ctx context.Context, opts ClassifyOptions, pngs ...[]byte) (*Classifications, error) {
	body, ctype, err := multipartImages(pngs)
	if err != nil {
		return nil, err
	}
	q := modelFit(opts.Model, opts.Fit)
	if opts.Denoise {
		q.Set("denoise", "true")
	}
	if opts.Denoiser != "" {
		q.Set("denoiser", opts.Denoiser)
	}
	r, err := c.do(ctx, http.MethodPost, "/v1/classify", q, body, ctype, MediaJSON)
	if err != nil {
		return nil, err
	}
	var out Classifications
	if len(pngs) == 1 {
		var one Classification
		if err := json.Unmarshal(r.body, &one); err != nil {
			return nil, fmt.Errorf("api: classify: %w", err)
		}
		out = Classifications{Model: one.Model, Fingerprint: one.Fingerprint, Denoiser: one.Denoiser,
			DenoiserFingerprint: one.DenoiserFingerprint, Results: []Result{one.Result}}
	} else if err := json.Unmarshal(r.body, &out); err != nil {
		return nil, fmt.Errorf("api: classify: %w", err)
	}
	if len(out.Results) != len(pngs) {
		return nil, fmt.Errorf("api: classify: sent %d images, got %d results", len(pngs), len(out.Results))
	}
	return &out, nil
}

// Models lists the models the server has loaded.
func (c *Client) Models(ctx context.Context) (*ModelList, error) {
	r, err := c.do(ctx, http.MethodGet, "/v1/models", nil, nil, "", MediaJSON)
	if err != nil {
		return nil, err
	}
	var ml ModelList
	if err := json.Unmarshal(r.body, &ml); err != nil {
		return nil, fmt.Errorf("api: models: %w", err)
	}
	return &ml, nil
}

// Model describes one model; an unknown name is a 404 *Problem listing the
// models the server has.
func (c *Client) Model(ctx context.Context, name string) (*ModelInfo, error) {
	if name == "" {
		return nil, errors.New("api: model: empty name")
	}
	r, err := c.do(ctx, http.MethodGet, "/v1/models/"+url.PathEscape(name), nil, nil, "", MediaJSON)
	if err != nil {
		return nil, err
	}
	var mi ModelInfo
	if err := json.Unmarshal(r.body, &mi); err != nil {
		return nil, fmt.Errorf("api: model: %w", err)
	}
	return &mi, nil
}

func (c *Client) imagesToImages(ctx context.Context, path string, opts ImageOptions, pngs [][]byte) ([][]byte, error) {
	body, ctype, err := multipartImages(pngs)
	if err != nil {
		return nil, err
	}
	return c.images(ctx, path, modelFit(opts.Model, opts.Fit), body, ctype, len(pngs))
}

// images posts body and decodes an Images answer of exactly want pictures
// (any number if want < 0).
func (c *Client) images(ctx context.Context, path string, q url.Values, body []byte, ctype string, want int) ([][]byte, error) {
	r, err := c.do(ctx, http.MethodPost, path, q, body, ctype, MediaJSON)
	if err != nil {
		return nil, err
	}
	return decodeImages(path, r.body, want)
}

// decodeImages reads an Images answer of exactly want pictures (any number
// if want < 0).
func decodeImages(path string, body []byte, want int) ([][]byte, error) {
	var im Images
	if err := json.Unmarshal(body, &im); err != nil {
		return nil, fmt.Errorf("api: %s: %w", path, err)
	}
	if want >= 0 && len(im.Images) != want {
		return nil, fmt.Errorf("api: %s: want %d images, got %d", path, want, len(im.Images))
	}
	out := make([][]byte, len(im.Images))
	for i, s := range im.Images {
		var err error
		if out[i], err = base64.StdEncoding.DecodeString(s); err != nil {
			return nil, fmt.Errorf("api: %s: image %d: %w", path, i, err)
		}
	}
	return out, nil
}

// modelFit is the query of the image routes: ?model= and ?fit=, each only
// when not the default.
func modelFit(model string, fit bool) url.Values {
	q := url.Values{}
	if model != "" {
		q.Set("model", model)
	}
	if fit {
		q.Set("fit", "true")
	}
	return q
}

func multipartImages(pngs [][]byte) (body []byte, contentType string, err error) {
	if len(pngs) == 0 {
		return nil, "", errors.New("api: no images")
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i, p := range pngs {
		h := make(textproto.MIMEHeader)
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="img"; filename="%d.png"`, i))
		h.Set("Content-Type", MediaPNG)
		w, err := mw.CreatePart(h)
		if err != nil {
			return nil, "", err
		}
		w.Write(p)
	}
	if err := mw.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), mw.FormDataContentType(), nil
}

// answer is a 2xx response, read whole.
type answer struct {
	body      []byte
	mediaType string // without parameters
	header    http.Header
}

// do sends a request, again while the server answers 503 (the body is a byte
// slice, so every attempt sends the same bytes; every route is a pure
// function of its input, so a repeat is harmless), and returns a 2xx answer
// or the last *Problem.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body []byte, ctype, accept string) (*answer, error) {
	attempts := c.MaxAttempts
	if attempts <= 0 {
		attempts = DefaultMaxAttempts
	}
	maxWait := c.MaxRetryWait
	if maxWait <= 0 {
		maxWait = DefaultMaxRetryWait
	}
	for attempt := 1; ; attempt++ {
		a, err := c.once(ctx, method, path, q, body, ctype, accept)
		var p *Problem
		if err == nil || !errors.As(err, &p) || p.Status != http.StatusServiceUnavailable || attempt >= attempts {
			return a, err
		}
		wait := p.RetryAfter
		if wait <= 0 {
			wait = backoff(attempt, maxWait)
		} else if wait > maxWait {
			return nil, p // the server asks for longer than we may wait
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return nil, p // the context would end first: no point sleeping
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("api: %s %s: %w; gave up waiting to retry: %w", method, path, p, ctx.Err())
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

// once performs one request and returns a 2xx answer, or a *Problem for any
// other status.
func (c *Client) once(ctx context.Context, method, path string, q url.Values, body []byte, ctype, accept string) (*answer, error) {
	u := strings.TrimRight(c.BaseURL, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	// One type only, so that even a server matching Accept literally picks the
	// right representation; errors come as problem+json whatever we accept.
	req.Header.Set("Accept", accept)
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("api: %s %s: reading response: %w", method, path, err)
	}
	if len(b) > maxResponse {
		return nil, fmt.Errorf("api: %s %s: response larger than %d bytes", method, path, maxResponse)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		p := problemFrom(resp.StatusCode, mt, b)
		p.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		return nil, p
	}
	return &answer{body: b, mediaType: mt, header: resp.Header}, nil
}

func problemFrom(status int, mediaType string, body []byte) *Problem {
	p := new(Problem)
	if (mediaType == MediaProblem || mediaType == MediaJSON) && json.Unmarshal(body, p) == nil && p.Title+p.Detail != "" {
		// RFC 9457 makes the status member advisory; the status line is what
		// actually happened.
		p.Status = status
		return p
	}
	p = &Problem{Type: "about:blank", Title: http.StatusText(status), Status: status}
	if utf8.Valid(body) {
		text := strings.TrimSpace(string(body))
		if n := 512; len(text) > n {
			for !utf8.RuneStart(text[n]) {
				n--
			}
			text = text[:n] + "…"
		}
		p.Detail = text
	}
	return p
}
