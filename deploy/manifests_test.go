package deploy

// The Kubernetes manifests, proven without a cluster: every kustomization is
// rendered with kustomize's own Go API, every object is decoded strictly into
// the official API types (a misspelt field fails), and then each rendered set
// is checked for what would only break once applied: selectors that match the
// wrong pods, ports and probe paths the server does not serve (asked of the
// server itself, with the container's own args parsed by the server's own
// flag parser), budgets that block evictions, a NetworkPolicy that admits
// too much, missing limits, a grace period shorter than the drain, and an
// autoscaler metric that no adapter rule or server metric provides. KServe's
// objects, whose Go types do not build here, are validated against KServe's
// CRDs instead, and the predictor pod KServe makes of them is checked as the
// Deployments' pods are (kserve_test.go).

import (
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	prommodel "github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/aeserve/aeserve/internal/config"
	"github.com/aeserve/aeserve/internal/server"
)

// manifestCase is one kustomization and what it must deploy.
type manifestCase struct {
	name string
	// dir is the kustomization, relative to deploy/. When kustomization is
	// set instead, it is written to a temporary directory and rendered from
	// there; "DEPLOY" in it stands for the path from there to deploy/.
	dir           string
	kustomization string
	// roles maps each Deployment, by name, to the --role it must run.
	roles map[string]server.Role
	// hpaMetric is the one metric every HorizontalPodAutoscaler scales on:
	// "Resource/cpu" or "Pods/<metric name>".
	hpaMetric string
}

const requestRateMetric = "Pods/aeserve_http_requests_per_second"

var manifestCases = []manifestCase{
	{name: "base", dir: "base",
		roles: map[string]server.Role{"aeserve": server.RoleAll}, hpaMetric: "Resource/cpu"},
	{name: "split", dir: "overlays/split",
		roles:     map[string]server.Role{"aeserve-encoder": server.RoleEncoder, "aeserve-decoder": server.RoleDecoder},
		hpaMetric: "Resource/cpu"},
	{name: "split-encoder", dir: "overlays/split/encoder",
		roles: map[string]server.Role{"aeserve-encoder": server.RoleEncoder}, hpaMetric: "Resource/cpu"},
	{name: "split-decoder", dir: "overlays/split/decoder",
		roles: map[string]server.Role{"aeserve-decoder": server.RoleDecoder}, hpaMetric: "Resource/cpu"},
	{name: "scale-on-load", dir: "overlays/scale-on-load",
		roles: map[string]server.Role{"aeserve": server.RoleAll}, hpaMetric: requestRateMetric},
	// The component on the split sides, as its kustomization.yaml suggests.
	{name: "split+scale-on-load", kustomization: `
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [DEPLOY/overlays/split]
components: [DEPLOY/components/scale-on-load]
`,
		roles:     map[string]server.Role{"aeserve-encoder": server.RoleEncoder, "aeserve-decoder": server.RoleDecoder},
		hpaMetric: requestRateMetric},
	// A ServingRuntime and an InferenceService: no Deployment of its own.
	{name: "kserve", dir: "kserve"},
}

// adapterRulesFile holds the Prometheus Adapter rule of the scale-on-load
// component (a ConfigMap in no kustomization: see the file).
const adapterRulesFile = "components/scale-on-load/prometheus-adapter.yaml"

// manifestCheck is one property of a rendered set; it returns a sentence per
// problem, each naming the object.
type manifestCheck struct {
	name  string
	check func(*manifestSet) []string
}

var manifestChecks = []manifestCheck{
	{"selectors", checkSelectors},
	{"service ports", checkServicePorts},
	{"probes", checkProbes},
	{"args", checkArgs},
	{"disruption budget", checkDisruptionBudgets},
	{"network policy", checkNetworkPolicies},
	{"resources and security", checkResourcesAndSecurity},
	{"grace period", checkGracePeriod},
	{"service monitor", checkServiceMonitors},
	{"autoscaling", checkAutoscaling},
	{"kserve", checkKServe},
}

func TestManifests(t *testing.T) {
	for _, c := range manifestCases {
		t.Run(c.name, func(t *testing.T) {
			s := loadManifestSet(t, c)
			for _, mc := range manifestChecks {
				t.Run(mc.name, func(t *testing.T) {
					for _, p := range mc.check(s) {
						t.Error(p)
					}
				})
			}
		})
	}
}

