package deploy

// KServe: the ServingRuntime and InferenceService of deploy/kserve. KServe's
// Go API types do not build against the Kubernetes modules here (see
// testdata/kserve/README.md), so these objects are validated the way a
// cluster's API server validates custom resources: against KServe's own
// CustomResourceDefinitions, with apiextensions-apiserver's own pruning,
// defaulting and schema validation, an unknown field being an error as it is
// for kubectl's default --validate=strict. Then the predictor pod KServe
// would build of the two is put through the Deployments' checks (probes,
// args, resources and security, grace period), and checkKServe checks what
// only KServe reads: model formats, protocols, ports, storage and scaling.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/template"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/objectmeta"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/api/validate/content"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/aeserve/aeserve/internal/model"
	"github.com/aeserve/aeserve/weights"
)

// What KServe (0.15) fixes, from its pkg/constants and controllers.
const (
	kserveGroup = "serving.kserve.io"
	// The predictor container: KServe merges predictor.model into the
	// runtime's container of this name.
	kserveContainer = "kserve-container"
	// Where the storage initializer puts the storageUri's contents.
	kserveModelDir = "/mnt/models"
	// The annotation choosing Serverless (Knative) or RawDeployment.
	kserveDeploymentMode = kserveGroup + "/deploymentMode"
	kserveAutoscaler     = kserveGroup + "/autoscalerClass"
	// The gRPC port's name: Knative's for HTTP/2 cleartext; KServe marks a
	// port whose name holds it (or "grpc") appProtocol kubernetes.io/h2c.
	kserveGRPCPortName = "h2c"
	// The runtime's metrics port and path, for KServe's scrape annotations.
	kservePromPort = "prometheus.kserve.io/port"
	kservePromPath = "prometheus.kserve.io/path"
)

// kserveStorageSchemes are the storageUri schemes KServe's storage
// initializer takes (SupportedStorageURIPrefixList).
var kserveStorageSchemes = []string{"gs://", "s3://", "pvc://", "file://", "https://", "http://", "hdfs://", "webhdfs://", "oci://", "hf://"}

// kserveISVCName is the name KServe's webhook accepts (IsvcNameFmt).
var kserveISVCName = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)

// kserveCRDDir holds KServe's CRDs, copied from its module: see README.md
// there.
const kserveCRDDir = "testdata/kserve"

var kserveCRDFiles = []string{
	"serving.kserve.io_servingruntimes.yaml",
	"serving.kserve.io_inferenceservices.yaml",
}

// ---- the API server's validation of custom resources

// crdVersion is one served version of a CustomResourceDefinition, ready to
// validate objects as the API server does.
type crdVersion struct {
	gvk        schema.GroupVersionKind
	structural *structuralschema.Structural
	validator  apiservervalidation.SchemaValidator
}

// kserveSchemas are the served versions of KServe's CRDs, by kind.
var kserveSchemas = sync.OnceValues(func() (map[schema.GroupVersionKind]*crdVersion, error) {
	m := map[schema.GroupVersionKind]*crdVersion{}
	for _, f := range kserveCRDFiles {
		vs, err := loadCRD(kserveCRDDir + "/" + f)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			m[v.gvk] = v
		}
	}
	return m, nil
})

func loadCRD(file string) ([]*crdVersion, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(data, &crd); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if crd.Spec.PreserveUnknownFields {
		return nil, fmt.Errorf("%s: preserveUnknownFields: nothing would be pruned", file)
	}
	var vs []*crdVersion
	for _, v := range crd.Spec.Versions {
		if !v.Served {
			continue
		}
		where := fmt.Sprintf("%s version %s", file, v.Name)
		if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
			return nil, fmt.Errorf("%s has no schema", where)
		}
		var internal apiextensions.JSONSchemaProps
		if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, &internal, nil); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		st, err := structuralschema.NewStructural(&internal)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if errs := structuralschema.ValidateStructural(nil, st); len(errs) > 0 {
			return nil, fmt.Errorf("%s is not a structural schema: %w", where, errs.ToAggregate())
		}
		validator, _, err := apiservervalidation.NewSchemaValidator(&internal)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		vs = append(vs, &crdVersion{
			gvk:        schema.GroupVersionKind{Group: crd.Spec.Group, Version: v.Name, Kind: crd.Spec.Names.Kind},
			structural: st, validator: validator,
		})
	}
	return vs, nil
}

