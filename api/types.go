package api

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Media types of request and response bodies.
const (
	MediaPNG     = "image/png"
	MediaProblem = "application/problem+json"
	MediaLatent  = "application/octet-stream"
	MediaJSON    = "application/json"
)

// Classification is the JSON answer of /v1/classify for one image.
type Classification struct {
	Model       string `json:"model"`
	Fingerprint string `json:"fingerprint"`
	// Denoiser and DenoiserFingerprint name the autoencoder that cleaned the
	// input first (?denoise=true); empty otherwise.
	Denoiser            string `json:"denoiser,omitempty"`
	DenoiserFingerprint string `json:"denoiser_fingerprint,omitempty"`
	Result
}

// Classifications is the JSON answer of /v1/classify for several images,
// in request order.
type Classifications struct {
	Model               string   `json:"model"`
	Fingerprint         string   `json:"fingerprint"`
	Denoiser            string   `json:"denoiser,omitempty"`
	DenoiserFingerprint string   `json:"denoiser_fingerprint,omitempty"`
	Results             []Result `json:"results"`
}

// Result is one image's class: the most probable digit and every class's
// probability (they sum to 1).
type Result struct {
	Digit         int       `json:"digit"`
	Probabilities []float32 `json:"probabilities"`
}

// Images is the JSON answer carrying pictures: base64 (standard encoding,
// padded) PNG files, in the order of the request's images or latent rows.
type Images struct {
	Model       string   `json:"model"`
	Fingerprint string   `json:"fingerprint"`
	Images      []string `json:"images"`
	// Scores are each image's reconstruction error against its input, from
	// /v1/reconstruct and /v1/denoise (not /v1/decode, which has no input).
	Scores []Score `json:"scores,omitempty"`
}

// Score is one image's reconstruction error against its input, the
// autoencoder's anomaly score: per pixel in [0, 1], MSE the mean squared
// error and BCE the mean binary cross-entropy. A digit like the training
// digits scores low; compare with the model's Metrics.Scores to set a
// threshold.
type Score struct {
	MSE float64 `json:"mse"`
	BCE float64 `json:"bce"`
}

// Scores is the answer of /v1/score: one Score per image, in request order.
type Scores struct {
	Model       string  `json:"model"`
	Fingerprint string  `json:"fingerprint"`
	Scores      []Score `json:"scores"`
	// Inputs are the 28×28 images the model was given (base64 PNGs), with
	// ScoreOptions.IncludeInput.
	Inputs []string `json:"inputs,omitempty"`
}

// ScoreDistribution is how a model's scores are spread over clean test
// digits: a score above P99 is rarer than 1 in 100 such digits.
type ScoreDistribution struct {
	Images int         `json:"images"` // how many test digits
	MSE    Percentiles `json:"mse"`
	BCE    Percentiles `json:"bce"`
}

// Percentiles of a distribution, nearest rank.
type Percentiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99.9"`
	Max  float64 `json:"max"`
}

// SchemaVersion is the version of ModelList and ModelInfo: 2 added task,
// operations, stages, classes, code and trained_on_noise (and the
// classifier's metrics). Fields are only ever added within /v1.
const SchemaVersion = 2

// ModelList is the answer of GET /v1/models.
type ModelList struct {
	SchemaVersion int         `json:"schema_version"`
	Models        []ModelInfo `json:"models"`
	// Default names the model that answers requests without ?model=.
	Default string `json:"default,omitempty"`
}

// Tasks a model can have.
const (
	TaskAutoencoder = "autoencoder"
	TaskClassifier  = "classifier"
)

// Operations a model can answer, by route: /v1/encode, /v1/decode,
// /v1/reconstruct, /v1/denoise, /v1/score, /v1/classify, /v1/sample,
// /v1/interpolate.
const (
	OpEncode      = "encode"
	OpDecode      = "decode"
	OpReconstruct = "reconstruct"
	OpDenoise     = "denoise"
	OpScore       = "score"
	OpClassify    = "classify"
	// A model with a Gaussian code (a variational autoencoder) also draws
	// new digits and interpolates between two.
	OpSample      = "sample"
	OpInterpolate = "interpolate"
)

