package model

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"

	"gorgonia.org/tensor"

	"github.com/aeserve/aeserve/internal/quality"
)

// Weights on disk: one directory per model,
//
//	<name>/manifest.json   what the model is, how it was trained, how well it does
//	<name>/<stage>.aew     each stored stage's tensors: encoder.aew and
//	                       decoder.aew for an autoencoder, classifier.aew
//	                       for a classifier
//
// A .aew file ("aeserve weights", format version 1) is, little-endian:
//
//	"AEW1"                 magic and version
//	uint32 count           number of tensors
//	count × {
//	  uint16 len, name     UTF-8 tensor name
//	  uint8 ndim, ndim × uint32 dims
//	  prod(dims) × float32 values
//	}
//
// and nothing after. Each stage is its own file so a sender can ship only
// the encoder and a receiver only the decoder; the manifest records every
// file's SHA-256, so either side can compute the model's fingerprint.

// FormatVersion is the manifest "format" this code writes. It reads it and
// the one before (formatV1, whose stages were called "halves").
const FormatVersion = "aeserve-weights/2"

const formatV1 = "aeserve-weights/1"

// ReadFormats are the manifest formats this code reads, newest first.
func ReadFormats() []string { return []string{FormatVersion, formatV1} }

const fileMagic = "AEW1"

// Manifest describes one trained model. Format 2 added task, classes and
// stages (format 1's "halves"); the fields are documented in README,
// Weights format.
type Manifest struct {
	Format       string             `json:"format"`
	Name         string             `json:"name"`
	Architecture string             `json:"architecture"`
	Description  string             `json:"description"`
	Task         Task               `json:"task,omitempty"`
	InputShape   []int              `json:"input_shape"`
	LatentShape  []int              `json:"latent_shape,omitempty"`
	Classes      int                `json:"classes,omitempty"`
	Stages       map[Half]StageFile `json:"stages,omitempty"`
	// Halves is format 1's name for Stages, read and never written.
	Halves   map[Half]StageFile  `json:"halves,omitempty"`
	Training Training            `json:"training"`
	Metrics  Metrics             `json:"metrics"`
	Extra    map[string]any      `json:"extra,omitempty"`
	files    map[Half]fileDigest `json:"-"`
}

type fileDigest [sha256.Size]byte

// StageFile is one stored stage's weights file and its contents.
type StageFile struct {
	File    string       `json:"file"`
	SHA256  string       `json:"sha256"`
	Tensors []TensorSpec `json:"tensors"`
}

// Training records how the weights were made.
type Training struct {
	Data          string    `json:"data"`
	TrainImages   int       `json:"train_images"`
	ValImages     int       `json:"validation_images"`
	Epochs        int       `json:"epochs"`
	SelectedEpoch int       `json:"selected_epoch,omitempty"` // the epoch of lowest validation loss, whose weights these are
	BatchSize     int       `json:"batch_size"`
	LearningRate  float64   `json:"learning_rate"`
	Optimizer     string    `json:"optimizer"`
	Loss          string    `json:"loss"`
	NoiseFactor   float64   `json:"noise_factor"`
	Seed          int64     `json:"seed"`
	Threads       int       `json:"threads"`
	SGEMM         string    `json:"sgemm,omitempty"` // matrix-multiply backend of the build
	TrainLoss     []float64 `json:"train_loss"`
	ValLoss       []float64 `json:"validation_loss"`
	Seconds       float64   `json:"seconds"`
	ImagesPerSec  float64   `json:"images_per_second"`
	GoVersion     string    `json:"go_version,omitempty"`
	FinishedAtUTC string    `json:"finished_at,omitempty"`
}

// Metrics are measured on the 10,000 MNIST test images after training: an
// autoencoder's reconstruction (BCE, MSE, PSNR, SSIM; with NoiseFactor > 0,
// of noisy inputs, and NoisyPSNR the noisy inputs' own), a classifier's
// accuracy and cross-entropy.
type Metrics struct {
	TestImages  int     `json:"test_images"`
	BCE         float64 `json:"bce,omitempty"`
	MSE         float64 `json:"mse,omitempty"`
	PSNR        float64 `json:"psnr_db,omitempty"`
	SSIM        float64 `json:"ssim,omitempty"`
	NoisyPSNR   float64 `json:"noisy_psnr_db,omitempty"`
	NoiseFactor float64 `json:"noise_factor,omitempty"`
	NoiseSeed   int64   `json:"noise_seed,omitempty"`
	Accuracy    float64 `json:"accuracy,omitempty"`
	CE          float64 `json:"cross_entropy,omitempty"`
	// Scores is an autoencoder's reconstruction error on the clean test
	// digits, per image: its distribution, to set an anomaly threshold by.
	Scores *ScoreDistribution `json:"scores,omitempty"`
	// A Gaussian code's: the negative ELBO in nats per image (the KL to the
	// prior in closed form plus the BCE summed over the pixels at one z
	// sampled per image with ε from ELBOSeed), and its KL part.
	NegELBO  float64 `json:"neg_elbo_nats,omitempty"`
	KL       float64 `json:"kl_nats,omitempty"`
	ELBOSeed int64   `json:"elbo_seed,omitempty"`
	// Samples judges a Gaussian code's draws from the prior with a classifier.
	Samples *SampleQuality `json:"samples,omitempty"`
}

