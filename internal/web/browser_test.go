package web_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"io"
	"io/fs"
	"maps"
	"math"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/rs/zerolog"

	"github.com/aeserve/aeserve"
	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/internal/server"
	"github.com/aeserve/aeserve/weights"
)

var updateShots = flag.Bool("update", false, "write the page's screenshots to docs/ (page-desktop.png, page-phone.png)")

// browserDir holds the browser half of the test: page.mjs, and the npm
// packages it needs (package.json; `npm ci` installs them).
const browserDir = "testdata/browser"

// The token the test server asks for: the page must be given it.
const token = "page-test-token-5b1e"

// guard bounds the browser run. It only expires when something hangs; the
// run takes well under a minute on 2 busy cores.
const guard = 4 * time.Minute

// TestPageInBrowser drives the page and /docs in headless Chromium against
// the real server (loopback, the embedded weights, a bearer token): it
// draws a 7 with the mouse and checks that the output the page shows is,
// pixel for pixel, what /v1/reconstruct answers for the input the page
// sent; that the compact model's latent goes as the 47-byte int8 one
// /v1/encode?quant=int8 answers for that input, that the page reads it
// back (heat map included) with its scale and shows what /v1/decode makes
// of it; that vae's samples of a fixed seed are, twice over, what
// /v1/sample answers for it, and that without a seed the page shows the one
// in X-Seed and its digits; that the interpolation from the drawing to an
// example digit shows, pixel for pixel, what /v1/interpolate answers for the
// two images the page sent, from vae's reconstruction of the one to the
// other's; that a bad file or n shows the server's problem; that /docs lists the
// spec's routes and "Try it out" reaches the server; that axe-core finds no
// serious or critical violation at a desktop and a 390×844 phone viewport;
// and that no request left the server's origin and the CSP was never
// violated. It skips without Chromium, Node or the npm packages, except
// under CI=true, where it fails.
func TestPageInBrowser(t *testing.T) {
	chromium, node := browserTools(t)
	base := startServer(t)

	shots := t.TempDir()
	if *updateShots {
		shots, _ = filepath.Abs("../../docs")
	}
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "page.mjs")
	cmd.Dir = browserDir
	cmd.Env = append(os.Environ(), "BASE_URL="+base, "CHROMIUM="+chromium, "TOKEN="+token, "SHOTS="+shots)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("browser run: %v\n%s", time.Since(start).Round(time.Millisecond), stderr.String())
	if err != nil {
		t.Fatalf("node page.mjs: %v", err)
	}
	var got result
	if os.Getenv("AESERVE_PAGE_DUMP") != "" {
		_ = os.WriteFile(os.Getenv("AESERVE_PAGE_DUMP"), stdout.Bytes(), 0o644)
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("page.mjs output: %v: %.500s", err, stdout.String())
	}

	if len(got.External) > 0 {
		t.Errorf("requests left the server's origin: %v", got.External)
	}
	if len(got.CSP) > 0 {
		t.Errorf("Content-Security-Policy violations: %v", got.CSP)
	}
	if len(got.PageErrors) > 0 {
		t.Errorf("uncaught errors in the page: %v", got.PageErrors)
	}

	t.Run("token", func(t *testing.T) {
		c := got.Cases.Token
		if c.Problem == nil || c.Problem.Status != http.StatusUnauthorized {
			t.Fatalf("without a token the page got %+v, want a 401 problem", c.Problem)
		}
		wantProblemShown(t, c.Alert, c.Problem)
		if !slices.ContainsFunc(c.Models, func(s string) bool { return strings.HasPrefix(s, "conv ") }) {
			t.Errorf("with the token, the model list is %q", c.Models)
		}
		if c.AlertAfter != "" {
			t.Errorf("with the token, the page still shows %q", c.AlertAfter)
		}
	})
	t.Run("draw", func(t *testing.T) { checkDraw(t, base, got.Cases.Draw) })
	t.Run("sample", func(t *testing.T) {
		c := got.Cases.SampleBadN
		if c.Problem == nil || c.Problem.Status != http.StatusBadRequest || !strings.Contains(c.Problem.URL, "n=65") {
			t.Errorf("n=65 got %+v, want a 400 problem", c.Problem)
		} else {
			wantProblemShown(t, c.Alert, c.Problem)
		}
		checkSample(t, base, got.Cases.Sample)
		checkSampleRandom(t, base, got.Cases.SampleRandom)
	})
	t.Run("interpolate", func(t *testing.T) { checkInterpolate(t, base, got.Cases.Interpolate) })
	t.Run("quant", func(t *testing.T) { checkQuant(t, base, got.Cases.Quant) })
	t.Run("denoise", func(t *testing.T) {
		if c := got.Cases.Denoise.Classify; !strings.Contains(c, "after the denoise model cleaned it") {
			t.Errorf("classify with denoise=true: %q", c)
		}
	})
	t.Run("bad file", func(t *testing.T) {
		c := got.Cases.BadFile
		if c.Problem == nil || c.Problem.Status < 400 || c.Problem.Status >= 500 {
			t.Fatalf("a bad file got %+v, want a 4xx problem", c.Problem)
		}
		wantProblemShown(t, c.Alert, c.Problem)
	})
	t.Run("docs", func(t *testing.T) { checkDocs(t, got.Cases.Docs) })
	t.Run("axe", func(t *testing.T) {
		for name, v := range map[string][]violation{"desktop": got.Cases.Desktop.Axe, "phone": got.Cases.Phone.Axe} {
			for _, x := range v {
				if x.Impact == "serious" || x.Impact == "critical" {
					t.Errorf("%s: %s (%s): %s, at %v", name, x.ID, x.Impact, x.Help, x.Nodes)
				} else {
					t.Logf("%s: %s (%s): %s, at %v", name, x.ID, x.Impact, x.Help, x.Nodes)
				}
			}
		}
		if o := got.Cases.Phone.Overflow; o > 0 {
			t.Errorf("at 390×844 the page is %d px wider than the screen", o)
		}
	})
	for _, name := range []string{"page-desktop.png", "page-phone.png"} {
		if _, err := os.Stat(filepath.Join(shots, name)); err != nil {
			t.Errorf("screenshot: %v", err)
		}
	}
}