// TestManifestChecksCatch breaks a rendered set in memory, one way per case,
// and requires the check meant for it to say so: none of the checks above
// passes for want of looking.
func TestManifestChecksCatch(t *testing.T) {
	base, split, scaled := manifestCases[0], manifestCases[1], manifestCases[4]
	testCatches(t, []catchCase{
		{"service selects no pod", base, checkSelectors, func(s *manifestSet) {
			s.services[0].Spec.Selector["app.kubernetes.io/component"] = "encoder"
		}, "Service aeserve selects no Deployment"},
		{"split service selects both sides", split, checkSelectors, func(s *manifestSet) {
			delete(s.service("aeserve-decoder").Spec.Selector, "app.kubernetes.io/component")
		}, "Service aeserve-decoder selects [aeserve-decoder aeserve-encoder]"},
		{"pdb selects the other side", split, checkSelectors, func(s *manifestSet) {
			s.pdb("aeserve-encoder").Spec.Selector.MatchLabels["app.kubernetes.io/component"] = "decoder"
		}, "PodDisruptionBudget aeserve-encoder selects [aeserve-decoder]"},
		{"hpa targets a missing deployment", base, checkSelectors, func(s *manifestSet) {
			s.hpas[0].Spec.ScaleTargetRef.Name = "aeserve-all"
		}, `HorizontalPodAutoscaler aeserve scales Deployment "aeserve-all", which does not exist`},
		{"service monitor selects nothing", base, checkSelectors, func(s *manifestSet) {
			s.monitors[0].Spec.Selector.MatchLabels["app.kubernetes.io/name"] = "aeserv"
		}, "ServiceMonitor aeserve selects no Service"},
		{"one service scraped twice", split, checkSelectors, func(s *manifestSet) {
			delete(s.monitor("aeserve-encoder").Spec.Selector.MatchLabels, "app.kubernetes.io/component")
		}, "Service aeserve-decoder is scraped by 2 ServiceMonitors"},
		{"network policy leaves pods out", split, checkSelectors, func(s *manifestSet) {
			s.policy("aeserve-decoder").Spec.PodSelector.MatchLabels["app.kubernetes.io/component"] = "encoder"
		}, "pods of Deployment aeserve-decoder are selected by no NetworkPolicy"},
		{"deployment selector misses its template", base, checkSelectors, func(s *manifestSet) {
			s.deployments[0].Spec.Template.Labels["app.kubernetes.io/component"] = "api"
		}, "Deployment aeserve: selector"},

		{"target port misspelt", base, checkServicePorts, func(s *manifestSet) {
			s.services[0].Spec.Ports[0].TargetPort = intstr.FromString("htp")
		}, `Service aeserve port "http": no container port is named "htp"`},
		{"container port not the one the server listens on", base, checkServicePorts, func(s *manifestSet) {
			s.deployments[0].Spec.Template.Spec.Containers[0].Ports[0].ContainerPort = 8081
		}, "container port 8081, where aeserve listens on nothing"},
		{"http port sent to the metrics listener", base, checkServicePorts, func(s *manifestSet) {
			s.services[0].Spec.Ports[0].TargetPort = intstr.FromString("metrics")
		}, `Service aeserve port "http" reaches 9090, not the API's --addr port 8080`},

		{"probe path the server does not serve", base, checkProbes, func(s *manifestSet) {
			s.deployments[0].Spec.Template.Spec.Containers[0].ReadinessProbe.HTTPGet.Path = "/ready"
		}, "readiness probe GET /ready on port 9090: 404"},
		{"probe port nothing listens on", base, checkProbes, func(s *manifestSet) {
			s.deployments[0].Spec.Template.Spec.Containers[0].LivenessProbe.HTTPGet.Port = intstr.FromInt32(9091)
		}, "liveness probe port 9091 is neither --addr (8080) nor --metrics-addr (9090)"},
		{"liveness on readiness", base, checkProbes, func(s *manifestSet) {
			s.deployments[0].Spec.Template.Spec.Containers[0].LivenessProbe.HTTPGet.Path = "/readyz"
		}, "liveness probe checks /readyz"},
		{"readiness too slow for the drain", base, checkProbes, func(s *manifestSet) {
			s.deployments[0].Spec.Template.Spec.Containers[0].ReadinessProbe.PeriodSeconds = 10
		}, "readiness probe notices a drain after 20s, longer than --drain-delay 5s"},

		{"flag misspelt", base, checkArgs, func(s *manifestSet) {
			c := &s.deployments[0].Spec.Template.Spec.Containers[0]
			c.Args = append(c.Args, "--rol=encoder")
		}, "flag provided but not defined: -rol"},
		{"bad value in the environment", base, checkArgs, func(s *manifestSet) {
			c := &s.deployments[0].Spec.Template.Spec.Containers[0]
			c.Env = append(c.Env, corev1.EnvVar{Name: "AESERVE_ROLE", Value: "sender"})
		}, `AESERVE_ROLE="sender"`},
		{"split sides swapped", split, checkArgs, func(s *manifestSet) {
			c := &s.deployment("aeserve-encoder").Spec.Template.Spec.Containers[0]
			c.Args[len(c.Args)-1] = "--role=decoder"
		}, "Deployment aeserve-encoder container aeserve runs --role decoder, want encoder"},
		{"command overrides the entrypoint", base, checkArgs, func(s *manifestSet) {
			s.deployments[0].Spec.Template.Spec.Containers[0].Command = []string{"/bin/sh"}
		}, "command [/bin/sh] replaces the image's /aeserve"},
		{"image left unpinned", base, checkArgs, func(s *manifestSet) {
			s.deployments[0].Spec.Template.Spec.Containers[0].Image = "aeserve"
		}, `image "aeserve" names no tag or digest`},

		{"min available leaves no room", base, checkDisruptionBudgets, func(s *manifestSet) {
			two := intstr.FromInt32(2)
			s.pdbs[0].Spec.MaxUnavailable, s.pdbs[0].Spec.MinAvailable = nil, &two
		}, "PodDisruptionBudget aeserve: minAvailable 2 of 2 replicas blocks every eviction"},
		{"max unavailable zero", base, checkDisruptionBudgets, func(s *manifestSet) {
			zero := intstr.FromString("0%")
			s.pdbs[0].Spec.MaxUnavailable = &zero
		}, "maxUnavailable 0% blocks every eviction"},

		{"allow-all ingress rule", base, checkNetworkPolicies, func(s *manifestSet) {
			np := s.policies[0]
			np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{})
		}, "NetworkPolicy aeserve: ingress rule 2 ({}) admits all traffic"},
		{"metrics from anywhere", base, checkNetworkPolicies, func(s *manifestSet) {
			s.policies[0].Spec.Ingress[1].From = nil
		}, "ingress rule 1 admits the metrics port 9090 from any source"},
		{"metrics from every namespace", base, checkNetworkPolicies, func(s *manifestSet) {
			s.policies[0].Spec.Ingress[1].From[0].NamespaceSelector = &metav1.LabelSelector{}
		}, "an empty namespaceSelector (every namespace)"},
		{"metrics from an ipBlock", base, checkNetworkPolicies, func(s *manifestSet) {
			s.policies[0].Spec.Ingress[1].From[0] = networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8"}}
		}, "admits the metrics port 9090 from a peer that is not a namespaceSelector"},
		{"metrics not from monitoring", base, checkNetworkPolicies, func(s *manifestSet) {
			s.policies[0].Spec.Ingress[1].From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] = "prometheus"
		}, "admits the metrics port 9090 from no pod of the monitoring namespace"},
		{"api port named wrong", base, checkNetworkPolicies, func(s *manifestSet) {
			p := intstr.FromString("api")
			s.policies[0].Spec.Ingress[0].Ports[0].Port = &p
		}, `ingress rule 0 names port "api", which no container of Deployment aeserve has`},
		{"egress allowed", base, checkNetworkPolicies, func(s *manifestSet) {
			np := s.policies[0]
			np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{})
		}, "has 1 egress rule(s)"},
		{"egress not restricted", base, checkNetworkPolicies, func(s *manifestSet) {
			s.policies[0].Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		}, "policyTypes [Ingress] lack Egress"},

		{"memory limit dropped", base, checkResourcesAndSecurity, func(s *manifestSet) {
			delete(s.deployments[0].Spec.Template.Spec.Containers[0].Resources.Limits, corev1.ResourceMemory)
		}, "container aeserve has no memory limit"},
		{"request above limit", base, checkResourcesAndSecurity, func(s *manifestSet) {
			s.deployments[0].Spec.Template.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("3")
		}, "cpu request 3 exceeds its limit 2"},
		{"writable root", base, checkResourcesAndSecurity, func(s *manifestSet) {
			s.deployments[0].Spec.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = nil
		}, "readOnlyRootFilesystem is not true"},
		{"capabilities kept", base, checkResourcesAndSecurity, func(s *manifestSet) {
			s.deployments[0].Spec.Template.Spec.Containers[0].SecurityContext.Capabilities = nil
		}, "capabilities do not drop ALL"},
		{"no seccomp", base, checkResourcesAndSecurity, func(s *manifestSet) {
			s.deployments[0].Spec.Template.Spec.SecurityContext.SeccompProfile = nil
		}, "seccomp profile is not RuntimeDefault"},
		{"root allowed", base, checkResourcesAndSecurity, func(s *manifestSet) {
			s.deployments[0].Spec.Template.Spec.SecurityContext.RunAsNonRoot = nil
			s.deployments[0].Spec.Template.Spec.Containers[0].SecurityContext.RunAsNonRoot = nil
		}, "runAsNonRoot is not true"},
		{"service account token mounted", base, checkResourcesAndSecurity, func(s *manifestSet) {
			s.deployments[0].Spec.Template.Spec.AutomountServiceAccountToken = nil
		}, "automountServiceAccountToken is not false"},
		{"GOMEMLIMIT in MiB", base, checkResourcesAndSecurity, func(s *manifestSet) {
			env := s.deployments[0].Spec.Template.Spec.Containers[0].Env
			env[slices.IndexFunc(env, func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" })].
				ValueFrom.ResourceFieldRef.Divisor = resource.MustParse("1Mi")
		}, "GOMEMLIMIT takes limits.memory with divisor 1Mi"},

		{"grace period shorter than the drain", base, checkGracePeriod, func(s *manifestSet) {
			s.deployments[0].Spec.Template.Spec.TerminationGracePeriodSeconds = new(int64(25))
		}, "terminationGracePeriodSeconds 25 is not above --drain-delay 5s + --shutdown-timeout 20s"},
		{"grace period left at its default", base, checkGracePeriod, func(s *manifestSet) {
			c := &s.deployments[0].Spec.Template.Spec.Containers[0]
			c.Args = slices.DeleteFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--shutdown-timeout") })
			s.deployments[0].Spec.Template.Spec.TerminationGracePeriodSeconds = nil
		}, "terminationGracePeriodSeconds 30 is not above --drain-delay 5s + --shutdown-timeout 30s"},

		{"scrape port misnamed", base, checkServiceMonitors, func(s *manifestSet) {
			s.monitors[0].Spec.Endpoints[0].Port = "metric"
		}, `ServiceMonitor aeserve endpoint 0: Service aeserve has no port named "metric"`},
		{"scrape path misspelt", base, checkServiceMonitors, func(s *manifestSet) {
			s.monitors[0].Spec.Endpoints[0].Path = "/metric"
		}, "GET /metric on port 9090 of Deployment aeserve: 404"},

		{"hpa metric misnamed", scaled, checkAutoscaling, func(s *manifestSet) {
			s.hpas[0].Spec.Metrics[0].Pods.Metric.Name = "aeserve_http_request_per_second"
		}, `no Prometheus Adapter rule serves "aeserve_http_request_per_second"`},
		{"adapter rule on a metric the server lacks", scaled, checkAutoscaling, func(s *manifestSet) {
			s.adapterRules[0].SeriesQuery = `aeserve_requests_total{namespace!="",pod!=""}`
			s.hpas[0].Spec.Metrics[0].Pods.Metric.Name = "aeserve_requests_per_second"
		}, `"aeserve_requests_total", which Deployment aeserve does not export`},
		{"adapter rule without the pod label", scaled, checkAutoscaling, func(s *manifestSet) {
			delete(s.adapterRules[0].Resources.Overrides, "pod")
		}, "maps no label to pods"},
		{"back on cpu", scaled, checkAutoscaling, func(s *manifestSet) {
			s.hpas[0].Spec.Metrics[0] = autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU}}
		}, "scales on [Resource/cpu], want [" + requestRateMetric + "]"},
		{"one replica", base, checkAutoscaling, func(s *manifestSet) {
			s.hpas[0].Spec.MinReplicas = nil
		}, "minReplicas 1"},
	})
}

