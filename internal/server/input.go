package server

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"slices"
	"strconv"

	"github.com/aeserve/aeserve/internal/digit"
	"github.com/aeserve/aeserve/internal/model"
)

// imageField is the multipart field holding images, one file per part.
const imageField = "img"

// Image media types besides PNG (negotiate.go has the types the server sends).
const (
	ctJPEG = "image/jpeg"
	ctGIF  = "image/gif"
)

// imageTypes are the request media types of the image endpoints.
var imageTypes = []string{ctMultipart, ctPNG, ctJPEG, ctGIF}

// rawFormats are the image formats a raw body may declare, by media type.
var rawFormats = map[string]digit.Format{ctPNG: digit.PNG, ctJPEG: digit.JPEG, ctGIF: digit.GIF}

// partFormat is the image format a multipart part declares, if any:
// browsers and phones label files by their extension, with a few aliases
// of image/jpeg and image/png besides. A part without one of these types
// (none, application/octet-stream, anything else) is taken for what its
// bytes are.
func partFormat(contentType string) (digit.Format, bool) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", false
	}
	switch mt {
	case "image/jpg", "image/pjpeg":
		return digit.JPEG, true
	case "image/x-png":
		return digit.PNG, true
	}
	f, ok := rawFormats[mt]
	return f, ok
}

// checkImageType answers 415 before any of the body is read.
func checkImageType(r *http.Request) error {
	mt, _ := mediaType(r)
	if !slices.Contains(imageTypes, mt) {
		return unsupportedMediaType(mt, imageTypes...)
	}
	return nil
}

// boolParam reads a boolean query parameter; absent is false.
func boolParam(q query, name string) (bool, error) {
	v, ok := q[name]
	if !ok {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, malformed("query parameter %s=%q is not a boolean (true or false)", name, v)
	}
	return b, nil
}

// readBody reads the whole request body, within the limit the limits
// middleware installed. Reading it all before parsing keeps the two kinds of
// failure apart: what goes wrong here is the connection's doing (or the
// size limit's), what goes wrong later is the content's. It also lets
// net/http notice a client that hangs up while the request is processed:
// only once the body is consumed does it watch the connection and cancel
// the request's context.
//
// The buffer grows with what arrives, not with the Content-Length a client
// declares: a declared 32 MiB must not cost 32 MiB before a byte is sent.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, bodyErr(err)
	}
	return b, nil
}

// bodyErr classifies a failure to read the body. Over the size limit is 413
// (problemOf knows *http.MaxBytesError). The others are the connection's,
// not the content's, so none is "malformed", and their text, which holds
// socket addresses, is only logged: a read timeout (a body too slow for
// ReadTimeout) is 408, a connection the client closed or reset before the
// whole body arrived is 499, as for any client that goes away, and anything
// else net/http reports (broken chunked framing) is 400. The connection is
// closed after the answer, as its stream is no longer in step.
func bodyErr(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	var ne net.Error
	var p *Problem
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		p = problemf(http.StatusRequestTimeout, kindRequestTimeout,
			"the request body did not arrive within the server's read timeout")
	case errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &ne), errors.Is(err, net.ErrClosed):
		p = problemf(StatusClientClosed, kindClientClosed, "the client closed the connection before sending the whole body")
	default:
		p = malformed("the request body could not be read (invalid transfer framing)")
	}
	p.Close = true
	p.Err = err
	return p
}

// readImages reads the request's images and decodes them, in order, into
// one flat slice of n×784 pixels, for half h of sv. It works in three
// stages, cheapest first, so that the expensive one only runs for requests
// that can be served:
//
//  1. The body is read whole (within MaxBodyBytes) and split into images,
//     each checked from its header alone (digit.ReadHeader): a format the
//     server reads, the one its Content-Type declares, MaxImages, MaxPixels
//     per image, 28×28 unless fit, and MaxRequestPixels for all of them
//     together.
//  2. The batcher's queue must have room for the images (reserve).
//  3. Each image is decoded, unless the client has gone away or the
//     deadline passed, which is checked between images, and only once the
//     process-wide decode budget has room for the pixels its header
//     declares (see decodeBudget).
//
// The first bad image found fails the whole request, naming its index.
func (s *Server) readImages(r *http.Request, sv *served, h model.Half, fit bool) (px []float32, n int, err error) {
	imgs, err := s.splitImages(r, fit)
	if err != nil {
		return nil, 0, err
	}
	release, err := s.reserve(sv, h, len(imgs))
	if err != nil {
		return nil, 0, err
	}
	// Released once the images are decoded (or not): the batcher's own
	// queue counts them from then on.
	defer release()
	px, err = s.decodeImages(r, imgs, fit)
	if err != nil {
		return nil, 0, err
	}
	return px, len(imgs), nil
}

// upload is one image of a request, checked from its header.
type upload struct {
	data []byte
	head digit.Header
}

