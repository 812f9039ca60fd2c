package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Client calls an aeserve server. It is safe for concurrent use.
//
// Any non-2xx answer is returned as a *Problem, built from the server's
// problem+json body or, failing that, from the status line and body text.
type Client struct {
	// BaseURL is the server's root, e.g. "http://localhost:8080" (no /v1).
	BaseURL string
	// HTTP is nil for http.DefaultClient. Set its Timeout, or pass contexts
	// with deadlines: the server may queue requests for a while under load.
	HTTP *http.Client
}

// maxResponse bounds what the client reads from a server: the largest
// legitimate answers (a few thousand images) are far below it.
const maxResponse = 256 << 20

// Encode sends PNG images to the encoder and returns their latent, one row
// per image in order. The binary format carries no model name, so Model is
// set to the requested model ("" for the server's default).
func (c *Client) Encode(ctx context.Context, model string, pngs ...[]byte) (*Latent, error) {
	body, ctype, err := multipartImages(pngs)
	if err != nil {
		return nil, err
	}
	b, rtype, err := c.do(ctx, http.MethodPost, "/v1/encode", model, body, ctype, MediaLatent)
	if err != nil {
		return nil, err
	}
	var l Latent
	switch rtype {
	case MediaJSON:
		// A server or proxy that ignored Accept: take the JSON form as well.
		if err := json.Unmarshal(b, &l); err != nil {
			return nil, fmt.Errorf("api: encode: reading JSON latent: %w", err)
		}
		if err := l.Validate(); err != nil {
			return nil, fmt.Errorf("api: encode: %w", err)
		}
	default:
		if err := l.UnmarshalBinary(b); err != nil {
			return nil, fmt.Errorf("api: encode: %w", err)
		}
		l.Model = model
	}
	if l.Shape[0] != len(pngs) {
		return nil, fmt.Errorf("api: encode: sent %d images, got a latent of shape %v", len(pngs), l.Shape)
	}
	return &l, nil
}

// Decode sends a latent, in the binary format, to the decoder and returns one
// PNG per row. If l.Model is set it is sent as ?model=, so the server can
// check it against the fingerprint.
func (c *Client) Decode(ctx context.Context, l *Latent) ([][]byte, error) {
	if l == nil {
		return nil, errors.New("api: decode: nil latent")
	}
	body, err := l.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("api: decode: %w", err)
	}
	want := -1 // the server refuses shapes other than its model's; let it say so
	if len(l.Shape) >= 2 {
		want = l.Shape[0]
	}
	return c.images(ctx, "/v1/decode", l.Model, body, MediaLatent, want)
}

// Reconstruct runs images through the whole autoencoder.
func (c *Client) Reconstruct(ctx context.Context, model string, pngs ...[]byte) ([][]byte, error) {
	return c.imagesToImages(ctx, "/v1/reconstruct", model, pngs)
}

// Denoise runs noisy images through a denoising autoencoder.
func (c *Client) Denoise(ctx context.Context, model string, pngs ...[]byte) ([][]byte, error) {
	return c.imagesToImages(ctx, "/v1/denoise", model, pngs)
}

// ClassifyOptions are /v1/classify's parameters; the zero value classifies
// with the server's default classifier, without denoising.
type ClassifyOptions struct {
	Model    string // the classifier ("" for the server's default)
	Denoise  bool   // clean the images with a denoising autoencoder first
	Denoiser string // that autoencoder ("" for the server's default); only with Denoise
	Fit      bool   // prepare images of any size as MNIST did
}