// catchCase breaks a rendered set one way and names the check that must
// notice.
type catchCase struct {
	name   string
	c      manifestCase
	check  func(*manifestSet) []string
	mutate func(*manifestSet)
	want   string // in one of the problems
}

func testCatches(t *testing.T, tests []catchCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := loadManifestSet(t, tt.c)
			if ps := tt.check(s); len(ps) > 0 {
				t.Fatalf("before breaking it, the check already reports %q", ps)
			}
			tt.mutate(s)
			ps := tt.check(s)
			if !slices.ContainsFunc(ps, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("check reports %q, want one containing %q", ps, tt.want)
			}
		})
	}
}

// TestManifestsDecodeStrictly shows that a misspelt field or an unknown kind
// fails decoding, rather than being dropped.
func TestManifestsDecodeStrictly(t *testing.T) {
	for _, tt := range []struct{ name, yaml, want string }{
		{"misspelt field", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers:
        - name: x
          image: x
          readinessProbe:
            httpGet: {path: /readyz, port: 9090}
            periodSecond: 2
`, `unknown field "spec.template.spec.containers[0].readinessProbe.periodSecond"`},
		{"duplicate field", `
apiVersion: v1
kind: Service
metadata: {name: x}
spec:
  selector: {a: b}
  selector: {c: d}
`, `"selector" already set`},
		{"misspelt field in a KServe object", `
apiVersion: serving.kserve.io/v1alpha1
kind: ServingRuntime
metadata: {name: x}
spec:
  containers:
    - name: kserve-container
      image: x
      readinessProbe:
        httpGet: {path: /v2/health/ready, port: 8080}
        periodSecond: 2
`, `unknown field "spec.containers[0].readinessProbe.periodSecond"`},
		{"duplicate field in a KServe object", `
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: x}
spec:
  predictor: {minReplicas: 2}
  predictor: {minReplicas: 3}
`, `key "predictor" already set`},
		{"kind no check covers", `
apiVersion: v1
kind: Secret
metadata: {name: x}
`, `Secret is decoded, but no check here covers it`},
		{"unregistered version", `
apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata: {name: x}
`, `no kind "HorizontalPodAutoscaler" is registered for version "autoscaling/v1"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var s manifestSet
			err := s.add(manifestDecoder, []byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("decoding gives %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestKustomizationsAllTested requires every kustomization under deploy/ to
// be rendered by TestManifests, and every component to be used by one.
func TestKustomizationsAllTested(t *testing.T) {
	tested := map[string]bool{}
	for _, c := range manifestCases {
		if c.dir != "" {
			tested[c.dir] = true
		}
	}
	components := map[string]bool{} // dir: used
	var kustomizations []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.Name() != "kustomization.yaml" {
			return err
		}
		dir := filepath.Dir(path)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var k kustypes.Kustomization
		if err := yaml.UnmarshalStrict(data, &k); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if k.Kind == kustypes.ComponentKind {
			if _, ok := components[dir]; !ok {
				components[dir] = false
			}
			return nil
		}
		kustomizations = append(kustomizations, dir)
		for _, c := range k.Components {
			components[filepath.Join(dir, c)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range kustomizations {
		if !tested[dir] {
			t.Errorf("kustomization %s is not in manifestCases", dir)
		}
	}
	for dir, used := range components {
		if !used {
			t.Errorf("component %s is used by no kustomization", dir)
		}
	}
	for dir := range tested {
		if !slices.Contains(kustomizations, dir) {
			t.Errorf("manifestCases names %s, which holds no kustomization", dir)
		}
	}
}

// ---- rendering and decoding

var manifestScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		appsv1.AddToScheme, corev1.AddToScheme, autoscalingv2.AddToScheme,
		policyv1.AddToScheme, networkingv1.AddToScheme, monitoringv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// manifestDecoder fails on unknown kinds, unknown fields and repeated fields.
var manifestDecoder = serializer.NewCodecFactory(manifestScheme, serializer.EnableStrict).UniversalDeserializer()

// manifestSet is one rendered kustomization, decoded.
type manifestSet struct {
	c            manifestCase
	deployments  []*appsv1.Deployment
	services     []*corev1.Service
	hpas         []*autoscalingv2.HorizontalPodAutoscaler
	pdbs         []*policyv1.PodDisruptionBudget
	monitors     []*monitoringv1.ServiceMonitor
	policies     []*networkingv1.NetworkPolicy
	runtimes     []*servingRuntime   // KServe's
	isvcs        []*inferenceService // KServe's
	adapterRules []adapterRule       // of the scale-on-load component, for every set
}

func loadManifestSet(t *testing.T, c manifestCase) *manifestSet {
	t.Helper()
	dir := c.dir
	if c.kustomization != "" {
		here, err := filepath.Abs(".")
		if err != nil {
			t.Fatal(err)
		}
		dir = t.TempDir()
		rel, err := filepath.Rel(dir, here) // kustomize refuses absolute paths
		if err != nil {
			t.Fatal(err)
		}
		k := strings.ReplaceAll(c.kustomization, "DEPLOY", rel)
		if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", c.name, err)
	}
	s := &manifestSet{c: c}
	for _, r := range m.Resources() {
		data, err := r.MarshalJSON()
		if err != nil {
			t.Fatalf("%s %s: %v", r.GetKind(), r.GetName(), err)
		}
		if err := s.add(manifestDecoder, data); err != nil {
			t.Errorf("%s: %s %s: %v", c.name, r.GetKind(), r.GetName(), err)
		}
	}
	if s.adapterRules, err = loadAdapterRules(adapterRulesFile); err != nil {
		t.Fatal(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	return s
}

// add decodes one object strictly into its official type, or, for KServe's,
// validates it strictly against KServe's CRD.
func (s *manifestSet) add(dec runtime.Decoder, data []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(data, &tm); err == nil && strings.HasPrefix(tm.APIVersion, kserveGroup+"/") {
		return s.addKServe(data)
	}
	obj, gvk, err := dec.Decode(data, nil, nil)
	if err != nil {
		return err // unknown kind, unknown or repeated field (strict)
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		s.deployments = append(s.deployments, o)
	case *corev1.Service:
		s.services = append(s.services, o)
	case *autoscalingv2.HorizontalPodAutoscaler:
		s.hpas = append(s.hpas, o)
	case *policyv1.PodDisruptionBudget:
		s.pdbs = append(s.pdbs, o)
	case *monitoringv1.ServiceMonitor:
		s.monitors = append(s.monitors, o)
	case *networkingv1.NetworkPolicy:
		s.policies = append(s.policies, o)
	default:
		return fmt.Errorf("kind %s is decoded, but no check here covers it: add them", gvk)
	}
	return nil
}

func (s *manifestSet) deployment(name string) *appsv1.Deployment {
	return findNamed(s.deployments, name)
}
func (s *manifestSet) service(name string) *corev1.Service { return findNamed(s.services, name) }
func (s *manifestSet) pdb(name string) *policyv1.PodDisruptionBudget {
	return findNamed(s.pdbs, name)
}
func (s *manifestSet) monitor(name string) *monitoringv1.ServiceMonitor {
	return findNamed(s.monitors, name)
}
func (s *manifestSet) policy(name string) *networkingv1.NetworkPolicy {
	return findNamed(s.policies, name)
}

func findNamed[T metav1.Object](objs []T, name string) T {
	for _, o := range objs {
		if o.GetName() == name {
			return o
		}
	}
	panic("no object named " + name)
}

// workload is a pod the set runs: a Deployment's template, or the
// predictor pod KServe builds of an InferenceService and its ServingRuntime.
type workload struct {
	name string // "Deployment aeserve", "InferenceService aeserve-mnist predictor"
	spec *corev1.PodSpec
}

// workloads lists the set's pods. An InferenceService whose predictor KServe
// could not build is left out: checkKServe reports it.
func (s *manifestSet) workloads() []workload {
	var ws []workload
	for _, d := range s.deployments {
		ws = append(ws, workload{"Deployment " + d.Name, &d.Spec.Template.Spec})
	}
	for _, isvc := range s.isvcs {
		if p, err := s.predictor(isvc); err == nil {
			ws = append(ws, workload{"InferenceService " + isvc.Name + " predictor", &p.spec})
		}
	}
	return ws
}

// selected lists, sorted, the Deployments whose pods sel matches.
func (s *manifestSet) selected(sel labels.Selector) []*appsv1.Deployment {
	var ds []*appsv1.Deployment
	for _, d := range s.deployments {
		if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			ds = append(ds, d)
		}
	}
	slices.SortFunc(ds, func(a, b *appsv1.Deployment) int { return strings.Compare(a.Name, b.Name) })
	return ds
}

func names[T metav1.Object](objs []T) []string {
	var ns []string
	for _, o := range objs {
		ns = append(ns, o.GetName())
	}
	return ns
}

// labelSelector converts sel; an empty selector matches everything, as it
// does for PodDisruptionBudgets and NetworkPolicies.
func labelSelector(sel *metav1.LabelSelector) (labels.Selector, error) {
	if sel == nil {
		return labels.Nothing(), nil
	}
	return metav1.LabelSelectorAsSelector(sel)
}

// ---- the server, as each container would run it

// aeserveContainer is a container's options as the server parses them, and
// the server those options make.
type aeserveContainer struct {
	opts        *config.Options
	srv         *server.Server
	port        int32 // of --addr
	metricsPort int32 // of --metrics-addr; 0 if none
}

// parseContainer parses c's args with the server's own parser, taking the
// container's literal env values as the environment (values from the
// downward API and the like are not known here), and makes the server.
func parseContainer(c *corev1.Container) (*aeserveContainer, error) {
	if len(c.Command) > 0 && !slices.Equal(c.Command, []string{"/aeserve"}) {
		return nil, fmt.Errorf("command %v replaces the image's /aeserve", c.Command)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
		}
	}
	opts, err := config.Parse(c.Args, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		return nil, fmt.Errorf("args %q: %w", c.Args, err)
	}
	srv, err := server.New(opts.Server)
	if err != nil {
		return nil, fmt.Errorf("args %q: %w", c.Args, err)
	}
	ac := &aeserveContainer{opts: opts, srv: srv}
	if ac.port, err = listenPort(opts.Addr); err != nil {
		return nil, fmt.Errorf("--addr %q: %w", opts.Addr, err)
	}
	if opts.MetricsAddr != "" {
		if ac.metricsPort, err = listenPort(opts.MetricsAddr); err != nil {
			return nil, fmt.Errorf("--metrics-addr %q: %w", opts.MetricsAddr, err)
		}
	}
	return ac, nil
}

func listenPort(addr string) (int32, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %q is not a fixed port", p)
	}
	return int32(n), nil
}

// handler is what the server serves on port: the API on --addr, the ops
// handler on --metrics-addr.
func (ac *aeserveContainer) handler(port int32) (http.Handler, error) {
	switch {
	case port == ac.port:
		return ac.srv.Handler(), nil
	case ac.metricsPort != 0 && port == ac.metricsPort:
		return ac.srv.OpsHandler(), nil
	}
	return nil, fmt.Errorf("port %d is neither --addr (%d) nor --metrics-addr (%d)", port, ac.port, ac.metricsPort)
}

func statusOf(h http.Handler, path string) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code
}

// podPort resolves a port of a pod, by name or number, to the container
// that declares it and its number.
func podPort(spec *corev1.PodSpec, p intstr.IntOrString) (*corev1.Container, int32, error) {
	for i := range spec.Containers {
		c := &spec.Containers[i]
		for _, cp := range c.Ports {
			if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
				return c, cp.ContainerPort, nil
			}
		}
	}
	if p.Type == intstr.String {
		return nil, 0, fmt.Errorf("no container port is named %q", p.StrVal)
	}
	return nil, 0, fmt.Errorf("no container declares port %d", p.IntVal)
}

// containers lists a pod's init containers and containers.
func containers(spec *corev1.PodSpec) []*corev1.Container {
	var cs []*corev1.Container
	for i := range spec.InitContainers {
		cs = append(cs, &spec.InitContainers[i])
	}
	for i := range spec.Containers {
		cs = append(cs, &spec.Containers[i])
	}
	return cs
}

// ---- the checks

func checkSelectors(s *manifestSet) []string {
	var ps []string
	add := func(format string, a ...any) { ps = append(ps, fmt.Sprintf(format, a...)) }

	var want []string
	for name := range s.c.roles {
		want = append(want, name)
	}
	slices.Sort(want)
	if got := slices.Sorted(slices.Values(names(s.deployments))); !slices.Equal(got, want) {
		add("Deployments %q, want %q", got, want)
	}
	for _, d := range s.deployments {
		sel, err := labelSelector(d.Spec.Selector)
		switch {
		case err != nil:
			add("Deployment %s: selector: %v", d.Name, err)
		case sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)):
			add("Deployment %s: selector %v does not match its pod labels %v", d.Name, sel, d.Spec.Template.Labels)
		}
	}
	// Each Service, PodDisruptionBudget and autoscaler is meant for the
	// Deployment of its own name, and for no other.
	exactlyItsOwn := func(kind, name string, sel labels.Selector) {
		got := names(s.selected(sel))
		switch {
		case len(got) == 0:
			add("%s %s selects no Deployment's pods (selector %v)", kind, name, sel)
		case !slices.Equal(got, []string{name}):
			add("%s %s selects %v, want only Deployment %s", kind, name, got, name)
		}
	}
	for _, svc := range s.services {
		if len(svc.Spec.Selector) == 0 {
			add("Service %s has no selector", svc.Name)
			continue
		}
		exactlyItsOwn("Service", svc.Name, labels.SelectorFromSet(svc.Spec.Selector))
	}
	for _, pdb := range s.pdbs {
		sel, err := labelSelector(pdb.Spec.Selector)
		if err != nil {
			add("PodDisruptionBudget %s: selector: %v", pdb.Name, err)
			continue
		}
		exactlyItsOwn("PodDisruptionBudget", pdb.Name, sel)
	}
	scaled := map[string]int{}
	for _, h := range s.hpas {
		ref := h.Spec.ScaleTargetRef
		switch {
		case ref.Kind != "Deployment" || ref.APIVersion != "apps/v1":
			add("HorizontalPodAutoscaler %s scales %s %s, want an apps/v1 Deployment", h.Name, ref.APIVersion, ref.Kind)
		case !slices.Contains(names(s.deployments), ref.Name):
			add("HorizontalPodAutoscaler %s scales Deployment %q, which does not exist", h.Name, ref.Name)
		case ref.Name != h.Name:
			add("HorizontalPodAutoscaler %s scales Deployment %s, want %s", h.Name, ref.Name, h.Name)
		}
		scaled[ref.Name]++
	}
	for _, d := range s.deployments {
		if n := scaled[d.Name]; n != 1 {
			add("Deployment %s is scaled by %d HorizontalPodAutoscalers, want 1", d.Name, n)
		}
	}
	scrapedBy := map[string]int{}
	for _, sm := range s.monitors {
		sel, err := labelSelector(&sm.Spec.Selector)
		if err != nil {
			add("ServiceMonitor %s: selector: %v", sm.Name, err)
			continue
		}
		ns := sm.Spec.NamespaceSelector
		if ns.Any || len(ns.MatchNames) > 0 {
			add("ServiceMonitor %s looks beyond its own namespace (namespaceSelector %+v)", sm.Name, ns)
		}
		n := 0
		for _, svc := range s.services {
			if sel.Matches(labels.Set(svc.Labels)) {
				scrapedBy[svc.Name]++
				n++
			}
		}
		if n == 0 {
			add("ServiceMonitor %s selects no Service (selector %v)", sm.Name, sel)
		}
	}
	for _, svc := range s.services {
		if n := scrapedBy[svc.Name]; n != 1 {
			add("Service %s is scraped by %d ServiceMonitors, want 1", svc.Name, n)
		}
	}
	guarded := map[string]bool{}
	for _, np := range s.policies {
		sel, err := labelSelector(&np.Spec.PodSelector)
		if err != nil {
			add("NetworkPolicy %s: podSelector: %v", np.Name, err)
			continue
		}
		ds := s.selected(sel)
		if len(ds) == 0 {
			add("NetworkPolicy %s selects no Deployment's pods (podSelector %v)", np.Name, sel)
		}
		for _, d := range ds {
			guarded[d.Name] = true
		}
	}
	for _, d := range s.deployments {
		if !guarded[d.Name] {
			add("pods of Deployment %s are selected by no NetworkPolicy", d.Name)
		}
	}
	return ps
}

// serviceBackend is the one Deployment a Service selects, or nil.
func (s *manifestSet) serviceBackend(svc *corev1.Service) *appsv1.Deployment {
	if len(svc.Spec.Selector) == 0 {
		return nil
	}
	if ds := s.selected(labels.SelectorFromSet(svc.Spec.Selector)); len(ds) == 1 {
		return ds[0]
	}
	return nil
}

// servicePort resolves a Service port to the container serving it and its
// number there.
func servicePort(d *appsv1.Deployment, sp corev1.ServicePort) (*corev1.Container, int32, error) {
	target := sp.TargetPort
	if target.Type == intstr.Int && target.IntVal == 0 {
		target = intstr.FromInt32(sp.Port) // the default
	}
	return podPort(&d.Spec.Template.Spec, target)
}

func checkServicePorts(s *manifestSet) []string {
	var ps []string
	add := func(format string, a ...any) { ps = append(ps, fmt.Sprintf(format, a...)) }
	for _, svc := range s.services {
		d := s.serviceBackend(svc)
		if d == nil {
			add("Service %s: selects no single Deployment (see selectors)", svc.Name)
			continue
		}
		for _, sp := range svc.Spec.Ports {
			c, port, err := servicePort(d, sp)
			if err != nil {
				add("Service %s port %q: %v in Deployment %s", svc.Name, sp.Name, err, d.Name)
				continue
			}
			ac, err := parseContainer(c)
			if err != nil {
				add("Service %s port %q: Deployment %s container %s: %v", svc.Name, sp.Name, d.Name, c.Name, err)
				continue
			}
			// The port must be one the server listens on, and the one its
			// name promises.
			switch {
			case port != ac.port && port != ac.metricsPort:
				add("Service %s port %q reaches container port %d, where %s listens on nothing (--addr %s, --metrics-addr %q)",
					svc.Name, sp.Name, port, c.Name, ac.opts.Addr, ac.opts.MetricsAddr)
			case sp.Name == "http" && port != ac.port:
				add("Service %s port %q reaches %d, not the API's --addr port %d", svc.Name, sp.Name, port, ac.port)
			case sp.Name == "metrics" && port != ac.metricsPort:
				add("Service %s port %q reaches %d, not the --metrics-addr port %d", svc.Name, sp.Name, port, ac.metricsPort)
			}
		}
	}
	return ps
}

func checkProbes(s *manifestSet) []string {
	var ps []string
	add := func(format string, a ...any) { ps = append(ps, fmt.Sprintf(format, a...)) }
	for _, w := range s.workloads() {
		spec := w.spec
		for i := range spec.Containers {
			c := &spec.Containers[i]
			where := fmt.Sprintf("%s container %s", w.name, c.Name)
			ac, err := parseContainer(c)
			if err != nil {
				add("%s: %v", where, err)
				continue
			}
			for _, p := range []struct {
				kind  string
				probe *corev1.Probe
			}{{"startup", c.StartupProbe}, {"readiness", c.ReadinessProbe}, {"liveness", c.LivenessProbe}} {
				if p.probe == nil {
					if p.kind != "startup" {
						add("%s has no %s probe", where, p.kind)
					}
					continue
				}
				hg := p.probe.HTTPGet
				if hg == nil {
					add("%s: %s probe is not an HTTP GET (the image has no shell for exec probes)", where, p.kind)
					continue
				}
				if hg.Scheme != "" && hg.Scheme != corev1.URISchemeHTTP {
					add("%s: %s probe uses %s; the server speaks plain HTTP", where, p.kind, hg.Scheme)
				}
				port := hg.Port.IntVal // a number may be any port
				if hg.Port.Type == intstr.String {
					if _, port, err = podPort(spec, hg.Port); err != nil {
						add("%s: %s probe: %v", where, p.kind, err)
						continue
					}
				}
				h, err := ac.handler(port)
				if err != nil {
					add("%s: %s probe %v", where, p.kind, err)
					continue
				}
				if code := statusOf(h, hg.Path); code == http.StatusNotFound || code == http.StatusMethodNotAllowed {
					add("%s: %s probe GET %s on port %d: %d %s", where, p.kind, hg.Path, port, code, http.StatusText(code))
				}
				if p.kind == "liveness" && isReadinessPath(hg.Path) {
					add("%s: liveness probe checks %s: a draining or loading pod would be restarted", where, hg.Path)
				}
				if p.kind == "readiness" {
					// A draining pod must leave the endpoints before the
					// drain delay ends and the listener closes.
					// Unset, they are 10s and 3 (Kubernetes' defaults).
					period, failures := p.probe.PeriodSeconds, p.probe.FailureThreshold
					if period == 0 {
						period = 10
					}
					if failures == 0 {
						failures = 3
					}
					notice := time.Duration(period*failures) * time.Second
					if notice > ac.opts.Server.DrainDelay {
						add("%s: readiness probe notices a drain after %v, longer than --drain-delay %v", where, notice, ac.opts.Server.DrainDelay)
					}
				}
			}
		}
	}
	return ps
}

// isReadinessPath says whether a path answers readiness, which fails while
// a pod drains or loads: the server's own and the Open Inference Protocol's.
func isReadinessPath(p string) bool {
	return strings.HasPrefix(p, "/readyz") || strings.HasPrefix(p, "/v2/health/ready") ||
		(strings.HasPrefix(p, "/v2/models/") && strings.HasSuffix(p, "/ready"))
}

func checkArgs(s *manifestSet) []string {
	var ps []string
	add := func(format string, a ...any) { ps = append(ps, fmt.Sprintf(format, a...)) }
	for _, w := range s.workloads() {
		for _, c := range containers(w.spec) {
			where := fmt.Sprintf("%s container %s", w.name, c.Name)
			if ref := c.Image; !strings.Contains(ref, "@") &&
				(!strings.Contains(ref[strings.LastIndex(ref, "/")+1:], ":") || strings.HasSuffix(ref, ":latest")) {
				add("%s: image %q names no tag or digest (the images entry of the kustomization sets it)", where, ref)
			}
			if _, err := parseContainer(c); err != nil {
				add("%s: %v", where, err)
			}
		}
	}
	for _, d := range s.deployments {
		for _, c := range containers(&d.Spec.Template.Spec) {
			where := fmt.Sprintf("Deployment %s container %s", d.Name, c.Name)
			ac, err := parseContainer(c)
			if err != nil {
				continue // reported above
			}
			if want, ok := s.c.roles[d.Name]; ok && ac.opts.Role != want {
				add("%s runs --role %s, want %s", where, ac.opts.Role, want)
			}
			if comp := d.Spec.Template.Labels["app.kubernetes.io/component"]; comp != string(ac.opts.Role) {
				add("%s runs --role %s, but its pods are labelled app.kubernetes.io/component=%s", where, ac.opts.Role, comp)
			}
		}
	}
	return ps
}

// fewestReplicas is the fewest replicas a Deployment may run: the autoscaler's
// minReplicas, or its replicas when no autoscaler scales it.
func (s *manifestSet) fewestReplicas(d *appsv1.Deployment) int32 {
	n := int32(math.MaxInt32)
	scaled := false
	for _, h := range s.hpas {
		if h.Spec.ScaleTargetRef.Name == d.Name {
			scaled = true
			n = min(n, ptrOr(h.Spec.MinReplicas, 1))
		}
	}
	if !scaled || d.Spec.Replicas != nil {
		n = min(n, ptrOr(d.Spec.Replicas, 1))
	}
	return n
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func checkDisruptionBudgets(s *manifestSet) []string {
	var ps []string
	add := func(format string, a ...any) { ps = append(ps, fmt.Sprintf(format, a...)) }
	for _, pdb := range s.pdbs {
		sel, err := labelSelector(pdb.Spec.Selector)
		if err != nil {
			add("PodDisruptionBudget %s: selector: %v", pdb.Name, err)
			continue
		}
		ds := s.selected(sel)
		if len(ds) != 1 {
			add("PodDisruptionBudget %s selects %v, not one Deployment (see selectors)", pdb.Name, names(ds))
			continue
		}
		replicas := s.fewestReplicas(ds[0])
		maxU, minA := pdb.Spec.MaxUnavailable, pdb.Spec.MinAvailable
		switch {
		case maxU != nil && minA != nil:
			add("PodDisruptionBudget %s sets both maxUnavailable and minAvailable", pdb.Name)
		case maxU != nil:
			// Percentages of maxUnavailable round up.
			n, err := intstr.GetScaledValueFromIntOrPercent(maxU, int(replicas), true)
			if err != nil || n < 1 {
				add("PodDisruptionBudget %s: maxUnavailable %s blocks every eviction (%d of %d replicas)", pdb.Name, maxU.String(), n, replicas)
			}
		case minA != nil:
			// Percentages of minAvailable round up too.
			n, err := intstr.GetScaledValueFromIntOrPercent(minA, int(replicas), true)
			if err != nil || n >= int(replicas) {
				add("PodDisruptionBudget %s: minAvailable %s of %d replicas blocks every eviction", pdb.Name, minA.String(), replicas)
			}
		default:
			add("PodDisruptionBudget %s sets neither maxUnavailable nor minAvailable", pdb.Name)
		}
	}
	return ps
}

// admits says whether an ingress rule's ports include a container port.
func admits(rule networkingv1.NetworkPolicyIngressRule, cp corev1.ContainerPort) bool {
	if len(rule.Ports) == 0 {
		return true
	}
	for _, p := range rule.Ports {
		proto := ptrOr(p.Protocol, corev1.ProtocolTCP)
		cproto := cp.Protocol
		if cproto == "" {
			cproto = corev1.ProtocolTCP
		}
		switch {
		case proto != cproto:
		case p.Port == nil:
			return true
		case p.Port.Type == intstr.String && p.Port.StrVal == cp.Name:
			return true
		case p.Port.Type == intstr.Int && cp.ContainerPort >= p.Port.IntVal && cp.ContainerPort <= max(p.Port.IntVal, ptrOr(p.EndPort, 0)):
			return true
		}
	}
	return false
}

func checkNetworkPolicies(s *manifestSet) []string {
	var ps []string
	add := func(format string, a ...any) { ps = append(ps, fmt.Sprintf(format, a...)) }
	monitoringNS := labels.Set{"kubernetes.io/metadata.name": "monitoring"}
	for _, np := range s.policies {
		for _, pt := range []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress} {
			if !slices.Contains(np.Spec.PolicyTypes, pt) {
				add("NetworkPolicy %s: policyTypes %v lack %s, which is then not restricted", np.Name, np.Spec.PolicyTypes, pt)
			}
		}
		if n := len(np.Spec.Egress); n > 0 {
			add("NetworkPolicy %s has %d egress rule(s); the server opens no connection and needs none", np.Name, n)
		}
		for i, r := range np.Spec.Ingress {
			if len(r.From) == 0 && len(r.Ports) == 0 {
				add("NetworkPolicy %s: ingress rule %d ({}) admits all traffic to every port", np.Name, i)
			}
		}
		sel, err := labelSelector(&np.Spec.PodSelector)
		if err != nil {
			add("NetworkPolicy %s: podSelector: %v", np.Name, err)
			continue
		}
		for _, d := range s.selected(sel) {
			spec := &d.Spec.Template.Spec
			// Named ports in a rule must exist, or the rule admits nothing.
			for i, r := range np.Spec.Ingress {
				for _, p := range r.Ports {
					if p.Port != nil && p.Port.Type == intstr.String {
						if _, _, err := podPort(spec, *p.Port); err != nil {
							add("NetworkPolicy %s: ingress rule %d names port %q, which no container of Deployment %s has", np.Name, i, p.Port.StrVal, d.Name)
						}
					}
				}
			}
			for _, c := range spec.Containers {
				ac, err := parseContainer(&c)
				if err != nil {
					add("NetworkPolicy %s: Deployment %s container %s: %v", np.Name, d.Name, c.Name, err)
					continue
				}
				for _, cp := range c.Ports {
					switch cp.ContainerPort {
					case ac.port:
						if !slices.ContainsFunc(np.Spec.Ingress, func(r networkingv1.NetworkPolicyIngressRule) bool { return admits(r, cp) }) {
							add("NetworkPolicy %s admits nothing to the API port %d of Deployment %s: clients are cut off", np.Name, cp.ContainerPort, d.Name)
						}
					case ac.metricsPort:
						fromMonitoring := false
						for i, r := range np.Spec.Ingress {
							if !admits(r, cp) {
								continue
							}
							if len(r.From) == 0 {
								add("NetworkPolicy %s: ingress rule %d admits the metrics port %d from any source", np.Name, i, cp.ContainerPort)
							}
							for _, peer := range r.From {
								nsSel := peer.NamespaceSelector
								switch {
								case peer.IPBlock != nil || nsSel == nil:
									add("NetworkPolicy %s: ingress rule %d admits the metrics port %d from a peer that is not a namespaceSelector", np.Name, i, cp.ContainerPort)
								case len(nsSel.MatchLabels) == 0 && len(nsSel.MatchExpressions) == 0:
									add("NetworkPolicy %s: ingress rule %d admits the metrics port %d from an empty namespaceSelector (every namespace)", np.Name, i, cp.ContainerPort)
								default:
									if ns, err := metav1.LabelSelectorAsSelector(nsSel); err == nil && ns.Matches(monitoringNS) {
										fromMonitoring = true
									}
								}
							}
						}
						if !fromMonitoring {
							add("NetworkPolicy %s admits the metrics port %d from no pod of the monitoring namespace: Prometheus cannot scrape", np.Name, cp.ContainerPort)
						}
					}
				}
			}
		}
	}
	return ps
}

func checkResourcesAndSecurity(s *manifestSet) []string {
	var ps []string
	add := func(format string, a ...any) { ps = append(ps, fmt.Sprintf(format, a...)) }
	for _, w := range s.workloads() {
		spec := w.spec
		psc := ptrOr(spec.SecurityContext, corev1.PodSecurityContext{})
		if ptrOr(spec.AutomountServiceAccountToken, true) {
			add("%s: automountServiceAccountToken is not false; the server never calls the API", w.name)
		}
		if ptrOr(spec.EnableServiceLinks, true) {
			add("%s: enableServiceLinks is not false; service links add AESERVE_* variables, the server's flag prefix", w.name)
		}
		if spec.HostNetwork || spec.HostPID || spec.HostIPC {
			add("%s shares a host namespace", w.name)
		}
		for _, c := range containers(spec) {
			where := fmt.Sprintf("%s container %s", w.name, c.Name)
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, hasReq := c.Resources.Requests[r]
				lim, hasLim := c.Resources.Limits[r]
				if !hasReq || req.IsZero() {
					add("%s has no %s request", where, r)
				}
				if !hasLim || lim.IsZero() {
					add("%s has no %s limit", where, r)
				}
				if hasReq && hasLim && req.Cmp(lim) > 0 {
					add("%s: %s request %s exceeds its limit %s", where, r, req.String(), lim.String())
				}
			}
			gomemlimit := false
			for _, e := range c.Env {
				if e.Name != "GOMEMLIMIT" {
					continue
				}
				gomemlimit = true
				if e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil {
					ref := e.ValueFrom.ResourceFieldRef
					if ref.Resource != "limits.memory" || (!ref.Divisor.IsZero() && ref.Divisor.Cmp(resource.MustParse("1")) != 0) {
						add("%s: GOMEMLIMIT takes %s with divisor %s; Go wants the memory limit as a plain byte count (limits.memory, divisor 1)",
							where, ref.Resource, ref.Divisor.String())
					}
				}
			}
			if !gomemlimit {
				add("%s sets no GOMEMLIMIT", where)
			}
			sc := ptrOr(c.SecurityContext, corev1.SecurityContext{})
			if !ptrOr(sc.RunAsNonRoot, ptrOr(psc.RunAsNonRoot, false)) {
				add("%s: runAsNonRoot is not true", where)
			}
			if ptrOr(sc.RunAsUser, ptrOr(psc.RunAsUser, 1)) == 0 {
				add("%s runs as root (runAsUser 0)", where)
			}
			if !ptrOr(sc.ReadOnlyRootFilesystem, false) {
				add("%s: readOnlyRootFilesystem is not true", where)
			}
			if ptrOr(sc.AllowPrivilegeEscalation, true) {
				add("%s: allowPrivilegeEscalation is not false", where)
			}
			if ptrOr(sc.Privileged, false) {
				add("%s is privileged", where)
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
				add("%s: capabilities do not drop ALL", where)
			} else if len(sc.Capabilities.Add) > 0 {
				add("%s adds capabilities %v", where, sc.Capabilities.Add)
			}
			seccomp := sc.SeccompProfile
			if seccomp == nil {
				seccomp = psc.SeccompProfile
			}
			if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
				add("%s: seccomp profile is not RuntimeDefault (pod or container)", where)
			}
		}
	}
	return ps
}