// validateCustomResource does to data (YAML or JSON) what the API server
// does to a custom resource created with field validation Strict, kubectl's
// default: it decodes it refusing duplicate fields, refuses fields the schema
// would prune, applies the schema's defaults, and validates the result
// against the schema, object metadata rules and list-type invariants
// (apiextensions-apiserver's customresource_handler.go and strategy.go).
// KServe's CRDs have no CEL rules. It returns the defaulted object.
func validateCustomResource(data []byte) (map[string]any, *crdVersion, error) {
	schemas, err := kserveSchemas()
	if err != nil {
		return nil, nil, err
	}
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, nil, err
	}
	var obj map[string]any
	strictErrs, err := kjson.UnmarshalStrict(j, &obj)
	if err != nil {
		return nil, nil, err
	}
	if err := errors.Join(strictErrs...); err != nil {
		return nil, nil, err
	}
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return nil, nil, err
	}
	cv, ok := schemas[gv.WithKind(kind)]
	if !ok {
		var served []string
		for gvk := range schemas {
			served = append(served, gvk.GroupVersion().String()+" "+gvk.Kind)
		}
		slices.Sort(served)
		return nil, nil, fmt.Errorf("no CRD here serves %s %s (they serve %s)", apiVersion, kind, strings.Join(served, ", "))
	}

	var errs []error
	unknown := func(paths []string) {
		for _, p := range paths {
			errs = append(errs, fmt.Errorf("unknown field %q", p))
		}
	}
	meta, found, metaUnknown, err := objectmeta.GetObjectMetaWithOptions(obj, objectmeta.ObjectMetaOptions{ReturnUnknownFieldPaths: true})
	if err != nil {
		return nil, nil, err
	}
	unknown(metaUnknown)
	if !found {
		meta = &metav1.ObjectMeta{}
	}
	m := meta.DeepCopy()
	if m.Namespace == "" {
		m.Namespace = "default" // kubectl gives it (-n)
	}
	// Custom resources' names need only be path segments; KServe's webhook
	// is stricter about InferenceServices (checkKServe).
	for _, e := range apimachineryvalidation.ValidateObjectMeta(m, true, validatePathSegment, field.NewPath("metadata")) {
		errs = append(errs, e)
	}

	unknown(pruning.PruneWithOptions(obj, cv.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}))
	defaulting.PruneNonNullableNullsWithoutDefaults(obj, cv.structural)
	if err, paths := objectmeta.CoerceWithOptions(nil, obj, cv.structural, false, objectmeta.CoerceOptions{ReturnUnknownFieldPaths: true}); err != nil {
		errs = append(errs, err)
	} else {
		unknown(paths)
	}
	defaulting.Default(obj, cv.structural)

	for _, e := range apiservervalidation.ValidateCustomResource(nil, obj, cv.validator) {
		errs = append(errs, e)
	}
	for _, e := range objectmeta.Validate(context.Background(), nil, obj, cv.structural, false) {
		errs = append(errs, e)
	}
	for _, e := range listtype.ValidateListSetsAndMaps(nil, cv.structural, obj) {
		errs = append(errs, e)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return obj, cv, nil
}

// validatePathSegment is the API server's name rule for custom resources
// (k8s.io/apiserver/pkg/registry/rest's validatePathSegment).
func validatePathSegment(name string, prefix bool) []string {
	if prefix {
		return content.IsPathSegmentPrefix(name)
	}
	return content.IsPathSegmentName(name)
}

// ---- the fields of KServe's objects that the checks read

// Once the CRD schema has passed an object, these read it (not strictly:
// they hold only what the checks need), in KServe's field names
// (pkg/apis/serving/v1alpha1 and v1beta1).

type servingRuntime struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SupportedModelFormats []struct {
			Name       string  `json:"name"`
			Version    *string `json:"version,omitempty"`
			AutoSelect *bool   `json:"autoSelect,omitempty"`
		} `json:"supportedModelFormats,omitempty"`
		ProtocolVersions []string           `json:"protocolVersions,omitempty"`
		MultiModel       *bool              `json:"multiModel,omitempty"`
		Disabled         *bool              `json:"disabled,omitempty"`
		WorkerSpec       map[string]any     `json:"workerSpec,omitempty"`
		Annotations      map[string]string  `json:"annotations,omitempty"`
		Labels           map[string]string  `json:"labels,omitempty"`
		Containers       []corev1.Container `json:"containers"`
		// The pod fields KServe merges into the predictor's (MergePodSpec).
		NodeSelector     map[string]string             `json:"nodeSelector,omitempty"`
		Affinity         *corev1.Affinity              `json:"affinity,omitempty"`
		Tolerations      []corev1.Toleration           `json:"tolerations,omitempty"`
		Volumes          []corev1.Volume               `json:"volumes,omitempty"`
		ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`
	} `json:"spec"`
}

type inferenceService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Predictor   predictorSpec  `json:"predictor"`
		Transformer map[string]any `json:"transformer,omitempty"`
		Explainer   map[string]any `json:"explainer,omitempty"`
	} `json:"spec"`
}

// predictorSpec is v1beta1.PredictorSpec: a pod spec, KServe's component
// extensions, and the model.
type predictorSpec struct {
	corev1.PodSpec `json:",inline"`
	MinReplicas    *int32            `json:"minReplicas,omitempty"`
	MaxReplicas    int32             `json:"maxReplicas,omitempty"`
	ScaleMetric    *string           `json:"scaleMetric,omitempty"`
	ScaleTarget    *int32            `json:"scaleTarget,omitempty"`
	Annotations    map[string]string `json:"annotations,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	Model          *modelSpec        `json:"model,omitempty"`
}

type modelSpec struct {
	corev1.Container `json:",inline"`
	ModelFormat      struct {
		Name    string  `json:"name"`
		Version *string `json:"version,omitempty"`
	} `json:"modelFormat"`
	Runtime         *string        `json:"runtime,omitempty"`
	ProtocolVersion *string        `json:"protocolVersion,omitempty"`
	StorageURI      *string        `json:"storageUri,omitempty"`
	Storage         map[string]any `json:"storage,omitempty"`
}

// addKServe validates a KServe object against its CRD and adds it.
func (s *manifestSet) addKServe(data []byte) error {
	obj, cv, err := validateCustomResource(data)
	if err != nil {
		return err
	}
	j, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	switch cv.gvk.Kind {
	case "ServingRuntime":
		var sr servingRuntime
		if err := json.Unmarshal(j, &sr); err != nil {
			return err
		}
		s.runtimes = append(s.runtimes, &sr)
	case "InferenceService":
		var isvc inferenceService
		if err := json.Unmarshal(j, &isvc); err != nil {
			return err
		}
		s.isvcs = append(s.isvcs, &isvc)
	default:
		return fmt.Errorf("kind %s is decoded, but no check here covers it: add them", cv.gvk)
	}
	return nil
}