// Classify sends PNG images to a classifier and returns one result per image,
// in order. With Denoise, the answer names the denoiser that ran.
func (c *Client) Classify(ctx context.Context, opts ClassifyOptions, pngs ...[]byte) (*Classifications, error) {
	body, ctype, err := multipartImages(pngs)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if opts.Model != "" {
		q.Set("model", opts.Model)
	}
	if opts.Denoise {
		q.Set("denoise", "true")
	}
	if opts.Denoiser != "" {
		q.Set("denoiser", opts.Denoiser)
	}
	if opts.Fit {
		q.Set("fit", "true")
	}
	b, _, err := c.doQuery(ctx, http.MethodPost, "/v1/classify", q, body, ctype, MediaJSON)
	if err != nil {
		return nil, err
	}
	var out Classifications
	if len(pngs) == 1 {
		var one Classification
		if err := json.Unmarshal(b, &one); err != nil {
			return nil, fmt.Errorf("api: classify: %w", err)
		}
		out = Classifications{Model: one.Model, Fingerprint: one.Fingerprint, Denoiser: one.Denoiser,
			DenoiserFingerprint: one.DenoiserFingerprint, Results: []Result{one.Result}}
	} else if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("api: classify: %w", err)
	}
	if len(out.Results) != len(pngs) {
		return nil, fmt.Errorf("api: classify: sent %d images, got %d results", len(pngs), len(out.Results))
	}
	return &out, nil
}

// Models lists the models the server has loaded.
func (c *Client) Models(ctx context.Context) (*ModelList, error) {
	b, _, err := c.do(ctx, http.MethodGet, "/v1/models", "", nil, "", MediaJSON)
	if err != nil {
		return nil, err
	}
	var ml ModelList
	if err := json.Unmarshal(b, &ml); err != nil {
		return nil, fmt.Errorf("api: models: %w", err)
	}
	return &ml, nil
}

func (c *Client) imagesToImages(ctx context.Context, path, model string, pngs [][]byte) ([][]byte, error) {
	body, ctype, err := multipartImages(pngs)
	if err != nil {
		return nil, err
	}
	return c.images(ctx, path, model, body, ctype, len(pngs))
}

// images posts body and decodes an Images answer of exactly want pictures
// (any number if want < 0).
func (c *Client) images(ctx context.Context, path, model string, body []byte, ctype string, want int) ([][]byte, error) {
	b, _, err := c.do(ctx, http.MethodPost, path, model, body, ctype, MediaJSON)
	if err != nil {
		return nil, err
	}
	var im Images
	if err := json.Unmarshal(b, &im); err != nil {
		return nil, fmt.Errorf("api: %s: %w", path, err)
	}
	if want >= 0 && len(im.Images) != want {
		return nil, fmt.Errorf("api: %s: want %d images, got %d", path, want, len(im.Images))
	}
	out := make([][]byte, len(im.Images))
	for i, s := range im.Images {
		if out[i], err = base64.StdEncoding.DecodeString(s); err != nil {
			return nil, fmt.Errorf("api: %s: image %d: %w", path, i, err)
		}
	}
	return out, nil
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

// do performs one request and returns the body of a 2xx answer with its
// media type (parameters stripped), or a *Problem for any other status.
func (c *Client) do(ctx context.Context, method, path, model string, body []byte, ctype, accept string) ([]byte, string, error) {
	q := url.Values{}
	if model != "" {
		q.Set("model", model)
	}
	return c.doQuery(ctx, method, path, q, body, ctype, accept)
}

// doQuery is do with any query parameters.
func (c *Client) doQuery(ctx context.Context, method, path string, q url.Values, body []byte, ctype, accept string) ([]byte, string, error) {
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
		return nil, "", fmt.Errorf("api: %w", err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	// One type only, so that even a server matching Accept literally picks the
	// right representation; errors come as problem+json whatever we accept.
	req.Header.Set("Accept", accept)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("api: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, "", fmt.Errorf("api: %s %s: reading response: %w", method, path, err)
	}
	if len(b) > maxResponse {
		return nil, "", fmt.Errorf("api: %s %s: response larger than %d bytes", method, path, maxResponse)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, "", problemFrom(resp.StatusCode, mt, b)
	}
	return b, mt, nil
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