func checkGracePeriod(s *manifestSet) []string {
	var ps []string
	for _, w := range s.workloads() {
		grace := ptrOr(w.spec.TerminationGracePeriodSeconds, corev1.DefaultTerminationGracePeriodSeconds)
		for i := range w.spec.Containers {
			c := &w.spec.Containers[i]
			ac, err := parseContainer(c)
			if err != nil {
				ps = append(ps, fmt.Sprintf("%s container %s: %v", w.name, c.Name, err))
				continue
			}
			drain, shutdown := ac.opts.Server.DrainDelay, ac.opts.Server.ShutdownTimeout
			if time.Duration(grace)*time.Second <= drain+shutdown {
				ps = append(ps, fmt.Sprintf("%s: terminationGracePeriodSeconds %d is not above --drain-delay %v + --shutdown-timeout %v: "+
					"container %s would be killed mid-drain", w.name, grace, drain, shutdown, c.Name))
			}
		}
	}
	return ps
}

func checkServiceMonitors(s *manifestSet) []string {
	var ps []string
	add := func(format string, a ...any) { ps = append(ps, fmt.Sprintf(format, a...)) }
	for _, sm := range s.monitors {
		sel, err := labelSelector(&sm.Spec.Selector)
		if err != nil {
			add("ServiceMonitor %s: selector: %v", sm.Name, err)
			continue
		}
		if len(sm.Spec.Endpoints) == 0 {
			add("ServiceMonitor %s has no endpoints", sm.Name)
		}
		for i, ep := range sm.Spec.Endpoints {
			where := fmt.Sprintf("ServiceMonitor %s endpoint %d", sm.Name, i)
			if ep.Port == "" {
				add("%s names no Service port (port:)", where)
				continue
			}
			if ep.Scheme != nil && *ep.Scheme != "http" {
				add("%s scrapes over %s; the server speaks plain HTTP", where, *ep.Scheme)
			}
			var interval, timeout prommodel.Duration
			if ep.Interval != "" {
				if interval, err = prommodel.ParseDuration(string(ep.Interval)); err != nil {
					add("%s: interval: %v", where, err)
				}
			}
			if ep.ScrapeTimeout != "" {
				if timeout, err = prommodel.ParseDuration(string(ep.ScrapeTimeout)); err != nil {
					add("%s: scrapeTimeout: %v", where, err)
				}
				if interval != 0 && timeout > interval {
					add("%s: scrapeTimeout %v exceeds the interval %v", where, timeout, interval)
				}
			}
			path := ep.Path
			if path == "" {
				path = "/metrics"
			}
			for _, svc := range s.services {
				if !sel.Matches(labels.Set(svc.Labels)) {
					continue
				}
				i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port })
				if i < 0 {
					add("%s: Service %s has no port named %q", where, svc.Name, ep.Port)
					continue
				}
				d := s.serviceBackend(svc)
				if d == nil {
					add("%s: Service %s selects no single Deployment (see selectors)", where, svc.Name)
					continue
				}
				c, port, err := servicePort(d, svc.Spec.Ports[i])
				if err != nil {
					add("%s: Service %s port %q: %v", where, svc.Name, ep.Port, err)
					continue
				}
				ac, err := parseContainer(c)
				if err != nil {
					add("%s: Deployment %s container %s: %v", where, d.Name, c.Name, err)
					continue
				}
				if port != ac.metricsPort {
					add("%s: Service %s port %q reaches port %d, not --metrics-addr's (%d)", where, svc.Name, ep.Port, port, ac.metricsPort)
					continue
				}
				if code := statusOf(ac.srv.OpsHandler(), path); code != http.StatusOK {
					add("%s: GET %s on port %d of Deployment %s: %d %s", where, path, port, d.Name, code, http.StatusText(code))
				}
			}
		}
	}
	return ps
}