func (s *manifestSet) runtime(name string) *servingRuntime {
	i := slices.IndexFunc(s.runtimes, func(sr *servingRuntime) bool { return sr.Name == name })
	if i < 0 {
		return nil
	}
	return s.runtimes[i]
}

// ---- the predictor pod, as KServe builds it

// predictorPod is what KServe's predictor reconciler
// (pkg/controller/v1beta1/inferenceservice/components/predictor.go) makes of
// an InferenceService's predictor.model: the runtime it picks, and the pod.
type predictorPod struct {
	runtime *servingRuntime
	spec    corev1.PodSpec
	labels  map[string]string
}

// predictor builds isvc's predictor pod as KServe does, failing where
// KServe would.
func (s *manifestSet) predictor(isvc *inferenceService) (*predictorPod, error) {
	p := &isvc.Spec.Predictor
	m := p.Model
	if m == nil {
		return nil, errors.New("predictor has no model: no runtime is used")
	}
	var sr *servingRuntime
	if m.Runtime != nil {
		if sr = s.runtime(*m.Runtime); sr == nil {
			return nil, fmt.Errorf("runtime %q: no ServingRuntime of that name here", *m.Runtime)
		}
		switch {
		case ptrOr(sr.Spec.Disabled, false):
			return nil, fmt.Errorf("runtime %s is disabled", sr.Name)
		case m.ProtocolVersion != nil && !sr.supportsProtocol(*m.ProtocolVersion):
			return nil, fmt.Errorf("runtime %s does not support protocol version %s (it has %v)", sr.Name, *m.ProtocolVersion, sr.Spec.ProtocolVersions)
		case !m.supportedBy(sr):
			return nil, fmt.Errorf("runtime %s does not support model format %s", sr.Name, m.formatLabel())
		}
	} else {
		// Auto-selection: the single-model, single-node runtimes that
		// support the format with autoSelect and the protocol (v1 unless
		// given). Here only one may.
		var fit []string
		for _, c := range s.runtimes {
			if !ptrOr(c.Spec.Disabled, false) && !ptrOr(c.Spec.MultiModel, false) && c.Spec.WorkerSpec == nil &&
				m.supportedBy(c) && c.supportsProtocol(ptrOr(m.ProtocolVersion, "v1")) {
				fit = append(fit, c.Name)
				sr = c
			}
		}
		if len(fit) != 1 {
			return nil, fmt.Errorf("no runtime is named, and %d ServingRuntimes here would be picked for model format %s: %v", len(fit), m.formatLabel(), fit)
		}
	}
	i := slices.IndexFunc(sr.Spec.Containers, func(c corev1.Container) bool { return c.Name == kserveContainer })
	if i < 0 {
		return nil, fmt.Errorf("failed to find %s in ServingRuntime %s containers", kserveContainer, sr.Name)
	}
	c, err := mergeRuntimeContainers(&sr.Spec.Containers[i], &m.Container)
	if err != nil {
		return nil, fmt.Errorf("merging predictor.model into ServingRuntime %s: %w", sr.Name, err)
	}
	if err := replacePlaceholders(c, isvc.ObjectMeta); err != nil {
		return nil, fmt.Errorf("ServingRuntime %s container %s: %w", sr.Name, c.Name, err)
	}
	spec, err := mergePodSpec(sr, &p.PodSpec)
	if err != nil {
		return nil, fmt.Errorf("merging the predictor's pod spec into ServingRuntime %s: %w", sr.Name, err)
	}
	spec.Containers = []corev1.Container{*c}
	for _, rc := range sr.Spec.Containers {
		if rc.Name != kserveContainer && rc.Name != "transformer-container" {
			spec.Containers = append(spec.Containers, rc)
		}
	}
	for _, pc := range p.Containers {
		if pc.Name != "transformer-container" {
			spec.Containers = append(spec.Containers, pc)
		}
	}
	lbls := map[string]string{}
	for _, l := range []map[string]string{sr.Spec.Labels, isvc.Labels, p.Labels,
		{kserveGroup + "/inferenceservice": isvc.Name, "component": "predictor"}} {
		for k, v := range l {
			lbls[k] = v
		}
	}
	return &predictorPod{runtime: sr, spec: *spec, labels: lbls}, nil
}

func (sr *servingRuntime) supportsProtocol(p string) bool {
	return len(sr.Spec.ProtocolVersions) == 0 || slices.Contains(sr.Spec.ProtocolVersions, p)
}

// formatLabel and supportedBy are KServe's RuntimeSupportsModel: a runtime
// named by the InferenceService supports each of its formats, one picked
// automatically only those with autoSelect; a format with a version matches
// only that version.
func (m *modelSpec) formatLabel() string {
	if v := m.ModelFormat.Version; v != nil {
		return m.ModelFormat.Name + ":" + *v
	}
	return m.ModelFormat.Name
}

func (m *modelSpec) supportedBy(sr *servingRuntime) bool {
	for _, f := range sr.Spec.SupportedModelFormats {
		if m.Runtime == nil && !ptrOr(f.AutoSelect, false) {
			continue
		}
		if f.Name == m.ModelFormat.Name && (m.ModelFormat.Version == nil || (f.Version != nil && *f.Version == *m.ModelFormat.Version)) {
			return true
		}
	}
	return false
}