// splitImages is stage 1 of readImages: the request's images, each checked
// from its header.
func (s *Server) splitImages(r *http.Request, fit bool) ([]upload, error) {
	c := declared{s: s, fit: fit}
	mt, params := mediaType(r)
	if f, ok := rawFormats[mt]; ok {
		data, err := readBody(r)
		if err != nil {
			return nil, err
		}
		if len(data) == 0 {
			return nil, malformed("the request body is empty: send one image as %s (or several as %s, field %q)",
				mt, ctMultipart, imageField)
		}
		u, err := c.check(0, data, f, true, "Content-Type "+mt)
		if err != nil {
			return nil, err
		}
		return []upload{u}, nil
	}
	if mt != ctMultipart {
		return nil, unsupportedMediaType(mt, imageTypes...)
	}
	boundary := params["boundary"]
	if boundary == "" {
		return nil, malformed("multipart/form-data Content-Type without a boundary")
	}
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	var imgs []upload
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, malformed("malformed multipart body: %v", err)
		}
		if name := part.FormName(); name != imageField {
			return nil, malformed("unexpected form field %q: send images in field %q", name, imageField)
		}
		if len(imgs) == s.cfg.MaxImages {
			return nil, tooLarge("more than %d images in one request", s.cfg.MaxImages)
		}
		data, err := io.ReadAll(part)
		if err != nil {
			return nil, malformed("malformed multipart body: %v", err)
		}
		i := len(imgs)
		if len(data) == 0 {
			return nil, atIndex(i, malformed("the form part is empty (0 bytes): no image"))
		}
		ct := part.Header.Get("Content-Type")
		f, typed := partFormat(ct)
		u, err := c.check(i, data, f, typed, "the part's Content-Type "+ct)
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, u)
	}
	if len(imgs) == 0 {
		return nil, malformed("no images: send one or more PNG, JPEG or GIF files in form field %q", imageField)
	}
	return imgs, nil
}

// declared checks a request's images from their headers, before any is
// decoded, and sums the pixels they declare.
type declared struct {
	s     *Server
	fit   bool
	total int64
}

// check reads image i's header. want is the format the image was declared
// as (typed: it was declared at all, by what), which its bytes must be.
func (c *declared) check(i int, data []byte, want digit.Format, typed bool, by string) (upload, error) {
	cfg := &c.s.cfg
	if f, ok := digit.Sniff(data); ok && typed && f != want {
		p := problemf(http.StatusUnsupportedMediaType, kindMediaType,
			"%s says %s, but the bytes are a %s image: declare it as %s", by, want, f, f.MediaType())
		p.Accept = imageTypes
		return upload{}, atIndex(i, p)
	}
	// Not an image at all (415), corrupt (400) or too large (413): the
	// header alone says, without inflating anything.
	h, err := digit.ReadHeader(data, digit.Limits{MaxPixels: cfg.MaxPixels})
	if err != nil {
		return upload{}, atIndex(i, err)
	}
	if !c.fit && (h.Width != model.ImageSide || h.Height != model.ImageSide) {
		return upload{}, atIndex(i, unprocessable("image is %d×%d, want %d×%d (send fit=true to resize)",
			h.Width, h.Height, model.ImageSide, model.ImageSide))
	}
	c.total += h.Pixels()
	if c.total > int64(cfg.MaxRequestPixels) {
		return upload{}, atIndex(i, tooLarge("the images up to this one declare %d pixels in all, more than the %d one request may",
			c.total, cfg.MaxRequestPixels))
	}
	return upload{data: data, head: h}, nil
}

// reserve is stage 2 of readImages: it sheds a request whose n images
// cannot fit in the queue of sv's half h before any is decoded, counting
// with the images queued those of other requests admitted here and still
// being decoded, so that a burst of large requests does not all decode only
// to be refused. It is a forecast: the batcher's own check (batch.ErrQueueFull)
// stays authoritative. release must be called once the images are decoded.
func (s *Server) reserve(sv *served, h model.Half, n int) (release func(), err error) {
	b, pending := sv.batchers[h], sv.admitting[h]
	if b == nil || pending == nil {
		return func() {}, nil
	}
	st := b.Stats()
	if st.Closed {
		return nil, shuttingDown()
	}
	if total := pending.Add(int64(n)); int64(st.QueuedItems)+total > int64(s.cfg.Batch.QueueSize) {
		pending.Add(-int64(n))
		s.metrics.admissionShed.WithLabelValues(sv.name, string(h)).Inc()
		return nil, queueFull()
	}
	var once bool
	return func() {
		if !once {
			once = true
			pending.Add(-int64(n))
		}
	}, nil
}

// decodeImages is stage 3 of readImages.
func (s *Server) decodeImages(r *http.Request, imgs []upload, fit bool) ([]float32, error) {
	lim := digit.Limits{MaxPixels: s.cfg.MaxPixels}
	opt := digit.Options{Fit: fit}
	px := make([]float32, 0, len(imgs)*model.ImageLen)
	for i, u := range imgs {
		// A client that went away (499) or a deadline that passed (503)
		// stops the work: with fit=true each image may take a while.
		if err := r.Context().Err(); err != nil {
			return nil, err
		}
		if s.decodeHook != nil {
			s.decodeHook(r, i)
		}
		next, err := s.decodeOne(r, px, u, lim, opt)
		if err != nil {
			return nil, atIndex(i, err)
		}
		px = next
	}
	return px, nil
}

// decodeOne decodes an image, appending its pixels to px, within the decode
// budget: its declared pixels are taken before the decoder allocates them
// and given back once only the reduced image is left.
func (s *Server) decodeOne(r *http.Request, px []float32, u upload, lim digit.Limits, opt digit.Options) ([]float32, error) {
	release, err := s.budget.acquire(r.Context(), u.head.Pixels())
	if err != nil {
		return nil, err
	}
	defer release()
	return digit.DecodeAppend(px, u.data, lim, opt)
}
