package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"strconv"

	"github.com/aeserve/aeserve/internal/digit"
	"github.com/aeserve/aeserve/internal/model"
)

// imageField is the multipart field holding images, one file per part.
const imageField = "img"

// imageTypes are the request media types of the image endpoints.
var imageTypes = []string{ctMultipart, ctPNG}

// checkImageType answers 415 before any of the body is read.
func checkImageType(r *http.Request) error {
	mt, _ := mediaType(r)
	if mt != ctMultipart && mt != ctPNG {
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
//  1. The body is read whole (within MaxBodyBytes) and split into PNGs,
//     each checked from its header alone: MaxImages, MaxPixels per image,
//     28×28 unless fit, and MaxRequestPixels for all of them together.
//  2. The batcher's queue must have room for the images (reserve).
//  3. Each image is decoded, unless the client has gone away or the
//     deadline passed, which is checked between images.
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

// splitImages is stage 1 of readImages: the request's PNGs, each checked
// from its header.
func (s *Server) splitImages(r *http.Request, fit bool) ([][]byte, error) {
	c := declared{s: s, fit: fit}
	mt, params := mediaType(r)
	switch mt {
	case ctPNG:
		data, err := readBody(r)
		if err != nil {
			return nil, err
		}
		if err := c.check(0, data); err != nil {
			return nil, err
		}
		return [][]byte{data}, nil
	case ctMultipart:
		boundary := params["boundary"]
		if boundary == "" {
			return nil, malformed("multipart/form-data Content-Type without a boundary")
		}
		body, err := readBody(r)
		if err != nil {
			return nil, err
		}
		var imgs [][]byte
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
			if err := c.check(len(imgs), data); err != nil {
				return nil, err
			}
			imgs = append(imgs, data)
		}
		if len(imgs) == 0 {
			return nil, malformed("no images: send one or more PNG files in form field %q", imageField)
		}
		return imgs, nil
	}
	return nil, unsupportedMediaType(mt, imageTypes...)
}

// declared checks a request's PNGs from their headers, before any is
// decoded, and sums the pixels they declare.
type declared struct {
	s     *Server
	fit   bool
	total int64
}

func (c *declared) check(i int, data []byte) error {
	cfg := &c.s.cfg
	w, h, ok := pngSize(data)
	if !ok {
		// Not a PNG header digit.Decode accepts: it says why from the
		// header alone, without inflating anything.
		if _, err := digit.Decode(data, digit.Limits{MaxPixels: cfg.MaxPixels}, digit.Options{}); err != nil {
			return atIndex(i, err)
		}
		return nil
	}
	px := int64(w) * int64(h)
	if px > int64(cfg.MaxPixels) {
		return atIndex(i, tooLarge("image is %d×%d = %d pixels, limit is %d", w, h, px, cfg.MaxPixels))
	}
	// digit.Decode checks the size only after decoding the whole image.
	if !c.fit && (w != model.ImageSide || h != model.ImageSide) {
		return atIndex(i, unprocessable("image is %d×%d, want %d×%d (send fit=true to resize)",
			w, h, model.ImageSide, model.ImageSide))
	}
	c.total += px
	if c.total > int64(cfg.MaxRequestPixels) {
		return atIndex(i, tooLarge("the images up to this one declare %d pixels in all, more than the %d one request may",
			c.total, cfg.MaxRequestPixels))
	}
	return nil
}

// pngSize reads the width and height a PNG declares, if it starts with the
// signature and a well-formed IHDR chunk (the same conditions digit.Decode
// checks first); ok is false otherwise.
func pngSize(b []byte) (w, h int, ok bool) {
	const sig = "\x89PNG\r\n\x1a\n"
	const ihdrEnd = 8 + 8 + 13 + 4 // signature, length and type, data, CRC
	if len(b) < ihdrEnd || string(b[:8]) != sig ||
		binary.BigEndian.Uint32(b[8:]) != 13 || string(b[12:16]) != "IHDR" ||
		crc32.ChecksumIEEE(b[12:29]) != binary.BigEndian.Uint32(b[29:]) {
		return 0, 0, false
	}
	uw, uh := binary.BigEndian.Uint32(b[16:]), binary.BigEndian.Uint32(b[20:])
	if uw == 0 || uh == 0 || uw > 1<<31-1 || uh > 1<<31-1 {
		return 0, 0, false
	}
	return int(uw), int(uh), true
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
func (s *Server) decodeImages(r *http.Request, imgs [][]byte, fit bool) ([]float32, error) {
	lim := digit.Limits{MaxPixels: s.cfg.MaxPixels}
	opt := digit.Options{Fit: fit}
	px := make([]float32, 0, len(imgs)*model.ImageLen)
	for i, data := range imgs {
		// A client that went away (499) or a deadline that passed (503)
		// stops the work: with fit=true each image may take a while.
		if err := r.Context().Err(); err != nil {
			return nil, err
		}
		if s.decodeHook != nil {
			s.decodeHook(r, i)
		}
		p, err := digit.Decode(data, lim, opt)
		if err != nil {
			return nil, atIndex(i, err)
		}
		px = append(px, p...)
	}
	return px, nil
}