// mergeRuntimeContainers is KServe's: predictor.model's fields patched over
// the runtime's container (strategic merge), but args appended.
func mergeRuntimeContainers(rc, mc *corev1.Container) (*corev1.Container, error) {
	orig, err := json.Marshal(rc)
	if err != nil {
		return nil, err
	}
	patch, err := json.Marshal(mc)
	if err != nil {
		return nil, err
	}
	merged, err := strategicpatch.StrategicMergePatch(orig, patch, corev1.Container{})
	if err != nil {
		return nil, err
	}
	var c corev1.Container
	if err := json.Unmarshal(merged, &c); err != nil {
		return nil, err
	}
	if c.Name == "" {
		c.Name = rc.Name
	}
	c.Args = append(slices.Clone(rc.Args), mc.Args...)
	return &c, nil
}

// mergePodSpec is KServe's: the predictor's pod spec patched over the
// runtime's pod fields.
func mergePodSpec(sr *servingRuntime, ps *corev1.PodSpec) (*corev1.PodSpec, error) {
	orig, err := json.Marshal(corev1.PodSpec{NodeSelector: sr.Spec.NodeSelector, Affinity: sr.Spec.Affinity,
		Tolerations: sr.Spec.Tolerations, Volumes: sr.Spec.Volumes, ImagePullSecrets: sr.Spec.ImagePullSecrets})
	if err != nil {
		return nil, err
	}
	patch, err := json.Marshal(ps)
	if err != nil {
		return nil, err
	}
	merged, err := strategicpatch.StrategicMergePatch(orig, patch, corev1.PodSpec{})
	if err != nil {
		return nil, err
	}
	var spec corev1.PodSpec
	return &spec, json.Unmarshal(merged, &spec)
}

// replacePlaceholders is KServe's: the container, as JSON, is a Go template
// of the InferenceService's metadata ({{.Name}}, {{.Labels.x}}).
func replacePlaceholders(c *corev1.Container, meta metav1.ObjectMeta) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	tmpl, err := template.New("container").Parse(string(data))
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, meta); err != nil {
		return err
	}
	return json.Unmarshal(buf.Bytes(), c)
}

// ---- what only KServe reads

// weightsFormats are the manifest formats the server reads, having proved
// it on the weights it embeds (each loaded here).
var weightsFormats = sync.OnceValues(func() (map[string]bool, error) {
	formats := map[string]bool{}
	for _, f := range model.ReadFormats() {
		formats[f] = true
	}
	entries, err := fs.ReadDir(weights.FS, ".")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := model.LoadFS(weights.FS, e.Name()); err != nil {
			return nil, fmt.Errorf("embedded weights %s: %w", e.Name(), err)
		}
	}
	return formats, nil
})

const weightsFormatPrefix = "aeserve-weights/"

