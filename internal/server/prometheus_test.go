package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aeserve/aeserve/internal/model"
)

// needTool finds a program the test runs. Under CI (CI=true, as .ci/run
// sets) a missing one fails the test, which would otherwise pass while
// proving nothing; elsewhere it skips.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required under CI (Debian package %s): %v", name, pkg, err)
	}
	t.Skipf("%s not installed (Debian package %s)", name, pkg)
	return ""
}

// TestRealPrometheus points Debian's prometheus at the server on loopback,
// drives a little load (with one request shed), and asks Prometheus's HTTP
// API for the series README's metrics table names, with their labels; and
// promtool finds nothing to complain of in /metrics. It lives here rather
// than in deploy/ because it needs the server itself, on loopback with the
// real weights, as this package's tests run it; deploy/ checks the rules and
// the dashboard against the names the server exposes (TestMetricNames).
func TestRealPrometheus(t *testing.T) {
	prom := needTool(t, "prometheus", "prometheus")
	promtool := needTool(t, "promtool", "prometheus")
	gate := newGate()
	e := newEnv(t, gate.option, func(c *Config) {
		c.Batch.MaxBatch = 1
		c.Batch.QueueSize = 2
		c.MaxImages = 2
	})

	// promtool check metrics: exposition format and naming conventions,
	// before any request and after the load.
	if b, err := runStdin(promtool, scrape(t, e), "check", "metrics"); err != nil || len(b) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, b)
	}

	dir := t.TempDir()
	addr := freeAddr(t)
	target := strings.TrimPrefix(e.ts.URL, "http://")
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: aeserve\n    static_configs:\n      - targets: [%q]\n", target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(prom, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(guard):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("prometheus output:\n%s", out.String())
		}
	})
	api := "http://" + addr

	// The load: requests on the routes and protocols, one shed for want
	// of room in the encoder's queue.
	img := mustPNG(t, 3)
	b := e.batcher("conv", model.Encoder)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() { e.post("/v1/encode", ctPNG, img) })
		waitFor(t, "request to be admitted", func() bool { return b.Stats().Pending == i+1 })
	}
	wantStatus(t, e.post("/v1/encode", ctPNG, img), http.StatusServiceUnavailable)
	gate.release()
	wg.Wait()
	wantStatus(t, e.post("/v1/reconstruct", ctPNG, img), http.StatusOK)
	wantStatus(t, e.post("/v1/reconstruct?model=nope", ctPNG, img), http.StatusNotFound)

	after := scrape(t, e)
	if b, err := runStdin(promtool, after, "check", "metrics"); err != nil || len(b) > 0 {
		t.Errorf("promtool check metrics after load: %v\n%s", err, b)
	}
	// Every metric served is in README's table, which deploy/'s rules and
	// dashboard are checked against (TestMonitoringExpressions).
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(after, "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE aeserve_"); ok {
			name, _, _ = strings.Cut(name, " ")
			if !bytes.Contains(readme, []byte("`aeserve_"+name+"`")) {
				t.Errorf("aeserve_%s is served but not in README's metrics table", name)
			}
		}
	}

	// What Prometheus stored, with the labels README's table names.
	want := map[string][]string{
		"aeserve_http_requests_total":                  {"route", "method", "code"},
		"aeserve_http_request_duration_seconds_bucket": {"route", "method", "le"},
		"aeserve_http_images_total":                    {"route", "model"},
		"aeserve_batch_queue_wait_seconds_bucket":      {"model", "half", "le"},
		"aeserve_batch_compute_seconds_bucket":         {"model", "half", "le"},
		"aeserve_batch_size_bucket":                    {"model", "half", "le"},
		"aeserve_batch_queue_depth":                    {"model", "half"},
		"aeserve_batch_queue_capacity":                 {"model", "half"},
		"aeserve_batch_shed_total":                     {"model", "half", "reason"},
		"aeserve_admission_shed_total":                 {"model", "half"},
		"aeserve_batch_executions_total":               {"model", "half"},
	}
	missing := map[string]string{}
	waitFor(t, "Prometheus to have scraped every metric", func() bool {
		clear(missing)
		for name, labels := range want {
			var res []map[string]string
			if err := promAPI(api, "/api/v1/series", url.Values{"match[]": {name + `{job="aeserve"}`}}, &res); err != nil {
				missing[name] = err.Error()
				continue
			}
			if why := lacksLabels(res, labels); why != "" {
				missing[name] = why
			}
		}
		return len(missing) == 0
	})
	for name, why := range missing {
		t.Errorf("%s: %s", name, why)
	}
	// A query, not only the series: the shed request and the 404 counted.
	var vec []struct {
		Metric map[string]string `json:"metric"`
	}
	q := `aeserve_admission_shed_total{model="conv",half="encoder"} == 1 or aeserve_http_requests_total{route="/v1/reconstruct",code="404"} == 1`
	waitFor(t, "the shed and the 404 to be queried", func() bool {
		return promQuery(api, q, &vec) == nil && len(vec) == 2
	})
}

// scrape is the server's /metrics.
func scrape(t *testing.T, e *env) string {
	t.Helper()
	r := e.get("/metrics")
	wantStatus(t, r, http.StatusOK)
	return string(r.body)
}

func runStdin(prog, stdin string, args ...string) ([]byte, error) {
	cmd := exec.Command(prog, args...)
	cmd.Stdin = strings.NewReader(stdin)
	return cmd.CombinedOutput()
}

// freeAddr is a loopback address free a moment ago, for a program that
// cannot be told to take any port and say which.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// promAPI GETs a Prometheus API path and decodes its data into v.
func promAPI(base, path string, q url.Values, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("%s: %v: %.200s", path, err, b)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: %s", path, env.Error)
	}
	return json.Unmarshal(env.Data, v)
}

func promQuery(base, q string, v any) error {
	var data struct {
		Result json.RawMessage `json:"result"`
	}
	if err := promAPI(base, "/api/v1/query", url.Values{"query": {q}}, &data); err != nil {
		return err
	}
	return json.Unmarshal(data.Result, v)
}

// lacksLabels says what is wrong with a metric's series: none, or one
// without a label it should have.
func lacksLabels(series []map[string]string, labels []string) string {
	if len(series) == 0 {
		return "no series"
	}
	for _, s := range series {
		for _, l := range labels {
			if _, ok := s[l]; !ok {
				return fmt.Sprintf("series %v lacks label %q", s, l)
			}
		}
		for l := range s {
			if l != "__name__" && l != "job" && l != "instance" && !slices.Contains(labels, l) {
				return fmt.Sprintf("series %v has label %q beyond %v", s, l, labels)
			}
		}
	}
	return ""
}