func checkAutoscaling(s *manifestSet) []string {
	var ps []string
	add := func(format string, a ...any) { ps = append(ps, fmt.Sprintf(format, a...)) }
	for _, h := range s.hpas {
		if n := ptrOr(h.Spec.MinReplicas, 1); n < 2 {
			add("HorizontalPodAutoscaler %s: minReplicas %d; one pod is an outage on every node drain", h.Name, n)
		} else if h.Spec.MaxReplicas < n {
			add("HorizontalPodAutoscaler %s: maxReplicas %d below minReplicas %d", h.Name, h.Spec.MaxReplicas, n)
		}
		if b := h.Spec.Behavior; b == nil || b.ScaleDown == nil || ptrOr(b.ScaleDown.StabilizationWindowSeconds, 0) == 0 {
			add("HorizontalPodAutoscaler %s has no scale-down stabilisation window", h.Name)
		}
		var got []string
		for _, m := range h.Spec.Metrics {
			switch {
			case m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil:
				got = append(got, "Resource/"+string(m.Resource.Name))
			case m.Type == autoscalingv2.PodsMetricSourceType && m.Pods != nil:
				got = append(got, "Pods/"+m.Pods.Metric.Name)
				d := s.deployment(h.Spec.ScaleTargetRef.Name)
				for _, p := range checkCustomMetric(s, d, m.Pods.Metric.Name) {
					add("HorizontalPodAutoscaler %s: %s", h.Name, p)
				}
			default:
				got = append(got, string(m.Type))
			}
		}
		if want := []string{s.c.hpaMetric}; !slices.Equal(got, want) {
			add("HorizontalPodAutoscaler %s scales on %v, want %v", h.Name, got, want)
		}
	}
	return ps
}

