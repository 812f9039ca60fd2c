package server

import (
	"errors"
	"io"
	"mime/multipart"
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

func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, malformed("query parameter %s=%q is not a boolean (true or false)", name, v)
	}
	return b, nil
}

// bodyErr classifies a failure to read the body: over the size limit is 413
// (problemOf knows *http.MaxBytesError), anything else the client's fault.
func bodyErr(what string, err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return malformed("%s: %v", what, err)
}

// readImages decodes the request's images, in order, into one flat slice of
// n×784 pixels. Every limit is enforced while reading: the body size by the
// MaxBytesReader installed by limits, the image count before a part is read,
// and the pixel count from each PNG header before it is inflated. The first
// bad image fails the whole request, naming its index.
func (s *Server) readImages(r *http.Request) (px []float32, n int, err error) {
	fit, err := boolParam(r, "fit")
	if err != nil {
		return nil, 0, err
	}
	lim := digit.Limits{MaxPixels: s.cfg.MaxPixels}
	opt := digit.Options{Fit: fit}
	mt, params := mediaType(r)
	switch mt {
	case ctPNG:
		data, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, 0, bodyErr("reading the PNG body", err)
		}
		p, err := digit.Decode(data, lim, opt)
		if err != nil {
			return nil, 0, atIndex(0, err)
		}
		return p, 1, nil
	case ctMultipart:
		boundary := params["boundary"]
		if boundary == "" {
			return nil, 0, malformed("multipart/form-data Content-Type without a boundary")
		}
		mr := multipart.NewReader(r.Body, boundary)
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, 0, bodyErr("malformed multipart body", err)
			}
			if name := part.FormName(); name != imageField {
				return nil, 0, malformed("unexpected form field %q: send images in field %q", name, imageField)
			}
			if n == s.cfg.MaxImages {
				return nil, 0, tooLarge("more than %d images in one request", s.cfg.MaxImages)
			}
			data, err := io.ReadAll(part)
			if err != nil {
				return nil, 0, bodyErr("malformed multipart body", err)
			}
			p, err := digit.Decode(data, lim, opt)
			if err != nil {
				return nil, 0, atIndex(n, err)
			}
			if px == nil {
				px = make([]float32, 0, 4*model.ImageLen)
			}
			px = append(px, p...)
			n++
		}
		if n == 0 {
			return nil, 0, malformed("no images: send one or more PNG files in form field %q", imageField)
		}
		return px, n, nil
	}
	return nil, 0, unsupportedMediaType(mt, imageTypes...)
}