func checkKServe(s *manifestSet) []string {
	var ps []string
	add := func(format string, a ...any) { ps = append(ps, fmt.Sprintf(format, a...)) }
	formats, err := weightsFormats()
	if err != nil {
		return []string{err.Error()}
	}
	for _, sr := range s.runtimes {
		where := "ServingRuntime " + sr.Name
		if len(sr.Spec.SupportedModelFormats) == 0 {
			add("%s supports no model format: no InferenceService can use it", where)
		}
		for _, f := range sr.Spec.SupportedModelFormats {
			switch {
			case f.Name != "aeserve":
				add("%s supports model format %q; the server reads only aeserve weights", where, f.Name)
			case f.Version == nil:
				add("%s: model format aeserve names no version (the weights manifest's format, %s<version>)", where, weightsFormatPrefix)
			case !formats[weightsFormatPrefix+*f.Version]:
				add("%s: model format aeserve version %q is %s%s, which the server does not read (it reads %v)",
					where, *f.Version, weightsFormatPrefix, *f.Version, slices.Sorted(maps.Keys(formats)))
			}
		}
		if !slices.Contains(sr.Spec.ProtocolVersions, "v2") {
			add("%s: protocolVersions %v lack v2, the Open Inference Protocol over REST the server speaks", where, sr.Spec.ProtocolVersions)
		}
		for _, p := range sr.Spec.ProtocolVersions {
			if p != "v2" && p != "grpc-v2" {
				add("%s: protocol version %s, which the server does not speak (only v2 and grpc-v2)", where, p)
			}
		}
		i := slices.IndexFunc(sr.Spec.Containers, func(c corev1.Container) bool { return c.Name == kserveContainer })
		if i < 0 {
			add("%s has no container named %s, the one KServe runs the model in", where, kserveContainer)
			continue
		}
		c := &sr.Spec.Containers[i]
		where += " container " + c.Name
		ac, err := parseContainer(c)
		if err != nil {
			add("%s: %v", where, err)
			continue
		}
		if ac.opts.Weights != kserveModelDir {
			add("%s: --weights %q, not %s where KServe's storage initializer puts the storageUri", where, ac.opts.Weights, kserveModelDir)
		}
		var grpcPort int32
		if ac.opts.GRPCAddr != "" {
			if grpcPort, err = listenPort(ac.opts.GRPCAddr); err != nil {
				add("%s: --grpc-addr %q: %v", where, ac.opts.GRPCAddr, err)
			}
		}
		if slices.Contains(sr.Spec.ProtocolVersions, "grpc-v2") && ac.opts.GRPCAddr == "" {
			add("%s: protocolVersions have grpc-v2, but no --grpc-addr serves gRPC", where)
		}
		if len(c.Ports) == 0 {
			add("%s declares no port: KServe would send REST to %s", where, "8080")
		} else if c.Ports[0].ContainerPort != ac.port {
			add("%s: KServe's Service sends port 80 to the first container port, %d, but the REST API (--addr) is on %d",
				where, c.Ports[0].ContainerPort, ac.port)
		}
		h2c := false
		for _, cp := range c.Ports {
			switch {
			case cp.ContainerPort != ac.port && cp.ContainerPort != ac.metricsPort && (grpcPort == 0 || cp.ContainerPort != grpcPort):
				add("%s: container port %d (%s), where aeserve listens on nothing", where, cp.ContainerPort, cp.Name)
			case strings.Contains(cp.Name, "grpc") || strings.Contains(cp.Name, kserveGRPCPortName):
				// KServe marks these appProtocol kubernetes.io/h2c.
				if cp.ContainerPort != grpcPort {
					add("%s: port %s (%d) is HTTP/2 to KServe, but --grpc-addr is %q", where, cp.Name, cp.ContainerPort, ac.opts.GRPCAddr)
				}
				h2c = h2c || cp.Name == kserveGRPCPortName
			case cp.ContainerPort == grpcPort:
				add("%s: port %s (%d) is --grpc-addr's, but KServe takes it for HTTP/1: name it %s", where, cp.Name, cp.ContainerPort, kserveGRPCPortName)
			}
		}
		if grpcPort != 0 && !h2c {
			add("%s: no container port named %s has --grpc-addr's port %d", where, kserveGRPCPortName, grpcPort)
		}
		if port, ok := sr.Spec.Annotations[kservePromPort]; ok {
			if port != fmt.Sprint(ac.metricsPort) {
				add("%s: %s %q, but --metrics-addr's port is %d", where, kservePromPort, port, ac.metricsPort)
			} else if code := statusOf(ac.srv.OpsHandler(), sr.Spec.Annotations[kservePromPath]); code != http.StatusOK {
				add("%s: %s %q on the metrics port: %d %s", where, kservePromPath, sr.Spec.Annotations[kservePromPath], code, http.StatusText(code))
			}
		}
	}

	for _, isvc := range s.isvcs {
		where := "InferenceService " + isvc.Name
		if !kserveISVCName.MatchString(isvc.Name) {
			add("%s: KServe takes only names matching %s", where, kserveISVCName)
		}
		pp, err := s.predictor(isvc)
		if err != nil {
			add("%s: %v", where, err)
			continue
		}
		m := isvc.Spec.Predictor.Model
		if m.Runtime == nil {
			add("%s names no runtime: KServe would pick ServingRuntime %s, or another that comes to support %s", where, pp.runtime.Name, m.formatLabel())
		}
		if m.ProtocolVersion == nil {
			add("%s names no protocolVersion", where)
		}
		switch {
		case m.StorageURI == nil:
			add("%s: predictor.model has no storageUri: %s would be empty", where, kserveModelDir)
		case !slices.ContainsFunc(kserveStorageSchemes, func(p string) bool { return strings.HasPrefix(*m.StorageURI, p) }):
			add("%s: storageUri %q has a scheme KServe's storage initializer does not take (%v)", where, *m.StorageURI, kserveStorageSchemes)
		}
		mode := isvc.Annotations[kserveDeploymentMode]
		if kc := pp.spec.Containers[0]; len(kc.Ports) > 1 && mode != "RawDeployment" {
			add("%s: deploymentMode %q, but container %s declares %d ports: Knative (Serverless) allows one; use RawDeployment",
				where, mode, kc.Name, len(kc.Ports))
		}
		pred := &isvc.Spec.Predictor
		if n := ptrOr(pred.MinReplicas, 1); n < 2 {
			add("%s: minReplicas %d; one pod is an outage on every node drain", where, n)
		} else if pred.MaxReplicas < n {
			add("%s: maxReplicas %d below minReplicas %d", where, pred.MaxReplicas, n)
		}
		if mode == "RawDeployment" && ptrOr(pred.ScaleMetric, "cpu") == "cpu" {
			if class := isvc.Annotations[kserveAutoscaler]; class != "hpa" {
				add("%s: autoscalerClass %q, want hpa (KServe then checks the scale settings)", where, class)
			}
			if t := ptrOr(pred.ScaleTarget, 0); t < 1 || t > 100 {
				add("%s: scaleTarget %d is no CPU utilisation percentage", where, t)
			}
		}
		for i, tsc := range pp.spec.TopologySpreadConstraints {
			sel, err := labelSelector(tsc.LabelSelector)
			if err != nil || !sel.Matches(labels.Set(pp.labels)) {
				add("%s: topologySpreadConstraints[%d] selector %v does not match the predictor's pods (labels %v)", where, i, sel, pp.labels)
			}
		}
	}
	return ps
}

// ---- tests