// checkCustomMetric requires an adapter rule that serves metric per pod from
// a series the pods of d really export.
func checkCustomMetric(s *manifestSet, d *appsv1.Deployment, metric string) []string {
	var ps []string
	add := func(format string, a ...any) { ps = append(ps, fmt.Sprintf(format, a...)) }
	var rule *adapterRule
	var series string
	for i := range s.adapterRules {
		r := &s.adapterRules[i]
		name, err := r.seriesName()
		if err != nil {
			add("adapter rule %d: %v", i, err)
			continue
		}
		if as, err := r.metricName(name); err == nil && as == metric {
			rule, series = r, name
		}
	}
	if rule == nil {
		add("no Prometheus Adapter rule serves %q (%s)", metric, adapterRulesFile)
		return ps
	}
	for _, res := range []string{"namespace", "pod"} {
		if !rule.mapsResource(res) {
			add("the adapter rule for %q maps no label to %ss: the pods' values cannot be told apart", metric, res)
		}
	}
	for _, v := range []string{"<<.Series>>", "<<.LabelMatchers>>", "<<.GroupBy>>"} {
		if !strings.Contains(rule.MetricsQuery, v) {
			add("the adapter rule for %q: metricsQuery %q lacks %s", metric, rule.MetricsQuery, v)
		}
	}
	if d == nil {
		return ps // the selectors check reports it
	}
	for i := range d.Spec.Template.Spec.Containers {
		c := &d.Spec.Template.Spec.Containers[i]
		exported, err := exportedMetrics(c)
		if err != nil {
			add("Deployment %s container %s: %v", d.Name, c.Name, err)
			continue
		}
		if !slices.Contains(exported, series) {
			add("the adapter rule for %q reads %q, which Deployment %s does not export (it has %v)", metric, series, d.Name, exported)
		}
	}
	return ps
}

