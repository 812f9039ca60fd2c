package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aeserve/aeserve/api"
	"github.com/aeserve/aeserve/api/oip"
	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/internal/server"
	"github.com/aeserve/aeserve/weights"
)

// startServerAll serves every embedded model on loopback over HTTP and over
// gRPC, as the server does with --grpc-addr, and returns the HTTP base URL
// and the gRPC address.
func startServerAll(t *testing.T) (url, grpcAddr string) {
	t.Helper()
	s, err := server.New(server.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var ms []*model.Model
	for _, name := range embedded(t) {
		m, err := model.LoadFS(weights.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	if err := s.Load(ms...); err != nil {
		t.Fatal(err)
	}
	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.ServeAll(ctx, server.Listeners{API: apiLn, GRPC: grpcLn}) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	return "http://" + apiLn.Addr().String(), grpcLn.Addr().String()
}

// v2Modes are the ways of speaking V2: REST at --server, and gRPC, each
// as a command's flag and as a flag before the command.
func v2Modes(grpcAddr string) []struct {
	name       string
	before, in []string
} {
	return []struct {
		name       string
		before, in []string
	}{
		{"REST", nil, []string{"--v2"}},
		{"REST-top", []string{"--v2"}, nil},
		{"gRPC", nil, []string{"--grpc", grpcAddr}},
		{"gRPC-top", []string{"--grpc", grpcAddr}, nil},
	}
}

// args is before, cmd, in, then rest.
func args(before []string, cmd string, in []string, rest ...string) []string {
	a := append(slices.Clone(before), cmd)
	a = append(a, in...)
	return append(a, rest...)
}

func readBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameFiles checks that two directories hold the same files, byte for byte;
// stemmed allows names that differ before their first dot.
func sameFiles(t *testing.T, what, want, got string, stemmed bool) {
	t.Helper()
	we, err := os.ReadDir(want)
	if err != nil {
		t.Fatal(err)
	}
	ge, err := os.ReadDir(got)
	if err != nil {
		t.Fatal(err)
	}
	// Named after the inputs, or after the latent file (whose stem may differ).
	var wn, gn []string
	for _, e := range we {
		wn = append(wn, e.Name())
	}
	for _, e := range ge {
		gn = append(gn, e.Name())
	}
	rest := func(names []string) []string {
		var out []string
		for _, n := range names {
			out = append(out, n[strings.Index(n, "."):])
		}
		return out
	}
	if !slices.Equal(wn, gn) && !(stemmed && slices.Equal(rest(wn), rest(gn))) || len(wn) == 0 {
		t.Fatalf("%s: files %v, want %v", what, gn, wn)
	}
	for i := range wn {
		if !bytes.Equal(readBytes(t, filepath.Join(want, wn[i])), readBytes(t, filepath.Join(got, gn[i]))) {
			t.Errorf("%s: %s differs from /v1's %s", what, gn[i], wn[i])
		}
	}
}

// A latent made over V2 is the one /v1 makes, byte for byte, so either
// decodes the other's; and the PNGs are the same.
func TestV2EncodeDecode(t *testing.T) {
	srv, grpcAddr := startServerAll(t)
	dir := t.TempDir()
	imgs := writeDigits(t, dir, []string{"a", "b", "c"}, 40)
	lat1 := filepath.Join(dir, "v1.lat")
	aectl(t, srv, nil, "encode", imgs[0], imgs[1], imgs[2], "-o", lat1).want(t, 0)
	dec1 := filepath.Join(dir, "v1-v1")
	aectl(t, srv, nil, "decode", lat1, "-o", dec1+"/").want(t, 0)
	js1 := aectl(t, srv, nil, "encode", "--json", "--model", "dense", imgs[0]).want(t, 0).stdout
	one1 := aectl(t, srv, []byte(js1), "decode").want(t, 0).stdout

	for _, m := range v2Modes(grpcAddr) {
		t.Run(m.name, func(t *testing.T) {
			// encode --v2 → decode (v1)
			lat2 := filepath.Join(dir, m.name+".lat")
			aectl(t, srv, nil, args(m.before, "encode", m.in, imgs[0], imgs[1], imgs[2], "-o", lat2)...).want(t, 0)
			if !bytes.Equal(readBytes(t, lat2), readBytes(t, lat1)) {
				t.Fatal("encode over V2 wrote another latent than over /v1")
			}
			out := filepath.Join(dir, m.name+"-v2-v1")
			aectl(t, srv, nil, "decode", lat2, "-o", out+"/").want(t, 0)
			sameFiles(t, "encode --v2 → decode", dec1, out, true)

			// encode (v1) → decode --v2: the model is found by the
			// latent's fingerprint in /v1/models.
			out = filepath.Join(dir, m.name+"-v1-v2")
			aectl(t, srv, nil, args(m.before, "decode", m.in, lat1, "-o", out+"/")...).want(t, 0)
			sameFiles(t, "encode → decode --v2", dec1, out, true)
			// ...or named.
			out = filepath.Join(dir, m.name+"-named")
			aectl(t, srv, nil, args(m.before, "decode", m.in, "--model", "conv", lat1, "-o", out+"/")...).want(t, 0)
			sameFiles(t, "decode --v2 --model conv", dec1, out, true)

			// JSON latents, through stdin and stdout: the same text.
			js := aectl(t, srv, readBytes(t, imgs[0]), args(m.before, "encode", m.in, "--json", "--model", "dense", "-")...).want(t, 0).stdout
			if js != js1 {
				t.Errorf("JSON latent over V2 differs from /v1's:\n%.200s\n%.200s", js, js1)
			}
			if one := aectl(t, srv, []byte(js), args(m.before, "decode", m.in)...).want(t, 0).stdout; one != one1 {
				t.Error("a JSON latent decodes over V2 to another PNG than over /v1")
			}
		})
	}
}

// reconstruct, denoise (also of any size, with --fit) write the files /v1
// writes.
func TestV2ReconstructDenoise(t *testing.T) {
	srv, grpcAddr := startServerAll(t)
	dir := t.TempDir()
	imgs := writeDigits(t, dir, []string{"x", "y", "z"}, 60)
	big := filepath.Join(dir, "big.png")
	if err := os.WriteFile(big, enlarged(t, readBytes(t, imgs[0])), 0o644); err != nil {
		t.Fatal(err)
	}
	type run struct {
		cmd  string
		more []string
	}
	runs := []run{
		{"reconstruct", nil},
		{"reconstruct", []string{"--model", "dense"}},
		{"denoise", nil},
		{"denoise", []string{"--model", "deep"}},
	}
	v1 := map[int]string{}
	for i, r := range runs {
		v1[i] = filepath.Join(dir, fmt.Sprintf("v1-%d", i))
		aectl(t, srv, nil, append(append([]string{r.cmd}, r.more...), append(slices.Clone(imgs), "-o", v1[i])...)...).want(t, 0)
	}
	fit1 := aectl(t, srv, nil, "reconstruct", "--fit", big).want(t, 0).stdout
	for _, m := range v2Modes(grpcAddr) {
		t.Run(m.name, func(t *testing.T) {
			for i, r := range runs {
				out := filepath.Join(dir, fmt.Sprintf("%s-%d", m.name, i))
				aectl(t, srv, nil, args(m.before, r.cmd, m.in, append(append(slices.Clone(r.more), imgs...), "-o", out)...)...).want(t, 0)
				sameFiles(t, fmt.Sprint(r.cmd, r.more), v1[i], out, false)
			}
			if got := aectl(t, srv, nil, args(m.before, "reconstruct", m.in, "--fit", big)...).want(t, 0).stdout; got != fit1 {
				t.Error("reconstruct --fit over V2 differs from /v1's")
			}
			// Without --fit, aectl says what the server would have.
			res := aectl(t, srv, nil, args(m.before, "reconstruct", m.in, big)...).want(t, 1)
			if !strings.Contains(res.stderr, "image 0: image is 56×56, want 28×28 (use --fit to resize)") {
				t.Errorf("56×56 without --fit: %s", res.stderr)
			}
		})
	}
}

// enlarged is a PNG at twice the size, for --fit.
func enlarged(t *testing.T, b []byte) []byte {
	t.Helper()
	src, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	dst := image.NewGray(image.Rect(0, 0, 56, 56))
	for y := range 56 {
		for x := range 56 {
			dst.Set(x, y, src.At(x/2, y/2))
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, dst); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// classify over V2 answers as /v1 does, and as the label file says.
func TestV2Classify(t *testing.T) {
	srv, grpcAddr := startServerAll(t)
	dir := t.TempDir()
	var names []string
	for i := range 12 {
		names = append(names, fmt.Sprintf("d%02d", i))
	}
	const first = 300
	imgs := writeDigits(t, dir, names, first)
	labels := make([]int, len(imgs))
	for i := range labels {
		_, labels[i] = testDigit(t, first+i)
	}
	text1 := aectl(t, srv, nil, append([]string{"classify"}, imgs...)...).want(t, 0).stdout
	den1 := aectl(t, srv, nil, append([]string{"classify", "--denoise", "--json"}, imgs...)...).want(t, 0).stdout
	one1 := aectl(t, srv, nil, "classify", "--json", imgs[0]).want(t, 0).stdout
	for _, m := range v2Modes(grpcAddr) {
		t.Run(m.name, func(t *testing.T) {
			out := aectl(t, srv, nil, args(m.before, "classify", m.in, imgs...)...).want(t, 0).stdout
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(lines) != len(imgs) {
				t.Fatalf("%d lines for %d images:\n%s", len(lines), len(imgs), out)
			}
			correct := 0
			for i, line := range lines {
				mm := classLine.FindStringSubmatch(line)
				if mm == nil || mm[1] != imgs[i] {
					t.Fatalf("line %q, want %q: D (p=…)", line, imgs[i])
				}
				if mm[2] == fmt.Sprint(labels[i]) {
					correct++
				}
			}
			if correct < len(imgs)-1 {
				t.Errorf("%d of %d digits classified as labelled:\n%s", correct, len(imgs), out)
			}
			if out != text1 {
				t.Errorf("classify over V2:\n%s\nover /v1:\n%s", out, text1)
			}
			// --denoise is two calls, the denoiser then the classifier:
			// the same answer, naming the denoiser.
			den := aectl(t, srv, nil, args(m.before, "classify", m.in, append([]string{"--denoise", "--json"}, imgs...)...)...).want(t, 0).stdout
			if den != den1 {
				t.Errorf("classify --denoise --json over V2:\n%.400s\nover /v1:\n%.400s", den, den1)
			}
			var res api.Classifications
			if err := json.Unmarshal([]byte(den), &res); err != nil || res.Denoiser != "denoise" || res.DenoiserFingerprint == "" {
				t.Errorf("denoised answer %+v, %v", res, err)
			}
			if one := aectl(t, srv, nil, args(m.before, "classify", m.in, "--json", imgs[0])...).want(t, 0).stdout; one != one1 {
				t.Errorf("one image over V2:\n%s\nover /v1:\n%s", one, one1)
			}
		})
	}
}

func TestV2Models(t *testing.T) {
	srv, grpcAddr := startServerAll(t)
	var ml api.ModelList
	if err := json.Unmarshal([]byte(aectl(t, srv, nil, "models", "--json").want(t, 0).stdout), &ml); err != nil {
		t.Fatal(err)
	}
	fp := map[string]string{}
	for _, m := range ml.Models {
		fp[m.Name] = m.Fingerprint
	}
	for _, m := range v2Modes(grpcAddr) {
		t.Run(m.name, func(t *testing.T) {
			table := aectl(t, srv, nil, args(m.before, "models", m.in)...).want(t, 0).stdout
			lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
			if !strings.HasPrefix(lines[0], "aeserve ") || !strings.Contains(lines[0], "binary_tensor_data") ||
				!strings.HasPrefix(lines[2], "MODEL ") {
				t.Fatalf("table:\n%s", table)
			}
			rows := map[string][]string{}
			var order []string
			for _, l := range lines[3:] {
				f := strings.Fields(l)
				rows[f[0]] = f
				order = append(order, f[0])
			}
			// Model by model, the whole model first.
			if i := slices.Index(order, "conv"); i < 0 || i+2 >= len(order) || order[i+1] != "conv.encoder" || order[i+2] != "conv.decoder" {
				t.Errorf("order %v", order)
			}
			// Every autoencoder's three stages, the classifier's one.
			if len(rows) != 3*(len(ml.Models)-1)+1 {
				t.Errorf("%d V2 models for %d models:\n%s", len(rows), len(ml.Models), table)
			}
			if r := rows["conv.encoder"]; r == nil || r[1] != fp["conv"] || strings.Join(r[2:], " ") != "images FP32 [-1,1,28,28] latent FP32 [-1,32,7,7]" {
				t.Errorf("conv.encoder row %q", r)
			}
			if r := rows["classifier"]; r == nil || !strings.Contains(strings.Join(r, " "), "probabilities FP32 [-1,10], digit INT64 [-1]") {
				t.Errorf("classifier row %q", r)
			}

			var listing struct {
				Server oip.ServerMetadata
				Models []oip.ModelMetadata
			}
			js := aectl(t, srv, nil, args(m.before, "models", m.in, "--json")...).want(t, 0).stdout
			if err := json.Unmarshal([]byte(js), &listing); err != nil || listing.Server.Name != "aeserve" || len(listing.Models) != len(rows) {
				t.Errorf("--json: %+v, %v", listing, err)
			}

			one := aectl(t, srv, nil, args(m.before, "models", m.in, "dense.decoder")...).want(t, 0).stdout
			for _, want := range []string{"name:", "dense.decoder", "versions:  " + fp["dense"], "ready:     yes", "input:     latent FP32 [-1,32]",
				"output:    images FP32 [-1,1,28,28]"} {
				if !strings.Contains(one, want) {
					t.Errorf("models dense.decoder lacks %q:\n%s", want, one)
				}
			}
			var mm oip.ModelMetadata
			if err := json.Unmarshal([]byte(aectl(t, srv, nil, args(m.before, "models", m.in, "--json", "classifier")...).want(t, 0).stdout), &mm); err != nil ||
				mm.Name != "classifier" || len(mm.Outputs) != 2 {
				t.Errorf("models --json classifier: %+v, %v", mm, err)
			}
		})
	}
}

func TestV2Failures(t *testing.T) {
	srv, grpcAddr := startServerAll(t)
	dir := t.TempDir()
	imgs := writeDigits(t, dir, []string{"a"}, 0)
	lat := filepath.Join(dir, "a.lat")
	aectl(t, srv, nil, "encode", imgs[0], "-o", lat).want(t, 0)
	// A dead address: a listener closed at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()

	for _, tc := range []struct {
		args []string
		want string // the start of stderr
	}{
		{[]string{"--v2", "encode", "--model", "nope", imgs[0]}, `aectl: encode: 404 Not Found: unknown-model: no model named "nope.encoder"`},
		{[]string{"--grpc", grpcAddr, "encode", "--model", "nope", imgs[0]}, `aectl: encode: NotFound: unknown-model: no model named "nope.encoder"`},
		{[]string{"--v2", "models", "nope"}, `aectl: models: 404 Not Found: unknown-model: no model named "nope"`},
		{[]string{"--v2", "classify", "--model", "conv", imgs[0]}, "aectl: classify: conv is not a classifier: it answered images, not probabilities"},
		// The latent's fingerprint is checked by the decoder asked for.
		{[]string{"--v2", "decode", "--model", "denoise", lat}, "aectl: decode: 400 Bad Request: malformed: input \"latent\": parameters.fingerprint"},
		{[]string{"--grpc", grpcAddr, "decode", "--model", "denoise", lat}, "aectl: decode: InvalidArgument: malformed: input \"latent\": parameters.fingerprint"},
		// Without /v1, a binary latent's model must be named.
		{[]string{"--server", "http://" + dead, "--grpc", grpcAddr, "decode", lat}, "aectl: decode: the latent names no model, and /v1/models at http://" + dead},
		{[]string{"--grpc", dead, "classify", imgs[0]}, "aectl: cannot reach " + dead + ": connection refused\n"},
		{[]string{"--server", "http://" + dead, "--v2", "classify", imgs[0]}, "aectl: cannot reach http://" + dead + ": connection refused"},
	} {
		r := aectl(t, srv, nil, tc.args...).want(t, 1)
		if !strings.HasPrefix(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%q:\n got %q\nwant %q…", tc.args, r.stderr, tc.want)
		}
	}
	// Every 404 names the V2 models there are.
	r := aectl(t, srv, nil, "--v2", "reconstruct", "--model", "nope", imgs[0]).want(t, 1)
	if !strings.Contains(r.stderr, "conv.decoder") {
		t.Errorf("404 does not list the models: %s", r.stderr)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--grpc", "localhost", "models"}, `--grpc "localhost": want host:port`},
		{[]string{"models", "--grpc", "http://localhost:8081"}, `--grpc "http://localhost:8081": want host:port`},
		{[]string{"--v2=maybe", "models"}, "invalid boolean value"},
	} {
		r := aectl(t, srv, nil, tc.args...).want(t, 2)
		if !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%q: %s", tc.args, r.stderr)
		}
	}

	// --timeout over gRPC: a server that never answers.
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start := time.Now()
	r = aectl(t, srv, nil, "--grpc", hang.Addr().String(), "classify", "--timeout", "300ms", imgs[0]).want(t, 1)
	if !strings.HasPrefix(r.stderr, "aectl: classify: no answer from "+hang.Addr().String()+" within 300ms (--timeout)") || time.Since(start) > 5*time.Second {
		t.Errorf("timeout: %q after %v", r.stderr, time.Since(start))
	}
}