// TestKServeSchemasCatch breaks the rendered objects in ways the API server
// refuses, and requires validateCustomResource to refuse them too.
func TestKServeSchemasCatch(t *testing.T) {
	objs := renderKServe(t)
	for kind, obj := range objs {
		if _, _, err := validateCustomResource(mustJSON(t, obj)); err != nil {
			t.Fatalf("the %s as rendered: %v", kind, err)
		}
	}
	tests := []struct {
		name, kind string
		mutate     func(o map[string]any)
		want       string
	}{
		{"misspelt probe field", "ServingRuntime", func(o map[string]any) {
			c := dig(o, "spec", "containers", 0)
			dig(c, "readinessProbe")["periodSecond"] = int64(2)
		}, `unknown field "spec.containers[0].readinessProbe.periodSecond"`},
		{"misspelt spec field", "ServingRuntime", func(o map[string]any) {
			dig(o, "spec")["protocolVersion"] = []any{"v2"}
		}, `unknown field "spec.protocolVersion"`},
		{"misspelt metadata field", "InferenceService", func(o map[string]any) {
			dig(o, "metadata")["annotation"] = map[string]any{"a": "b"}
		}, `unknown field "metadata.annotation"`},
		{"misspelt model field", "InferenceService", func(o map[string]any) {
			m := dig(o, "spec", "predictor", "model")
			m["storageURI"] = m["storageUri"]
		}, `unknown field "spec.predictor.model.storageURI"`},
		{"wrong type", "InferenceService", func(o map[string]any) {
			dig(o, "spec", "predictor")["minReplicas"] = "2"
		}, `spec.predictor.minReplicas: Invalid value: "string": spec.predictor.minReplicas in body must be of type integer`},
		{"wrong type in a container", "ServingRuntime", func(o map[string]any) {
			dig(o, "spec", "containers", 0)["args"] = "--weights=/mnt/models"
		}, `spec.containers[0].args: Invalid value: "string"`},
		{"value outside the enum", "InferenceService", func(o map[string]any) {
			dig(o, "spec", "predictor")["scaleMetric"] = "requests"
		}, `spec.predictor.scaleMetric: Unsupported value: "requests"`},
		{"missing required field", "InferenceService", func(o map[string]any) {
			delete(dig(o, "spec", "predictor", "model", "modelFormat"), "name")
		}, `spec.predictor.model.modelFormat.name: Required value`},
		{"missing required containers", "ServingRuntime", func(o map[string]any) {
			delete(dig(o, "spec"), "containers")
		}, `spec.containers: Required value`},
		{"missing container name", "ServingRuntime", func(o map[string]any) {
			delete(dig(o, "spec", "containers", 0), "name")
		}, `spec.containers[0].name: Required value`},
		{"two ports with one number", "ServingRuntime", func(o map[string]any) {
			c := dig(o, "spec", "containers", 0)
			c["ports"] = append(c["ports"].([]any), map[string]any{"name": "again", "containerPort": int64(8080)})
		}, `spec.containers[0].ports[3]: Duplicate value: {"containerPort":8080,"protocol":"TCP"}`},
		{"name no path segment", "InferenceService", func(o map[string]any) {
			dig(o, "metadata")["name"] = "aeserve/mnist"
		}, `metadata.name: Invalid value: "aeserve/mnist"`},
		{"served kind, unserved version", "ServingRuntime", func(o map[string]any) {
			o["apiVersion"] = "serving.kserve.io/v1beta1"
		}, `no CRD here serves serving.kserve.io/v1beta1 ServingRuntime`},
		{"kind no CRD defines", "ServingRuntime", func(o map[string]any) {
			o["kind"] = "ServingRuntimes"
		}, `no CRD here serves serving.kserve.io/v1alpha1 ServingRuntimes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o map[string]any // a copy
			if err := json.Unmarshal(mustJSON(t, objs[tt.kind]), &o); err != nil {
				t.Fatal(err)
			}
			tt.mutate(o)
			_, _, err := validateCustomResource(mustJSON(t, o))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("validating gives %v, want an error containing %q", err, tt.want)
			}
		})
	}
	t.Run("duplicate field", func(t *testing.T) {
		_, _, err := validateCustomResource([]byte(`
apiVersion: serving.kserve.io/v1alpha1
kind: ServingRuntime
metadata: {name: x}
spec:
  containers: [{name: kserve-container}]
  containers: [{name: other}]
`))
		if err == nil || !strings.Contains(err.Error(), `key "containers" already set`) {
			t.Errorf("validating gives %v, want a duplicate key error", err)
		}
	})
	t.Run("defaults applied", func(t *testing.T) {
		obj, _, err := validateCustomResource(mustJSON(t, objs["ServingRuntime"]))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range dig(obj, "spec", "containers", 0)["ports"].([]any) {
			if proto := p.(map[string]any)["protocol"]; proto != "TCP" {
				t.Errorf("port %v: protocol %v, want the CRD's default TCP", p, proto)
			}
		}
	})
}

// TestKServeChecksCatch breaks the kserve set in memory, one way per case,
// and requires the check meant for it to say so.
func TestKServeChecksCatch(t *testing.T) {
	kc := manifestCases[slices.IndexFunc(manifestCases, func(c manifestCase) bool { return c.name == "kserve" })]
	rc := func(s *manifestSet) *corev1.Container { return &s.runtimes[0].Spec.Containers[0] }
	model := func(s *manifestSet) *modelSpec { return s.isvcs[0].Spec.Predictor.Model }
	testCatches(t, []catchCase{
		{"weights not where KServe puts them", kc, checkKServe, func(s *manifestSet) {
			c := rc(s)
			c.Args = slices.DeleteFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--weights") })
		}, `--weights "", not /mnt/models`},
		{"grpc port misnamed", kc, checkKServe, func(s *manifestSet) {
			rc(s).Ports[1].Name = "http2"
		}, "port http2 (8081) is --grpc-addr's, but KServe takes it for HTTP/1: name it h2c"},
		{"grpc port misnumbered", kc, checkKServe, func(s *manifestSet) {
			rc(s).Ports[1].ContainerPort = 9000
		}, "container port 9000 (h2c), where aeserve listens on nothing"},
		{"grpc off", kc, checkKServe, func(s *manifestSet) {
			c := rc(s)
			c.Args = slices.DeleteFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--grpc-addr") })
		}, "protocolVersions have grpc-v2, but no --grpc-addr serves gRPC"},
		{"grpc port first", kc, checkKServe, func(s *manifestSet) {
			ports := rc(s).Ports
			ports[0], ports[1] = ports[1], ports[0]
		}, "KServe's Service sends port 80 to the first container port, 8081, but the REST API (--addr) is on 8080"},
		{"scrape port wrong", kc, checkKServe, func(s *manifestSet) {
			s.runtimes[0].Spec.Annotations[kservePromPort] = "8080"
		}, `prometheus.kserve.io/port "8080", but --metrics-addr's port is 9090`},
		{"format version the server cannot read", kc, checkKServe, func(s *manifestSet) {
			s.runtimes[0].Spec.SupportedModelFormats[0].Version = new("3")
		}, `model format aeserve version "3" is aeserve-weights/3, which the server does not read`},
		{"protocol the server does not speak", kc, checkKServe, func(s *manifestSet) {
			s.runtimes[0].Spec.ProtocolVersions = []string{"v1"}
		}, "protocol version v1, which the server does not speak"},
		{"runtime misnamed", kc, checkKServe, func(s *manifestSet) {
			model(s).Runtime = new("aeserv")
		}, `runtime "aeserv": no ServingRuntime of that name here`},
		{"model format the runtime lacks", kc, checkKServe, func(s *manifestSet) {
			model(s).ModelFormat.Name = "onnx"
		}, "runtime aeserve does not support model format onnx"},
		{"model format version the runtime lacks", kc, checkKServe, func(s *manifestSet) {
			model(s).ModelFormat.Version = new("3")
		}, "runtime aeserve does not support model format aeserve:3"},
		{"protocol the runtime lacks", kc, checkKServe, func(s *manifestSet) {
			model(s).ProtocolVersion = new("v1")
		}, "runtime aeserve does not support protocol version v1"},
		{"no kserve-container", kc, checkKServe, func(s *manifestSet) {
			rc(s).Name = "aeserve"
		}, "failed to find kserve-container in ServingRuntime aeserve containers"},
		{"storage scheme unknown", kc, checkKServe, func(s *manifestSet) {
			model(s).StorageURI = new("ftp://weights/")
		}, `storageUri "ftp://weights/" has a scheme KServe's storage initializer does not take`},
		{"serverless with two ports", kc, checkKServe, func(s *manifestSet) {
			delete(s.isvcs[0].Annotations, kserveDeploymentMode)
		}, "Knative (Serverless) allows one; use RawDeployment"},
		{"one replica", kc, checkKServe, func(s *manifestSet) {
			s.isvcs[0].Spec.Predictor.MinReplicas = nil
		}, "minReplicas 1"},
		{"spread over the wrong pods", kc, checkKServe, func(s *manifestSet) {
			s.isvcs[0].Spec.Predictor.TopologySpreadConstraints[0].LabelSelector.MatchLabels["component"] = "transformer"
		}, "topologySpreadConstraints[0] selector"},
		{"name KServe refuses", kc, checkKServe, func(s *manifestSet) {
			s.isvcs[0].Name = "aeserve.mnist"
		}, "KServe takes only names matching"},
		{"placeholder of nothing", kc, checkKServe, func(s *manifestSet) {
			c := rc(s)
			c.Args = append(c.Args, "--models={{.Labels.models}}{{.Nope}}")
		}, "can't evaluate field Nope"},

		// The Deployments' checks, on the predictor pod KServe builds.
		{"isvc args appended to the runtime's", kc, checkArgs, func(s *manifestSet) {
			model(s).Args = []string{"--model=conv"}
		}, "flag provided but not defined: -model"},
		{"probe path the server does not serve", kc, checkProbes, func(s *manifestSet) {
			rc(s).ReadinessProbe.HTTPGet.Path = "/v2/ready"
		}, "InferenceService aeserve-mnist predictor container kserve-container: readiness probe GET /v2/ready on port 8080: 404"},
		{"liveness on readiness", kc, checkProbes, func(s *manifestSet) {
			rc(s).LivenessProbe.HTTPGet.Path = "/v2/health/ready"
		}, "liveness probe checks /v2/health/ready"},
		{"writable root", kc, checkResourcesAndSecurity, func(s *manifestSet) {
			rc(s).SecurityContext.ReadOnlyRootFilesystem = nil
		}, "InferenceService aeserve-mnist predictor container kserve-container: readOnlyRootFilesystem is not true"},
		{"model overrides the security context", kc, checkResourcesAndSecurity, func(s *manifestSet) {
			model(s).SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: new(true)}
		}, "allowPrivilegeEscalation is not false"},
		{"no seccomp", kc, checkResourcesAndSecurity, func(s *manifestSet) {
			rc(s).SecurityContext.SeccompProfile = nil
			s.isvcs[0].Spec.Predictor.SecurityContext.SeccompProfile = nil
		}, "seccomp profile is not RuntimeDefault"},
		{"service links", kc, checkResourcesAndSecurity, func(s *manifestSet) {
			s.isvcs[0].Spec.Predictor.EnableServiceLinks = nil
		}, "InferenceService aeserve-mnist predictor: enableServiceLinks is not false"},
		{"grace period shorter than the drain", kc, checkGracePeriod, func(s *manifestSet) {
			s.isvcs[0].Spec.Predictor.TerminationGracePeriodSeconds = new(int64(25))
		}, "terminationGracePeriodSeconds 25 is not above --drain-delay 5s + --shutdown-timeout 20s"},
	})
}

