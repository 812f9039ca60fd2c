package model

// The variational autoencoders: Kingma and Welling's MNIST network, whose
// encoder ends in a Gaussian code (Arch.Gaussian). One dense head computes
// the mean and the log-variance side by side, [μ ‖ log σ²], which is the
// same as the two heads of the usual PyTorch example, in one product.

// vae is the dense VAE 784 → 400 (ReLU) → [μ ‖ log σ²] of latent numbers
// each; the decoder latent → 400 (ReLU) → 784 (sigmoid).
func vae(name, summary string, latent int) *Arch {
	return register(&Arch{
		Name:     name,
		Summary:  summary,
		Task:     TaskAutoencoder,
		Gaussian: true,
		stages: []Stage{
			{Half: Encoder, In: image, Layers: []Layer{
				Dense("encoder.fc1", ImageLen, 400, ActReLU),
				Dense("encoder.fc2", 400, 2*latent, ActNone), // [μ ‖ log σ²]
			}},
			{Half: Decoder, In: []int{latent}, Layers: []Layer{
				Dense("decoder.fc1", latent, 400, ActReLU),
				Dense("decoder.fc2", 400, ImageLen, ActSigmoid),
			}},
		},
	})
}

// ArchVAE is the classic variational autoencoder, with a 20-number latent.
var ArchVAE = vae("vae/v1",
	"variational autoencoder: 784 → 400 (ReLU) → Gaussian code of 20 (mean and log-variance) → 400 (ReLU) → 784 (sigmoid)", 20)

// ArchVAE2 is its twin with a 2-number latent, small enough to draw: the
// decoder's images over a grid of the plane are the learnt manifold.
var ArchVAE2 = vae("vae-2d/v1",
	"variational autoencoder with a 2-number latent: 784 → 400 (ReLU) → Gaussian code of 2 → 400 (ReLU) → 784 (sigmoid)", 2)
