package server

import (
	"bytes"
	"context"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/aeserve/aeserve"
	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/weights"
)

// BenchmarkDenoise is one POST /v1/denoise through the server's handler, as
// a raw PNG body and as a multipart upload, with the real denoise model and
// logging at warn (as bench/load.sh runs it): the time and allocations of a
// request outside the network, the model's included (issue 18). Run it
// with -benchmem.
func BenchmarkDenoise(b *testing.B) {
	s, err := New(Config{Log: zerolog.New(nil).Level(zerolog.WarnLevel), OpenAPI: aeserve.OpenAPI})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close(context.Background()) })
	m, err := model.LoadFS(weights.FS, DefaultDenoiseModel)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Load(m); err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	_, png := mnistDigit(b, 0)
	mp, ctype := multipartBody(b, imageField, png)
	for _, c := range []struct {
		name, ctype string
		body        []byte
	}{{"raw", ctPNG, png}, {"multipart", ctype, mp}} {
		b.Run(c.name, func(b *testing.B) {
			r := bytes.NewReader(c.body)
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(c.body)
				req := httptest.NewRequest(http.MethodPost, "/v1/denoise", r)
				req.Header.Set("Content-Type", c.ctype)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}

// TestHeaderValue: a shared header value is never written through: adding
// to the header appends to a copy.
func TestHeaderValue(t *testing.T) {
	for _, v := range []string{"Accept", "nosniff", ""} {
		shared := headerValue(v)
		for _, add := range []string{"Origin", "x"} {
			h := http.Header{"Vary": shared}
			h.Add("Vary", add)
			if len(shared) != 1 || shared[0] != v || len(h["Vary"]) != 2 || h["Vary"][1] != add {
				t.Errorf("after Add(%q): shared %q, header %q", add, shared, h["Vary"])
			}
		}
	}
}

// TestMediaTypeFastPath: mediaType's shortcut for the common types gives
// what mime.ParseMediaType gives.
func TestMediaTypeFastPath(t *testing.T) {
	for _, ct := range []string{"", ctPNG, ctJSON, ctBinary, "image/jpeg", "image/gif", "IMAGE/PNG", "image/png; q=1",
		" image/png", "image/png ", "multipart/form-data; boundary=x", "image/png;", "bogus", "image/pngx"} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		mt, params := mediaType(r)
		want, wparams, err := mime.ParseMediaType(ct)
		if err != nil {
			want, wparams = strings.ToLower(strings.TrimSpace(ct)), nil
		}
		if mt != want || !maps.Equal(params, wparams) {
			t.Errorf("%q: %q %v, want %q %v", ct, mt, params, want, wparams)
		}
	}
}

// TestCachedSeries: the cached children are the vectors' own, so counts
// land in the series /metrics reports, one per label set.
func TestCachedSeries(t *testing.T) {
	m, err := newHTTPMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range []requestKey{{"/a", "GET", "200"}, {"/a", "GET", "200"}, {"/a", "POST", "200"}, {"/b", "GET", "404"}} {
		s := m.request(k.route, k.method, k.code)
		s.requests.Inc()
		s.duration.Observe(float64(i))
		m.imagesOf(k.route, k.method).Add(2)
	}
	for _, c := range []struct {
		k    requestKey
		want float64
	}{{requestKey{"/a", "GET", "200"}, 2}, {requestKey{"/a", "POST", "200"}, 1}, {requestKey{"/b", "GET", "404"}, 1}, {requestKey{"/b", "GET", "200"}, 0}} {
		if got := counterValue(t, m.requests.WithLabelValues(c.k.route, c.k.method, c.k.code)); got != c.want {
			t.Errorf("requests%v = %v, want %v", c.k, got, c.want)
		}
	}
	for k, want := range map[imagesKey]float64{{"/a", "GET"}: 4, {"/a", "POST"}: 2, {"/b", "GET"}: 2, {"/b", "POST"}: 0} {
		if got := counterValue(t, m.images.WithLabelValues(k.route, k.model)); got != want {
			t.Errorf("images%v = %v, want %v", k, got, want)
		}
	}
	ch := make(chan prometheus.Metric, 10)
	m.duration.Collect(ch)
	if n := len(ch); n != 3 {
		t.Errorf("%d duration series, want 3", n)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetCounter().GetValue()
}