// TestKServeMatchesBase holds the runtime to the base Deployment where they
// should agree: the image the kustomizations' images entries make, the
// drain, the resources, the environment and the effective security context.
func TestKServeMatchesBase(t *testing.T) {
	base := loadManifestSet(t, manifestCases[0])
	ks := loadManifestSet(t, manifestCases[slices.IndexFunc(manifestCases, func(c manifestCase) bool { return c.name == "kserve" })])
	bw, kw := base.workloads(), ks.workloads()
	if len(bw) != 1 || len(kw) != 1 {
		t.Fatalf("workloads: base %d, kserve %d; want one each", len(bw), len(kw))
	}
	bc, kc := &bw[0].spec.Containers[0], &kw[0].spec.Containers[0]
	if bc.Image != kc.Image {
		t.Errorf("image %q, base %q: the images entries of kserve/ and base/ differ", kc.Image, bc.Image)
	}
	ba, err := parseContainer(bc)
	if err != nil {
		t.Fatal(err)
	}
	ka, err := parseContainer(kc)
	if err != nil {
		t.Fatal(err)
	}
	if b, k := ba.opts.Server, ka.opts.Server; b.DrainDelay != k.DrainDelay || b.ShutdownTimeout != k.ShutdownTimeout {
		t.Errorf("--drain-delay %v --shutdown-timeout %v, base %v and %v", k.DrainDelay, k.ShutdownTimeout, b.DrainDelay, b.ShutdownTimeout)
	}
	if b, k := ptrOr(bw[0].spec.TerminationGracePeriodSeconds, 30), ptrOr(kw[0].spec.TerminationGracePeriodSeconds, 30); b != k {
		t.Errorf("terminationGracePeriodSeconds %d, base %d", k, b)
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		for _, l := range []struct {
			name string
			b, k corev1.ResourceList
		}{{"request", bc.Resources.Requests, kc.Resources.Requests}, {"limit", bc.Resources.Limits, kc.Resources.Limits}} {
			if b, k := l.b[r], l.k[r]; b.Cmp(k) != 0 {
				t.Errorf("%s %s %s, base %s", r, l.name, k.String(), b.String())
			}
		}
	}
	if b, k := mustJSON(t, bc.Env), mustJSON(t, kc.Env); !bytes.Equal(b, k) {
		t.Errorf("env %s, base %s", k, b)
	}
	if b, k := effectiveSecurity(bw[0].spec, bc), effectiveSecurity(kw[0].spec, kc); b != k {
		t.Errorf("effective security context %+v, base %+v", k, b)
	}
}