// SampleQuality is a classifier's verdict on a generative model's draws
// from its prior: how sure it is of each (the mean of the top probability)
// and which digits it sees (how many of each, 0 to 9).
type SampleQuality struct {
	Samples               int     `json:"samples"`
	Seed                  int64   `json:"seed"`
	Classifier            string  `json:"classifier"`
	ClassifierFingerprint string  `json:"classifier_fingerprint"`
	MeanTopProbability    float64 `json:"mean_top_probability"`
	Digits                []int   `json:"digits"`
}

// ScoreDistribution is the distribution of per-image reconstruction errors
// (quality.Scores) over Images clean test digits.
type ScoreDistribution struct {
	Images int                 `json:"images"`
	MSE    quality.Percentiles `json:"mse"`
	BCE    quality.Percentiles `json:"bce"`
}

// Fingerprint identifies a model's weights: the first 8 bytes of the
// SHA-256 over its stored stages' files' SHA-256 digests, in file order
// (for an autoencoder, sha256(encoder file) ‖ sha256(decoder file)).
type Fingerprint [8]byte

func (f Fingerprint) String() string { return hex.EncodeToString(f[:]) }

// Model is a loaded model: its manifest, architecture and the stages asked for.
type Model struct {
	Name        string
	Manifest    Manifest
	Arch        *Arch
	Fingerprint Fingerprint
	params      Params
	loaded      map[Half]bool
	q8          map[string]*q8Layer // int8 weights by layer name, when switched to int8 (int8.go)
}

// Has reports whether stage h can run (Full needs both stored halves).
func (m *Model) Has(h Half) bool {
	parts, err := m.Arch.parts(h)
	if err != nil {
		return false
	}
	for _, s := range parts {
		if !m.loaded[s.Half] {
			return false
		}
	}
	return true
}

// Loaded lists the stored stages loaded, in file order.
func (m *Model) Loaded() []Half {
	var hs []Half
	for _, h := range m.Arch.Stored() {
		if m.loaded[h] {
			hs = append(hs, h)
		}
	}
	return hs
}

// Params exposes the loaded tensors (read-only by convention).
func (m *Model) Params() Params { return m.params }

// ErrNotFound means no manifest exists for the model: the caller may train.
var ErrNotFound = errors.New("weights not found")

// LoadDir loads the named model from dir/<name>/.
func LoadDir(dir, name string, halves ...Half) (*Model, error) {
	return LoadFS(os.DirFS(dir), name, halves...)
}

// LoadFS loads the named model's manifest and those of the requested
// stored stages its architecture has (all by default), verifying every
// checksum, name and shape. Stages it lacks are not an error here (a
// classifier has no encoder): see Loaded. Files of stages not asked for
// are never read.
func LoadFS(fsys fs.FS, name string, halves ...Half) (*Model, error) {
	mpath := path.Join(name, "manifest.json")
	raw, err := fs.ReadFile(fsys, mpath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", mpath, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", mpath, err)
	}
	man, arch, err := parseManifest(raw, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", mpath, err)
	}
	if len(halves) == 0 {
		halves = arch.Stored()
	}
	m := &Model{Name: name, Manifest: *man, Arch: arch, params: Params{}, loaded: map[Half]bool{}}
	m.Fingerprint = fingerprintOf(man, arch)
	want := map[Half]bool{}
	for _, h := range halves {
		if parts, err := arch.parts(h); err == nil {
			for _, s := range parts {
				want[s.Half] = true
			}
		}
	}
	for _, h := range arch.Stored() {
		if !want[h] {
			continue
		}
		sf := man.Stages[h]
		fpath := path.Join(name, sf.File)
		data, err := fs.ReadFile(fsys, fpath)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fpath, err)
		}
		if sum := sha256.Sum256(data); sum != man.files[h] {
			return nil, fmt.Errorf("%s: checksum mismatch: file has sha256 %x, manifest says %s", fpath, sum, sf.SHA256)
		}
		tensors, err := decodeTensors(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fpath, err)
		}
		if err := checkTensors(tensors, arch, h); err != nil {
			return nil, fmt.Errorf("%s: %w", fpath, err)
		}
		for n, t := range tensors {
			m.params[n] = t
		}
		m.loaded[h] = true
	}
	return m, nil
}