// exportedMetrics lists the metric families of the server a container runs,
// after it answered one request, so that the request counters exist.
func exportedMetrics(c *corev1.Container) ([]string, error) {
	ac, err := parseContainer(c)
	if err != nil {
		return nil, err
	}
	statusOf(ac.srv.Handler(), "/healthz")
	mfs, err := ac.srv.Registry().Gather()
	if err != nil {
		return nil, err
	}
	var ns []string
	for _, mf := range mfs {
		ns = append(ns, mf.GetName())
	}
	return ns, nil
}

// ---- Prometheus Adapter rules

// adapterConfig mirrors the config file of Prometheus Adapter
// (sigs.k8s.io/prometheus-adapter, pkg/config), field for field, so that
// decoding it strictly catches misspelt keys.
type adapterConfig struct {
	Rules         []adapterRule   `json:"rules,omitempty"`
	ExternalRules []adapterRule   `json:"externalRules,omitempty"`
	ResourceRules *map[string]any `json:"resourceRules,omitempty"`
}

type adapterRule struct {
	SeriesQuery   string `json:"seriesQuery"`
	SeriesFilters []struct {
		Is    string `json:"is,omitempty"`
		IsNot string `json:"isNot,omitempty"`
	} `json:"seriesFilters,omitempty"`
	Resources struct {
		Template  string `json:"template,omitempty"`
		Overrides map[string]struct {
			Group    string `json:"group,omitempty"`
			Resource string `json:"resource"`
		} `json:"overrides,omitempty"`
		Namespaced *bool `json:"namespaced,omitempty"`
	} `json:"resources"`
	Name struct {
		Matches string `json:"matches"`
		As      string `json:"as"`
	} `json:"name"`
	MetricsQuery string `json:"metricsQuery,omitempty"`
}