// ModelInfo describes one served model, enough to use, reproduce and judge it.
type ModelInfo struct {
	Name         string `json:"name"`
	Architecture string `json:"architecture"`
	Description  string `json:"description,omitempty"`
	// Task is "autoencoder" or "classifier".
	Task string `json:"task"`
	// Fingerprint identifies the weights, as in Latent (16 lowercase hex digits).
	Fingerprint string `json:"fingerprint"`
	// Precision is what this server computes the model at: "float32", or
	// "int8" where the operator opted in (aeserve --int8); the weights, and
	// so the fingerprint, are the same either way.
	Precision string `json:"precision"`
	// Halves lists the stages this server runs: "encoder", "decoder",
	// "full" (both in one graph) for an autoencoder, "classifier" for a
	// classifier. A server of role encoder or decoder runs only that half.
	Halves []string `json:"halves"`
	// Operations lists the routes this model answers on this server.
	Operations []string `json:"operations"`
	// Stages describes every stage of the architecture, served here or not.
	Stages      []StageInfo `json:"stages"`
	InputShape  []int       `json:"input_shape"`            // [1, 28, 28]
	LatentShape []int       `json:"latent_shape,omitempty"` // an autoencoder's code, e.g. [32, 7, 7]
	Classes     int         `json:"classes,omitempty"`      // a classifier's
	// Code is the size of one image's code, for an autoencoder.
	Code *CodeSize `json:"code,omitempty"`
	// Quantizations are the dtypes /v1/encode?quant= can send this model's
	// latents in, float32 first, with one image's binary latent size in each.
	Quantizations []Quantization `json:"quantizations,omitempty"`
	// TrainedOnNoise says whether the model learnt to remove noise: a
	// denoising autoencoder. Any autoencoder answers /v1/denoise; only these
	// are trained for it.
	TrainedOnNoise bool         `json:"trained_on_noise"`
	Training       *Training    `json:"training,omitempty"`
	Metrics        *Metrics     `json:"metrics,omitempty"`
	Tensors        []TensorInfo `json:"tensors,omitempty"`
}

// Quantization is one dtype a model's latents can be sent in.
type Quantization struct {
	DType       string `json:"dtype"`        // DTypeFloat32, DTypeFloat16 or DTypeInt8
	BinaryBytes int    `json:"binary_bytes"` // one image's binary latent, header included
}

// StageInfo is one stage's per-item input and output shapes.
type StageInfo struct {
	Name        string `json:"name"`
	InputShape  []int  `json:"input_shape"`
	OutputShape []int  `json:"output_shape"`
}

// CodeSize is how big one image's code is: numbers, and bytes in the
// binary latent format as float32 (header included).
type CodeSize struct {
	Numbers     int `json:"numbers"`
	BinaryBytes int `json:"binary_bytes"`
}

// Training records how the weights were made.
type Training struct {
	Epochs int `json:"epochs"`
	// SelectedEpoch is the epoch of lowest validation loss, whose weights
	// these are (0 if the model predates selection).
	SelectedEpoch int     `json:"selected_epoch,omitempty"`
	BatchSize     int     `json:"batch_size"`
	LearningRate  float64 `json:"learning_rate"`
	// Loss is the objective trained on, e.g. with a sparsity penalty.
	Loss string `json:"loss,omitempty"`
	// NoiseFactor is the σ of the Gaussian noise added to inputs of a
	// denoising model, 0 for a plain autoencoder.
	NoiseFactor float64 `json:"noise_factor"`
	Seed        int64   `json:"seed"`
	// Data names the training set, e.g. "MNIST train (60000)".
	Data string `json:"data"`
}

// Metrics are measured on held-out data (MNIST t10k).
type Metrics struct {
	BCE    float64 `json:"bce,omitempty"`     // mean binary cross-entropy per pixel
	PSNRdB float64 `json:"psnr_db,omitempty"` // reconstruction PSNR, dB
	// NoisyPSNRdB is the PSNR of denoising noisy inputs; denoising models only.
	NoisyPSNRdB *float64 `json:"noisy_psnr_db,omitempty"`
	// Accuracy is a classifier's share of correctly classified test digits.
	Accuracy *float64 `json:"accuracy,omitempty"`
	// Scores is an autoencoder's score distribution on the clean test digits.
	Scores *ScoreDistribution `json:"scores,omitempty"`
	// NegELBOnats is a variational autoencoder's negative ELBO in nats per
	// test digit (the KL to the prior plus the BCE summed over the pixels
	// at one sampled code), and KLnats its KL part.
	NegELBOnats *float64 `json:"neg_elbo_nats,omitempty"`
	KLnats      *float64 `json:"kl_nats,omitempty"`
	// Samples is a classifier's verdict on a variational autoencoder's
	// draws from its prior.
	Samples *SampleQuality `json:"samples,omitempty"`
}

// TensorInfo names one weight tensor and its shape.
type TensorInfo struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"`
}

// Problem is an RFC 9457 problem detail, the body of every error response.
// The client returns it as the error of any non-2xx answer.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance,omitempty"`
	// Index is the position of the failing image in a batch (from 0); a batch
	// fails as a whole, and this says which image to fix.
	Index *int `json:"index,omitempty"`
	// RequestID matches the server's logs.
	RequestID string `json:"request_id,omitempty"`
	// RetryAfter is how long the server asked the client to wait before
	// trying again (its Retry-After header, sent with a 503); 0 if it did
	// not say. It is not part of the document.
	RetryAfter time.Duration `json:"-"`
}

// Error reads like "409 Conflict: fingerprint … does not match (image 2)".
func (p *Problem) Error() string {
	status := http.StatusText(p.Status)
	if status == "" {
		status = p.Title
	}
	s := fmt.Sprintf("%d %s", p.Status, status)
	msg := p.Detail
	if msg == "" {
		msg = p.Title
	}
	if msg != "" && msg != status {
		s += ": " + msg
	}
	// The index, unless the detail already starts with it, as aeserve's do.
	if p.Index != nil && !strings.HasPrefix(msg, fmt.Sprintf("image %d:", *p.Index)) {
		s += fmt.Sprintf(" (image %d)", *p.Index)
	}
	return s
}
