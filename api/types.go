package api

import (
	"fmt"
	"net/http"
)

// Media types of request and response bodies.
const (
	MediaPNG     = "image/png"
	MediaProblem = "application/problem+json"
	MediaLatent  = "application/octet-stream"
	MediaJSON    = "application/json"
)

// Images is the JSON answer carrying pictures: base64 (standard encoding,
// padded) PNG files, in the order of the request's images or latent rows.
type Images struct {
	Model       string   `json:"model"`
	Fingerprint string   `json:"fingerprint"`
	Images      []string `json:"images"`
}

// ModelList is the answer of GET /v1/models.
type ModelList struct {
	Models []ModelInfo `json:"models"`
	// Default names the model that answers requests without ?model=.
	Default string `json:"default,omitempty"`
}

// ModelInfo describes one served model, enough to reproduce and judge it.
type ModelInfo struct {
	Name         string `json:"name"`
	Architecture string `json:"architecture"`
	Description  string `json:"description,omitempty"`
	// Fingerprint identifies the weights, as in Latent (16 lowercase hex digits).
	Fingerprint string `json:"fingerprint"`
	// Halves lists what this server can run: "encoder", "decoder", "full".
	Halves      []string     `json:"halves"`
	InputShape  []int        `json:"input_shape"`  // [1, 28, 28]
	LatentShape []int        `json:"latent_shape"` // [32, 7, 7]
	Training    *Training    `json:"training,omitempty"`
	Metrics     *Metrics     `json:"metrics,omitempty"`
	Tensors     []TensorInfo `json:"tensors,omitempty"`
}

// Training records how the weights were made.
type Training struct {
	Epochs       int     `json:"epochs"`
	BatchSize    int     `json:"batch_size"`
	LearningRate float64 `json:"learning_rate"`
	// NoiseFactor is the σ of the Gaussian noise added to inputs of a
	// denoising model, 0 for a plain autoencoder.
	NoiseFactor float64 `json:"noise_factor"`
	Seed        int64   `json:"seed"`
	// Data names the training set, e.g. "MNIST train (60000)".
	Data string `json:"data"`
}

// Metrics are measured on held-out data (MNIST t10k).
type Metrics struct {
	BCE    float64 `json:"bce"`     // mean binary cross-entropy per pixel
	PSNRdB float64 `json:"psnr_db"` // reconstruction PSNR, dB
	// NoisyPSNRdB is the PSNR of denoising noisy inputs; denoising models only.
	NoisyPSNRdB *float64 `json:"noisy_psnr_db,omitempty"`
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
	if p.Index != nil {
		s += fmt.Sprintf(" (image %d)", *p.Index)
	}
	return s
}