func loadAdapterRules(path string) ([]adapterRule, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	obj, _, err := manifestDecoder.Decode(data, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return nil, fmt.Errorf("%s holds a %T, want a ConfigMap", path, obj)
	}
	text, ok := cm.Data["config.yaml"]
	if !ok {
		return nil, fmt.Errorf("%s: ConfigMap %s has no config.yaml, the file Prometheus Adapter reads", path, cm.Name)
	}
	var cfg adapterConfig
	if err := yaml.UnmarshalStrict([]byte(text), &cfg); err != nil {
		return nil, fmt.Errorf("%s: config.yaml: %w", path, err)
	}
	if len(cfg.Rules) == 0 {
		return nil, fmt.Errorf("%s: config.yaml has no rules", path)
	}
	return cfg.Rules, nil
}

var seriesNameRE = regexp.MustCompile(`^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{|$)`)

// seriesName is the metric name a rule's seriesQuery selects.
func (r *adapterRule) seriesName() (string, error) {
	m := seriesNameRE.FindStringSubmatch(r.SeriesQuery)
	if m == nil {
		return "", fmt.Errorf("seriesQuery %q names no metric before its label matchers", r.SeriesQuery)
	}
	return m[1], nil
}

// metricName is the name the adapter gives series: as the adapter's namer
// does, name.matches (default: all of it) expanded into name.as (default:
// the only capture group, or the whole match), once seriesFilters let the
// series through.
func (r *adapterRule) metricName(series string) (string, error) {
	for _, f := range r.SeriesFilters {
		for _, c := range []struct {
			expr string
			want bool
		}{{f.Is, true}, {f.IsNot, false}} {
			if c.expr == "" {
				continue
			}
			re, err := regexp.Compile(c.expr)
			if err != nil {
				return "", fmt.Errorf("seriesFilters: %w", err)
			}
			if re.MatchString(series) != c.want {
				return "", fmt.Errorf("seriesFilters leave out %q", series)
			}
		}
	}
	matches := r.Name.Matches
	if matches == "" {
		matches = ".*"
	}
	re, err := regexp.Compile(matches)
	if err != nil {
		return "", err
	}
	as := r.Name.As
	if as == "" {
		switch re.NumSubexp() {
		case 0:
			as = "$0"
		case 1:
			as = "$1"
		default:
			return "", fmt.Errorf("name.matches %q has several groups and no name.as", matches)
		}
	}
	idx := re.FindStringSubmatchIndex(series)
	if idx == nil {
		return "", fmt.Errorf("series %q does not match name.matches %q", series, matches)
	}
	return string(re.ExpandString(nil, as, series, idx)), nil
}

// mapsResource says whether the rule ties a series label to a Kubernetes
// resource (namespace, pod).
func (r *adapterRule) mapsResource(res string) bool {
	for _, o := range r.Resources.Overrides {
		if o.Group == "" && (o.Resource == res || o.Resource == res+"s") {
			return true
		}
	}
	// A template such as <<.Resource>> maps a label of the resource's name.
	return strings.Contains(r.Resources.Template, "<<.Resource>>")
}