// result is what page.mjs prints.
type result struct {
	External   []string `json:"external"`
	CSP        []string `json:"csp"`
	PageErrors []string `json:"pageErrors"`
	Cases      struct {
		Token struct {
			Alert      string   `json:"alert"`
			Problem    *problem `json:"problem"`
			Models     []string `json:"models"`
			AlertAfter string   `json:"alertAfter"`
		} `json:"token"`
		Draw       drawCase `json:"draw"`
		SampleBadN struct {
			Alert   string   `json:"alert"`
			Problem *problem `json:"problem"`
		} `json:"sample-bad-n"`
		Sample       sampleCase       `json:"sample"`
		SampleRandom sampleRandomCase `json:"sample-random"`
		Interpolate  interpolateCase  `json:"interpolate"`
		Desktop      struct {
			Axe []violation `json:"axe"`
		} `json:"desktop"`
		Phone struct {
			Axe      []violation `json:"axe"`
			Overflow int         `json:"overflow"`
		} `json:"phone"`
		Denoise struct {
			Classify string `json:"classify"`
		} `json:"denoise"`
		Quant   quantCase `json:"quant"`
		BadFile struct {
			Alert   string   `json:"alert"`
			Problem *problem `json:"problem"`
		} `json:"bad-file"`
		Docs docsCase `json:"docs"`
	} `json:"cases"`
}