type security struct {
	runAsNonRoot, readOnlyRoot, escalation, privileged bool
	user, group                                        int64
	drop, add, seccomp                                 string
}

func effectiveSecurity(spec *corev1.PodSpec, c *corev1.Container) security {
	psc := ptrOr(spec.SecurityContext, corev1.PodSecurityContext{})
	sc := ptrOr(c.SecurityContext, corev1.SecurityContext{})
	caps := ptrOr(sc.Capabilities, corev1.Capabilities{})
	seccomp := sc.SeccompProfile
	if seccomp == nil {
		seccomp = psc.SeccompProfile
	}
	return security{
		runAsNonRoot: ptrOr(sc.RunAsNonRoot, ptrOr(psc.RunAsNonRoot, false)),
		readOnlyRoot: ptrOr(sc.ReadOnlyRootFilesystem, false),
		escalation:   ptrOr(sc.AllowPrivilegeEscalation, true),
		privileged:   ptrOr(sc.Privileged, false),
		user:         ptrOr(sc.RunAsUser, ptrOr(psc.RunAsUser, -1)),
		group:        ptrOr(sc.RunAsGroup, ptrOr(psc.RunAsGroup, -1)),
		drop:         fmt.Sprint(caps.Drop), add: fmt.Sprint(caps.Add),
		seccomp: string(ptrOr(seccomp, corev1.SeccompProfile{}).Type),
	}
}

// TestKServeCRDCopies holds the CRD copies to the SHA-256 sums their README
// records, so that an edit to them is deliberate.
func TestKServeCRDCopies(t *testing.T) {
	readme, err := os.ReadFile(kserveCRDDir + "/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range kserveCRDFiles {
		data, err := os.ReadFile(kserveCRDDir + "/" + f)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if line := hex.EncodeToString(sum[:]) + "  " + f; !bytes.Contains(readme, []byte(line)) {
			t.Errorf("%s/README.md lacks the line %q: refresh the copy or the README as it says", kserveCRDDir, line)
		}
	}
}

// renderKServe renders deploy/kserve and returns its objects as JSON maps,
// by kind.
func renderKServe(t *testing.T) map[string]map[string]any {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), "kserve")
	if err != nil {
		t.Fatal(err)
	}
	objs := map[string]map[string]any{}
	for _, r := range m.Resources() {
		o, err := r.Map()
		if err != nil {
			t.Fatal(err)
		}
		objs[r.GetKind()] = o
	}
	for _, k := range []string{"ServingRuntime", "InferenceService"} {
		if objs[k] == nil {
			t.Fatalf("kserve renders no %s", k)
		}
	}
	return objs
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// dig walks o by keys (string) and indices (int) to a JSON object.
func dig(o any, keys ...any) map[string]any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			o = o.(map[string]any)[k]
		case int:
			o = o.([]any)[k]
		}
	}
	return o.(map[string]any)
}
