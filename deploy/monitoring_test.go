package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

// The rules and the dashboard live in monitoring/; these tests check them
// with Prometheus's own tools and parser.

// TestRulesPromtool: promtool check rules and promtool test rules, with the
// rules' own unit tests (monitoring/rules_test.yaml).
func TestRulesPromtool(t *testing.T) {
	promtool := mustTool(t, "promtool")
	for _, args := range [][]string{
		{"check", "rules", "rules.yaml"},
		{"test", "rules", "rules_test.yaml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "monitoring"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// notTheServers are the metrics the rules and dashboard may name that the
// server does not expose: Prometheus's own up, and kube-state-metrics' for
// pods that are not ready (the server cannot report being unreachable).
var notTheServers = []string{"up", "kube_deployment_status_replicas_unavailable"}

// TestMonitoringExpressions: every expression of the rules and the
// dashboard parses with Prometheus's parser, and names only metrics the
// server exposes (README's metrics table, which TestRealPrometheus in
// internal/server holds to what the server serves), the rules' own
// recordings, and notTheServers.
func TestMonitoringExpressions(t *testing.T) {
	known := readmeMetrics(t)
	var rules struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Record string `json:"record"`
				Alert  string `json:"alert"`
				Expr   string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	b, err := os.ReadFile(filepath.Join("monitoring", "rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	exprs := map[string]string{} // where → expression
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				known[r.Record] = true
			}
			exprs["rule "+r.Record+r.Alert] = r.Expr
		}
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if b, err = os.ReadFile(filepath.Join("monitoring", "dashboard.json")); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	// Grafana's variables, as Grafana would put them in.
	grafana := strings.NewReplacer("$__rate_interval", "5m", "$model", ".*")
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		for _, q := range p.Targets {
			exprs["panel "+p.Title+" "+q.RefID] = grafana.Replace(q.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if m := regexp.MustCompile(`^label_values\((\w+),`).FindStringSubmatch(v.Definition); m != nil {
			exprs["variable "+v.Name] = m[1]
		}
	}
	p := parser.NewParser(parser.Options{})
	for where, e := range exprs {
		ast, err := p.ParseExpr(e)
		if err != nil {
			t.Errorf("%s: %v\n%s", where, err, e)
			continue
		}
		for _, name := range metricNames(ast) {
			if !known[name] && !known[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")] &&
				!slices.Contains(notTheServers, name) {
				t.Errorf("%s names %s, which the server does not expose", where, name)
			}
		}
	}
	if len(exprs) < 20 {
		t.Errorf("only %d expressions found: is the test reading the files?", len(exprs))
	}
}

// metricNames lists the metrics an expression selects.
func metricNames(e parser.Expr) []string {
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if m.Name == "__name__" {
					name = m.Value
				}
			}
			names = append(names, name)
		}
		return nil
	})
	return names
}

// readmeMetrics are the metric names of README's metrics table (Serving,
// Metrics and logs).
func readmeMetrics(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "### Metrics and logs")
	if !ok {
		t.Fatal("README has no Metrics and logs section")
	}
	known := map[string]bool{}
	for _, line := range strings.Split(after, "\n") {
		if !strings.HasPrefix(line, "| `aeserve_") {
			if len(known) > 0 && !strings.HasPrefix(line, "|") {
				break
			}
			continue
		}
		cell, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " |")
		for _, m := range regexp.MustCompile("`(aeserve_\\w+)`").FindAllStringSubmatch(cell, -1) {
			known[m[1]] = true
		}
	}
	if len(known) < 15 {
		t.Fatalf("only %d metrics read from README's table", len(known))
	}
	return known
}