type problem struct {
	URL    string `json:"url"`
	Status int    `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

type violation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

type drawCase struct {
	Requests   int               `json:"requests"`
	URL        string            `json:"url"`
	Type       string            `json:"type"`
	Auth       string            `json:"auth"`
	Sent       string            `json:"sent"`
	NoisyState string            `json:"noisyState"`
	InputState string            `json:"inputState"`
	Output     shown             `json:"output"`
	Received   shown             `json:"received"`
	Captions   map[string]string `json:"captions"`
	Latent     bool              `json:"latentVisible"`
	Transmit   string            `json:"transmit"`
	Quant      quantChoice       `json:"quant"`
	EncodeURL  string            `json:"encodeURL"`
	Score      string            `json:"score"`
	Classify   string            `json:"classify"`
	Bars       int               `json:"bars"`
	Alert      string            `json:"alert"`
}

// quantChoice is the sender and receiver view's dtype control.
type quantChoice struct {
	Value   string   `json:"value"`
	Options []string `json:"options"`
}

// quantCase is the compact model's int8 latent, sent and received.
type quantCase struct {
	Initial quantChoice `json:"initial"` // as compact was selected
	Quant   quantChoice `json:"quant"`   // once int8 was chosen and a 7 drawn
	Encode  *sentBody   `json:"encode"`
	Decode  *sentBody   `json:"decode"`
	// Parsed is the page's parseLatent of the latent it sent to /v1/decode.
	Parsed *struct {
		DType  string    `json:"dtype"`
		Shape  []int     `json:"shape"`
		Scale  float64   `json:"scale"`
		Values []float64 `json:"values"`
	} `json:"parsed"`
	Transmit        string `json:"transmit"`
	ReceivedLabel   string `json:"receivedLabel"`
	ReceivedVisible bool   `json:"receivedVisible"`
	Received        *shown `json:"received"`
	LatentCaption   string `json:"latentCaption"`
	LatentVisible   bool   `json:"latentVisible"`
	Alert           string `json:"alert"`
}

// sentBody is a request the page sent.
type sentBody struct {
	URL    string `json:"url"`
	Type   string `json:"type"`
	Accept string `json:"accept"`
	Body   string `json:"body"` // base64
}

// shown is an image as the page shows it: its grey levels, read back
// from the <img>.
type shown struct {
	Width  int     `json:"width"`
	Height int     `json:"height"`
	Px     []uint8 `json:"px"`
}

// digitShown is one image of a list of digits the page shows (the
// generative views'), with its alt text.
type digitShown struct {
	shown
	Alt string `json:"alt"`
}

// call is one POST the page made and the status and X-Seed it got.
type call struct {
	URL    string  `json:"url"`
	Type   string  `json:"type"`
	Accept string  `json:"accept"`
	Body   string  `json:"body"` // base64
	Status int     `json:"status"`
	Seed   *string `json:"seed"`
}

// sampleCase is vae's 8 digits of seed 1, drawn twice.
type sampleCase struct {
	Calls     []call       `json:"calls"`
	First     []digitShown `json:"first"`
	Second    []digitShown `json:"second"`
	SeedFirst string       `json:"seedFirst"` // the seed shown after the first draw
	Seed      string       `json:"seed"`      // and after the second
	Summary   string       `json:"summary"`
	Timing    string       `json:"timing"`
	Alert     string       `json:"alert"`
}

// sampleRandomCase is 16 digits drawn without a seed.
type sampleRandomCase struct {
	Calls       []call       `json:"calls"`
	Digits      []digitShown `json:"digits"`
	Seed        string       `json:"seed"`
	Summary     string       `json:"summary"`
	KeepVisible bool         `json:"keepVisible"`
	SeedField   string       `json:"seedField"` // after "Keep this seed"
	Alert       string       `json:"alert"`
}

// interpolateCase is the drawn 7 to the example 0 in 6 steps.
type interpolateCase struct {
	Calls      []call       `json:"calls"`
	InputState string       `json:"inputState"` // the page's 28×28 input, base64 PNG
	Digits     []digitShown `json:"digits"`
	From       shown        `json:"from"`
	To         shown        `json:"to"`
	Summary    string       `json:"summary"`
	Timing     string       `json:"timing"`
	Alert      string       `json:"alert"`
}

type docsCase struct {
	Ops      []string `json:"ops"`
	TryItOut struct {
		Status string `json:"status"`
		Body   string `json:"body"`
	} `json:"tryItOut"`
}

// wantProblemShown checks that the page shows the problem's title and
// detail, as the server sent them.
func wantProblemShown(t *testing.T, alert string, p *problem) {
	t.Helper()
	if p.Title == "" || p.Detail == "" {
		t.Fatalf("problem without title or detail: %+v", p)
	}
	if !strings.Contains(alert, p.Title) || !strings.Contains(alert, p.Detail) {
		t.Errorf("the page shows %q, not the problem's title %q and detail %q", alert, p.Title, p.Detail)
	}
}

// checkDraw holds the drawing's run to the server: the 28×28 input the
// page sent to /v1/reconstruct, posted again from here, must give the
// output the page shows, pixel for pixel.
func checkDraw(t *testing.T, base string, c drawCase) {
	if c.Requests == 0 || c.Sent == "" {
		t.Fatalf("the page sent no image to /v1/reconstruct (alert %q)", c.Alert)
	}
	if c.Alert != "" {
		t.Errorf("the page shows an error: %q", c.Alert)
	}
	if !strings.HasSuffix(c.URL, "/v1/reconstruct?model=conv") || c.Type != "image/png" || c.Auth != "Bearer "+token {
		t.Errorf("the page sent %s (%s, Authorization %q)", c.URL, c.Type, c.Auth)
	}
	sent := unb64(t, c.Sent)
	if !bytes.Equal(sent, unb64(t, c.NoisyState)) {
		t.Error("what the page sent is not the noisy input of its state")
	}
	in := gray(t, sent)
	if in.Bounds() != image.Rect(0, 0, 28, 28) {
		t.Fatalf("the page sent a %v image, want 28×28", in.Bounds())
	}
	clean := gray(t, unb64(t, c.InputState))
	if bytes.Equal(in.Pix, clean.Pix) {
		t.Error("noise 0.3 left the input unchanged")
	}
	var ink int
	for _, v := range clean.Pix {
		if v > 128 {
			ink++
		}
	}
	if ink < 20 || ink > 400 {
		t.Errorf("the fitted input has %d inked pixels of 784: not a drawn digit", ink)
	}

	want := gray(t, post(t, base, "/v1/reconstruct?model=conv", "image/png", "image/png", sent))
	if c.Output.Width != 28 || c.Output.Height != 28 || len(c.Output.Px) != len(want.Pix) {
		t.Fatalf("the page shows a %d×%d output", c.Output.Width, c.Output.Height)
	}
	if !bytes.Equal(want.Pix, c.Output.Px) {
		t.Errorf("the output the page shows differs from /v1/reconstruct's for the input it sent (%d pixels differ)", differ(want.Pix, c.Output.Px))
	}
	// The receiver decodes the sender's binary latent: the same network
	// as the full model, run in two halves.
	if len(c.Received.Px) != len(want.Pix) || maxDiff(c.Received.Px, want.Pix) > 1 {
		t.Errorf("the receiver's digit (%d×%d) differs from the reconstruction", c.Received.Width, c.Received.Height)
	}

	for _, k := range []string{"input", "latent", "output"} {
		if !strings.Contains(c.Captions[k], " ms") || !strings.Contains(c.Captions[k], "POST /v1/") {
			t.Errorf("the %s tile's caption %q gives no call and latency", k, c.Captions[k])
		}
	}
	if !strings.Contains(c.Captions["noisy"], "noise 0.30, seed 7") {
		t.Errorf("noisy caption %q", c.Captions["noisy"])
	}
	if !c.Latent || !strings.Contains(c.Captions["latent"], "32 maps of 7×7") {
		t.Errorf("latent heat map shown %v, caption %q", c.Latent, c.Captions["latent"])
	}
	if !strings.Contains(c.Transmit, "6,287 bytes") {
		t.Errorf("sender and receiver: %q, want conv's 6,287-byte latent", c.Transmit)
	}
	// conv offers no int8: its latent goes as float32, the server's default.
	if c.Quant.Value != "float32" || !slices.Equal(c.Quant.Options, []string{"float32", "float16"}) {
		t.Errorf("conv's dtypes: %+v, want float32 of [float32 float16]", c.Quant)
	}
	if u, err := url.Parse(c.EncodeURL); err != nil || u.Path != "/v1/encode" || u.Query().Get("model") != "conv" || u.Query().Has("quant") {
		t.Errorf("the page encoded conv's latent with %q, want /v1/encode?model=conv (float32)", c.EncodeURL)
	}
	if !strings.Contains(c.Score, "MSE ") || !strings.Contains(c.Score, "BCE ") || !strings.Contains(c.Score, "test digits") {
		t.Errorf("anomaly score: %q", c.Score)
	}
	if !strings.HasPrefix(c.Classify, "classifier reads a ") || c.Bars != 10 {
		t.Errorf("classify: %q with %d bars", c.Classify, c.Bars)
	}
}

// checkQuant holds compact's int8 latent to the server: the latent the page
// sent to /v1/decode must be, byte for byte, what /v1/encode?quant=int8
// answers for the image the page encoded (47 bytes), the page must say so
// and read its values as data·scale, and the digit it shows must be what
// /v1/decode makes of that latent.
func checkQuant(t *testing.T, base string, c quantCase) {
	if c.Alert != "" {
		t.Errorf("the page shows an error: %q", c.Alert)
	}
	all := []string{"float32", "float16", "int8"}
	if c.Initial.Value != "int8" || !slices.Equal(c.Initial.Options, all) {
		t.Errorf("compact's dtypes: %+v, want int8 (the default) of %v", c.Initial, all)
	}
	if c.Quant.Value != "int8" {
		t.Errorf("after choosing int8 the control says %q", c.Quant.Value)
	}
	if c.Encode == nil || c.Decode == nil {
		t.Fatalf("the page sent no latent: encode %v, decode %v", c.Encode, c.Decode)
	}
	u, err := url.Parse(c.Encode.URL)
	if err != nil || u.Path != "/v1/encode" || u.Query().Get("model") != "compact" || u.Query().Get("quant") != "int8" ||
		c.Encode.Accept != "application/octet-stream" || c.Encode.Type != "image/png" {
		t.Errorf("the page encoded with %s (%s, Accept %s), want /v1/encode?model=compact&quant=int8 of a PNG, for the binary latent",
			c.Encode.URL, c.Encode.Type, c.Encode.Accept)
	}
	if c.Decode.Type != "application/octet-stream" {
		t.Errorf("the page sent the latent to /v1/decode as %q", c.Decode.Type)
	}
	png := unb64(t, c.Encode.Body)
	latent := unb64(t, c.Decode.Body)
	want := post(t, base, "/v1/encode?model=compact&quant=int8", "image/png", "application/octet-stream", png)
	if !bytes.Equal(latent, want) {
		t.Fatalf("the page sent a %d-byte latent to /v1/decode, not the %d bytes /v1/encode?quant=int8 answers for its input", len(latent), len(want))
	}
	var l api.Latent
	if err := l.UnmarshalBinary(latent); err != nil {
		t.Fatal(err)
	}
	if len(latent) != 47 || l.DType != api.DTypeInt8 || !slices.Equal(l.Shape, []int{1, 32}) {
		t.Fatalf("compact's int8 latent: %d bytes, %s %v; want 47 bytes, int8 [1 32]", len(latent), l.DType, l.Shape)
	}

	// What the page says of it: 47 bytes against the PNG's, and the ratio.
	ratio := fmt.Sprintf("%.1f× smaller", float64(len(png))/47)
	for _, s := range []string{"47 bytes (32 int8", fmt.Sprintf("%s: the latent is %s", formatBytes(len(png)), ratio)} {
		if !strings.Contains(c.Transmit, s) {
			t.Errorf("sender and receiver: %q, want %q", c.Transmit, s)
		}
	}

	// The page's parser dequantises: data·scale, as api.Latent.Values.
	vals := l.Values()
	if p := c.Parsed; p == nil || p.DType != "int8" || !slices.Equal(p.Shape, l.Shape) || p.Scale != float64(l.Scale) || len(p.Values) != len(vals) {
		t.Fatalf("the page's parseLatent read %+v; want int8 %v with the scale %v", c.Parsed, l.Shape, l.Scale)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, v := range vals {
		if math.Abs(c.Parsed.Values[i]-float64(v)) > 1e-6*math.Max(1, math.Abs(float64(v))) {
			t.Fatalf("the page's parseLatent reads value %d as %v, want %v (data %v × scale %v)", i, c.Parsed.Values[i], v, l.Data[i], l.Scale)
		}
		lo, hi = min(lo, float64(v)), max(hi, float64(v))
	}
	// The heat map shows those values: its range is theirs.
	if !c.LatentVisible || !strings.Contains(c.LatentCaption, "32 numbers, int8") {
		t.Errorf("latent heat map shown %v, caption %q", c.LatentVisible, c.LatentCaption)
	}
	m := regexp.MustCompile(`(-?\d+\.\d+) \(dark\) to (-?\d+\.\d+) \(yellow\)`).FindStringSubmatch(c.LatentCaption)
	if m == nil {
		t.Errorf("the heat map's caption %q gives no range", c.LatentCaption)
	} else {
		gotLo, _ := strconv.ParseFloat(m[1], 64)
		gotHi, _ := strconv.ParseFloat(m[2], 64)
		if math.Abs(gotLo-lo) > 0.0051 || math.Abs(gotHi-hi) > 0.0051 {
			t.Errorf("the heat map spans %s to %s, the latent's values %.4f to %.4f", m[1], m[2], lo, hi)
		}
	}

	// The receiver shows what /v1/decode makes of the latent.
	if !c.ReceivedVisible || c.Received == nil {
		t.Fatalf("the receiver shows no digit (%q)", c.ReceivedLabel)
	}
	if c.ReceivedLabel != "Receiver: decoded from the int8 latent" {
		t.Errorf("the receiver's caption: %q", c.ReceivedLabel)
	}
	dec := gray(t, post(t, base, "/v1/decode", "application/octet-stream", "image/png", latent))
	if c.Received.Width != 28 || c.Received.Height != 28 || !bytes.Equal(c.Received.Px, dec.Pix) {
		t.Errorf("the receiver's digit (%d×%d) is not what /v1/decode makes of the latent", c.Received.Width, c.Received.Height)
	}
	if ink := inked(dec.Pix); ink < 20 {
		t.Errorf("the decoded digit has %d inked pixels of 784", ink)
	}
}

// timingRE is a call and its latency as the views caption them.
var timingRE = regexp.MustCompile(`^POST (/v1/[a-z]+) · \d+(\.\d)? ms$`)

func wantTiming(t *testing.T, got, route string) {
	t.Helper()
	if m := timingRE.FindStringSubmatch(got); m == nil || m[1] != route {
		t.Errorf("the view gives %q for its call, want POST %s and its latency", got, route)
	}
}

// wantQuery checks a call the page made: its route, query and Accept.
func wantQuery(t *testing.T, c call, route string, want url.Values) {
	t.Helper()
	u, err := url.Parse(c.URL)
	if err != nil || u.Path != route || !maps.EqualFunc(u.Query(), want, slices.Equal) || c.Accept != "application/json" || c.Status != http.StatusOK {
		t.Errorf("the page called %s (Accept %q) and got %d, want %s?%s as JSON", c.URL, c.Accept, c.Status, route, want.Encode())
	}
}

// wantImages checks the digits the page shows against the PNGs the server
// answers, pixel for pixel.
func wantImages(t *testing.T, what string, got []digitShown, want []*image.Gray) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: the page shows %d digits, the server answers %d", what, len(got), len(want))
	}
	for i, g := range got {
		if g.Width != 28 || g.Height != 28 || !bytes.Equal(g.Px, want[i].Pix) {
			t.Errorf("%s: digit %d (%d×%d) is not the server's", what, i+1, g.Width, g.Height)
		}
	}
}

// sampled asks /v1/sample for digits as JSON, as the page does, and
// returns them and the X-Seed answered.
func sampled(t *testing.T, base, query string) ([]*image.Gray, string) {
	t.Helper()
	b, h := postFull(t, base, "/v1/sample?"+query, "", "application/json", nil)
	return jsonImages(t, b), h.Get("X-Seed")
}

func jsonImages(t *testing.T, b []byte) []*image.Gray {
	t.Helper()
	var r api.Images
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	imgs := make([]*image.Gray, len(r.Images))
	for i, s := range r.Images {
		imgs[i] = gray(t, unb64(t, s))
	}
	return imgs
}

// checkSample holds the sample view to the server: drawn twice with seed
// 1, vae's 8 digits are the same both times, and they are what
// /v1/sample?model=vae&n=8&seed=1 answers, pixel for pixel; the page shows
// the seed (X-Seed) and the call's latency.
func checkSample(t *testing.T, base string, c sampleCase) {
	if c.Alert != "" {
		t.Errorf("the page shows an error: %q", c.Alert)
	}
	if len(c.Calls) != 2 {
		t.Fatalf("two draws made %d calls to /v1/sample", len(c.Calls))
	}
	for _, k := range c.Calls {
		wantQuery(t, k, "/v1/sample", url.Values{"model": {"vae"}, "n": {"8"}, "seed": {"1"}})
		if k.Seed == nil || *k.Seed != "1" {
			t.Errorf("X-Seed %v, want 1", k.Seed)
		}
		if k.Body != "" {
			t.Errorf("the page sent a body to /v1/sample: %q", k.Body)
		}
	}
	if c.SeedFirst != "1" || c.Seed != "1" || !strings.Contains(c.Summary, "8 digits from vae, drawn with seed 1") {
		t.Errorf("the page shows the seeds %q and %q: %q", c.SeedFirst, c.Seed, c.Summary)
	}
	wantTiming(t, c.Timing, "/v1/sample")
	want, seed := sampled(t, base, "model=vae&n=8&seed=1")
	if seed != "1" {
		t.Errorf("X-Seed %q for seed=1", seed)
	}
	wantImages(t, "first draw", c.First, want)
	wantImages(t, "second draw", c.Second, want)
	distinct := map[string]bool{}
	for i, d := range c.First {
		distinct[string(d.Px)] = true
		if ink := inked(d.Px); ink < 20 {
			t.Errorf("sample %d has %d inked pixels", i+1, ink)
		}
		if want := fmt.Sprintf("New digit %d of 8 from vae, seed 1", i+1); d.Alt != want {
			t.Errorf("sample %d's alt text %q, want %q", i+1, d.Alt, want)
		}
	}
	if len(distinct) < 6 {
		t.Errorf("8 samples are only %d different images", len(distinct))
	}
}

// checkSampleRandom: without a seed the page sends none, shows the one in
// X-Seed, and its digits are that seed's; "Keep this seed" keeps it.
func checkSampleRandom(t *testing.T, base string, c sampleRandomCase) {
	if c.Alert != "" {
		t.Errorf("the page shows an error: %q", c.Alert)
	}
	if len(c.Calls) != 1 {
		t.Fatalf("one draw made %d calls to /v1/sample", len(c.Calls))
	}
	k := c.Calls[0]
	wantQuery(t, k, "/v1/sample", url.Values{"model": {"vae"}, "n": {"16"}})
	if k.Seed == nil {
		t.Fatal("no X-Seed in the answer")
	}
	if n, err := strconv.ParseInt(*k.Seed, 10, 64); err != nil || n < 0 {
		t.Fatalf("X-Seed %q", *k.Seed)
	}
	if c.Seed != *k.Seed || !strings.Contains(c.Summary, "drawn with seed "+*k.Seed+" (the server picked it)") {
		t.Errorf("the page shows the seed %q (%q), X-Seed was %s", c.Seed, c.Summary, *k.Seed)
	}
	want, _ := sampled(t, base, "model=vae&n=16&seed="+*k.Seed)
	wantImages(t, "no seed", c.Digits, want)
	if !c.KeepVisible || c.SeedField != *k.Seed {
		t.Errorf(`"Keep this seed" shown %v; the seed field then holds %q, want %s`, c.KeepVisible, c.SeedField, *k.Seed)
	}
}

// checkInterpolate holds the interpolation view to the server: the page
// sent its 28×28 input and the example's in one multipart body; posted
// again from here, that body gives the 6 digits the page shows, pixel for
// pixel; the first and the last are vae's reconstructions of the two ends
// (the line runs between their means), nearer each its own end than the
// other; the end tiles show what was sent.
func checkInterpolate(t *testing.T, base string, c interpolateCase) {
	if c.Alert != "" {
		t.Errorf("the page shows an error: %q", c.Alert)
	}
	if len(c.Calls) == 0 {
		t.Fatal("the page made no call to /v1/interpolate")
	}
	k := c.Calls[len(c.Calls)-1]
	wantQuery(t, k, "/v1/interpolate", url.Values{"model": {"vae"}, "k": {"6"}})
	mt, params, err := mime.ParseMediaType(k.Type)
	if err != nil || mt != "multipart/form-data" {
		t.Fatalf("the page sent %q to /v1/interpolate, want multipart/form-data", k.Type)
	}
	body := unb64(t, k.Body)
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var ends [][]byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the page's multipart body: %v", err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		if p.FormName() != "img" || p.Header.Get("Content-Type") != "image/png" {
			t.Errorf("part %d: field %q, %q; want img, image/png", len(ends)+1, p.FormName(), p.Header.Get("Content-Type"))
		}
		ends = append(ends, b)
	}
	if len(ends) != 2 {
		t.Fatalf("the page sent %d images to /v1/interpolate, want 2", len(ends))
	}
	if !bytes.Equal(ends[0], unb64(t, c.InputState)) {
		t.Error("the first image the page sent is not its input (the drawing as the model sees it)")
	}
	a, b := gray(t, ends[0]), gray(t, ends[1])
	for i, g := range []*image.Gray{a, b} {
		if g.Rect.Dx() != 28 || g.Rect.Dy() != 28 {
			t.Errorf("end %d is %v, want 28×28", i+1, g.Rect)
		}
	}
	if !bytes.Equal(c.From.Px, a.Pix) || !bytes.Equal(c.To.Px, b.Pix) {
		t.Error("the end tiles do not show the two images sent")
	}
	if inked(b.Pix) < 20 {
		t.Errorf("the example digit sent has %d inked pixels", inked(b.Pix))
	}

	ans, _ := postFull(t, base, "/v1/interpolate?model=vae&k=6", k.Type, "application/json", body)
	want := jsonImages(t, ans)
	wantImages(t, "interpolation", c.Digits, want)
	if len(want) != 6 {
		t.Fatalf("/v1/interpolate?k=6 answered %d images", len(want))
	}
	first, last := want[0].Pix, want[5].Pix
	ra := gray(t, post(t, base, "/v1/reconstruct?model=vae", "image/png", "image/png", ends[0])).Pix
	rb := gray(t, post(t, base, "/v1/reconstruct?model=vae", "image/png", "image/png", ends[1])).Pix
	if d := maxDiff(first, ra); d > 2 {
		t.Errorf("the first digit differs from vae's reconstruction of your digit by up to %d levels", d)
	}
	if d := maxDiff(last, rb); d > 2 {
		t.Errorf("the last digit differs from vae's reconstruction of the example by up to %d levels", d)
	}
	if mse(first, a.Pix) >= mse(first, b.Pix) || mse(last, b.Pix) >= mse(last, a.Pix) {
		t.Errorf("the ends do not resemble theirs: first %.4f from yours, %.4f from the example; last %.4f, %.4f",
			mse(first, a.Pix), mse(first, b.Pix), mse(last, a.Pix), mse(last, b.Pix))
	}
	t.Logf("ends: first %.4f from yours (%.4f from the example), last %.4f from the example (%.4f from yours)",
		mse(first, a.Pix), mse(first, b.Pix), mse(last, b.Pix), mse(last, a.Pix))

	if n := len(c.Digits); n == 6 && (!strings.HasSuffix(c.Digits[0].Alt, ": from your digit") || !strings.HasSuffix(c.Digits[5].Alt, ": to the example 0") ||
		c.Digits[2].Alt != "Step 3 of 6") {
		t.Errorf("alt texts %q, %q, %q", c.Digits[0].Alt, c.Digits[2].Alt, c.Digits[5].Alt)
	}
	if c.Summary != "6 digits from yours to the example 0, by vae." {
		t.Errorf("summary %q", c.Summary)
	}
	wantTiming(t, c.Timing, "/v1/interpolate")
}

// inked counts the pixels above half grey.
func inked(px []uint8) int {
	n := 0
	for _, v := range px {
		if v > 128 {
			n++
		}
	}
	return n
}

// mse is the mean squared difference of two images, in [0, 1].
func mse(a, b []uint8) float64 {
	s := 0.0
	for i := range a {
		d := (float64(a[i]) - float64(b[i])) / 255
		s += d * d
	}
	return s / float64(len(a))
}

// formatBytes is the page's byte count: thousands separated by commas.
func formatBytes(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s + " bytes"
}

// post sends body to the test server as the page would, with the token,
// and returns the 200 answer's body.
func post(t *testing.T, base, path, ctype, accept string, body []byte) []byte {
	t.Helper()
	b, _ := postFull(t, base, path, ctype, accept, body)
	return b
}

// postFull is post with the answer's header; an empty ctype sends none.
func postFull(t *testing.T, base, path, ctype, accept string, body []byte) ([]byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d %v %.200s", path, res.StatusCode, err, b)
	}
	return b, res.Header
}

// checkDocs compares the operations Swagger UI lists with the spec's.
func checkDocs(t *testing.T, c docsCase) {
	doc, err := openapi3.NewLoader().LoadFromData(aeserve.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for p, item := range doc.Paths.Map() {
		for m := range item.Operations() {
			want = append(want, strings.ToUpper(m)+" "+p)
		}
	}
	got := slices.Clone(c.Ops)
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("/docs lists %d operations, the spec has %d:\n got %v\nwant %v", len(got), len(want), got, want)
	}
	if c.TryItOut.Status != "200" || !strings.Contains(c.TryItOut.Body, `"status": "ok"`) {
		t.Errorf("Try it out on GET /healthz: %q %q", c.TryItOut.Status, c.TryItOut.Body)
	}
}

// browserTools finds Chromium and Node and checks that `npm ci` has
// installed page.mjs's packages; without them the test skips, or fails
// under CI=true (.ci/run installs them all).
func browserTools(t *testing.T) (chromium, node string) {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true: the browser test must run; .ci/run installs what it needs)", msg)
		}
		t.Skip(msg)
	}
	var err error
	chromium = os.Getenv("AESERVE_CHROMIUM")
	if chromium != "" {
		if _, err := os.Stat(chromium); err != nil {
			missing("AESERVE_CHROMIUM: %v", err)
		}
	} else {
		for _, name := range []string{"chromium", "chromium-browser"} {
			if chromium, err = exec.LookPath(name); err == nil {
				break
			}
		}
	}
	if chromium == "" {
		missing("no chromium (apt-get install chromium, or set AESERVE_CHROMIUM)")
	}
	if node, err = exec.LookPath("node"); err != nil {
		missing("no node: %v", err)
	}
	for _, pkg := range []string{"playwright-core", "axe-core"} {
		if _, err := os.Stat(filepath.Join(browserDir, "node_modules", pkg, "package.json")); err != nil {
			missing("%s is not installed: run npm ci in internal/web/%s", pkg, browserDir)
		}
	}
	return chromium, node
}

// startServer serves every embedded model on loopback, as cmd/server does
// by default, with a bearer token, and returns its URL.
func startServer(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := server.New(server.Config{Log: zerolog.Nop(), OpenAPI: aeserve.OpenAPI, AuthTokensFile: tokens})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := fs.ReadDir(weights.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	var ms []*model.Model
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		m, err := model.LoadFS(weights.FS, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	if err := s.Load(ms...); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func unb64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gray decodes a PNG to grey levels.
func gray(t *testing.T, b []byte) *image.Gray {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if g, ok := img.(*image.Gray); ok {
		return g
	}
	g := image.NewGray(img.Bounds())
	draw.Draw(g, g.Bounds(), img, img.Bounds().Min, draw.Src)
	return g
}

func differ(a, b []uint8) int {
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

func maxDiff(a, b []uint8) int {
	d := 0
	for i := range a {
		d = max(d, int(a[i])-int(b[i]), int(b[i])-int(a[i]))
	}
	return d
}