func parseManifest(raw []byte, name string) (*Manifest, *Arch, error) {
	var man Manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&man); err != nil {
		return nil, nil, fmt.Errorf("malformed manifest: %w", err)
	}
	switch man.Format {
	case FormatVersion:
		if man.Halves != nil {
			return nil, nil, fmt.Errorf("format %s has stages, not halves", FormatVersion)
		}
	case formatV1:
		if man.Stages != nil {
			return nil, nil, fmt.Errorf("format %s has halves, not stages", formatV1)
		}
		man.Stages, man.Halves = man.Halves, nil
		man.Task = TaskAutoencoder
	default:
		return nil, nil, fmt.Errorf("format %q, this build reads %q and %q", man.Format, FormatVersion, formatV1)
	}
	if man.Name != name {
		return nil, nil, fmt.Errorf("manifest names model %q, expected %q", man.Name, name)
	}
	arch, err := Lookup(man.Architecture)
	if err != nil {
		return nil, nil, err
	}
	if man.Task != arch.Task {
		return nil, nil, fmt.Errorf("task %q, but architecture %s is a %s", man.Task, arch.Name, arch.Task)
	}
	man.files = map[Half]fileDigest{}
	for _, h := range arch.Stored() {
		sf, ok := man.Stages[h]
		if !ok {
			return nil, nil, fmt.Errorf("manifest lists no %s stage", h)
		}
		if sf.File == "" || path.Base(sf.File) != sf.File {
			return nil, nil, fmt.Errorf("%s stage: bad file name %q", h, sf.File)
		}
		sum, err := hex.DecodeString(sf.SHA256)
		if err != nil || len(sum) != sha256.Size {
			return nil, nil, fmt.Errorf("%s stage: bad sha256 %q", h, sf.SHA256)
		}
		man.files[h] = fileDigest(sum)
		specs, err := arch.Specs(h)
		if err != nil {
			return nil, nil, err
		}
		if !slices.EqualFunc(specs, sf.Tensors, func(a, b TensorSpec) bool { return a.Name == b.Name && slices.Equal(a.Shape, b.Shape) }) {
			return nil, nil, fmt.Errorf("%s stage: tensors %v do not match architecture %s (want %v)", h, sf.Tensors, arch.Name, specs)
		}
	}
	if len(man.Stages) != len(arch.Stored()) {
		return nil, nil, fmt.Errorf("manifest lists %d stages, architecture %s has %v", len(man.Stages), arch.Name, arch.Stored())
	}
	return &man, arch, nil
}

func fingerprintOf(man *Manifest, arch *Arch) Fingerprint {
	h := sha256.New()
	for _, s := range arch.Stored() {
		d := man.files[s]
		h.Write(d[:])
	}
	var f Fingerprint
	copy(f[:], h.Sum(nil))
	return f
}

func checkTensors(ts map[string]*tensor.Dense, arch *Arch, h Half) error {
	specs, err := arch.Specs(h)
	if err != nil {
		return err
	}
	if len(ts) != len(specs) {
		return fmt.Errorf("%d tensors, architecture %s %s wants %d", len(ts), arch.Name, h, len(specs))
	}
	for _, s := range specs {
		t, ok := ts[s.Name]
		if !ok {
			return fmt.Errorf("missing tensor %s", s.Name)
		}
		if !slices.Equal([]int(t.Shape()), s.Shape) {
			return fmt.Errorf("tensor %s has shape %v, want %v", s.Name, t.Shape(), s.Shape)
		}
		for i, v := range t.Data().([]float32) {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("tensor %s: value %d is %v", s.Name, i, v)
			}
		}
	}
	return nil
}

func decodeTensors(data []byte) (map[string]*tensor.Dense, error) {
	r := &reader{b: data}
	if string(r.next(4)) != fileMagic {
		return nil, errors.New("not an aeserve weights file (bad magic)")
	}
	count := r.u32()
	if r.err == nil && count > 1024 {
		return nil, fmt.Errorf("implausible tensor count %d", count)
	}
	out := map[string]*tensor.Dense{}
	for i := 0; i < int(count) && r.err == nil; i++ {
		name := string(r.next(int(r.u16())))
		ndim := int(r.u8())
		if r.err != nil {
			break // truncated: say so rather than "bad rank 0"
		}
		if ndim < 1 || ndim > 8 {
			return nil, fmt.Errorf("tensor %q: bad rank %d", name, ndim)
		}
		shape := make([]int, ndim)
		n := 1
		for d := range shape {
			shape[d] = int(r.u32())
			n *= shape[d]
			if r.err != nil {
				return nil, r.err
			}
			if shape[d] < 1 || n > len(data) {
				return nil, fmt.Errorf("tensor %q: bad shape", name)
			}
		}
		raw := r.next(4 * n)
		if r.err != nil {
			break
		}
		vals := make([]float32, n)
		for j := range vals {
			vals[j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("tensor %q appears twice", name)
		}
		out[name] = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(vals))
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%d trailing bytes after the last tensor", len(r.b))
	}
	return out, nil
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) next(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = errors.New("truncated file")
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() uint8 {
	if b := r.next(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if b := r.next(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.next(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func encodeTensors(p Params, specs []TensorSpec) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(fileMagic)
	buf.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(specs))))
	for _, s := range specs {
		t, ok := p[s.Name]
		if !ok {
			return nil, fmt.Errorf("missing tensor %s", s.Name)
		}
		if !slices.Equal([]int(t.Shape()), s.Shape) {
			return nil, fmt.Errorf("tensor %s has shape %v, want %v", s.Name, t.Shape(), s.Shape)
		}
		buf.Write(binary.LittleEndian.AppendUint16(nil, uint16(len(s.Name))))
		buf.WriteString(s.Name)
		buf.WriteByte(byte(len(s.Shape)))
		for _, d := range s.Shape {
			buf.Write(binary.LittleEndian.AppendUint32(nil, uint32(d)))
		}
		for _, v := range t.Data().([]float32) {
			buf.Write(binary.LittleEndian.AppendUint32(nil, math.Float32bits(v)))
		}
	}
	return buf.Bytes(), nil
}

// Save writes p as model man.Name under dir, filling in the manifest's
// format, task, shapes, file names, checksums and tensor lists from its
// architecture, and returns the loaded model. Files are written to
// temporaries and renamed, so a crash never leaves a manifest pointing at
// half-written weights.
func Save(dir string, man Manifest, p Params) (*Model, error) {
	arch, err := Lookup(man.Architecture)
	if err != nil {
		return nil, err
	}
	man.Format = FormatVersion
	man.Task = arch.Task
	man.InputShape = arch.InShape(arch.Stored()[0])
	man.LatentShape = arch.LatentShape()
	man.Classes = arch.Classes()
	man.Stages, man.Halves = map[Half]StageFile{}, nil
	mdir := filepath.Join(dir, man.Name)
	if err := os.MkdirAll(mdir, 0o755); err != nil {
		return nil, err
	}
	for _, h := range arch.Stored() {
		specs, err := arch.Specs(h)
		if err != nil {
			return nil, err
		}
		data, err := encodeTensors(p, specs)
		if err != nil {
			return nil, fmt.Errorf("save %s %s: %w", man.Name, h, err)
		}
		file := string(h) + ".aew"
		if err := writeAtomic(filepath.Join(mdir, file), data); err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		man.Stages[h] = StageFile{File: file, SHA256: hex.EncodeToString(sum[:]), Tensors: specs}
	}
	js, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(filepath.Join(mdir, "manifest.json"), append(js, '\n')); err != nil {
		return nil, err
	}
	return LoadDir(dir, man.Name)
}

func writeAtomic(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// CreateTemp makes 0600 files; weights are meant to be shipped and read.
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

// FromParams wraps freshly trained parameters as an in-memory model (no
// files), for evaluation before saving.
func FromParams(name string, man Manifest, p Params) (*Model, error) {
	arch, err := Lookup(man.Architecture)
	if err != nil {
		return nil, err
	}
	m := &Model{Name: name, Manifest: man, Arch: arch, params: p, loaded: map[Half]bool{}}
	for _, h := range arch.Stored() {
		m.loaded[h] = true
	}
	return m, nil
}

// UpdateManifest rewrites the manifest of model name in dir with change
// applied, in this build's format, leaving the weights files (and so the
// fingerprint) as they are; it refuses a manifest that does not load.
func UpdateManifest(dir, name string, change func(*Manifest)) error {
	m, err := LoadDir(dir, name)
	if err != nil {
		return err
	}
	man := m.Manifest
	change(&man)
	man.Format, man.Halves = FormatVersion, nil
	js, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(dir, name, "manifest.json"), append(js, '\n')); err != nil {
		return err
	}
	after, err := LoadDir(dir, name)
	if err != nil {
		return fmt.Errorf("the updated manifest does not load: %w", err)
	}
	if after.Fingerprint != m.Fingerprint {
		return fmt.Errorf("the updated manifest changed the fingerprint from %s to %s", m.Fingerprint, after.Fingerprint)
	}
	return nil
}
