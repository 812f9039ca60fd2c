package train

import "fmt"

// Models are the models this build knows how to train, by name.
var Models = []string{"conv", "denoise"}

// Preset returns the training configuration of a named model: the same
// architecture, trained to reconstruct clean digits (conv) or to recover
// them from clip(x + 0.5·N(0,1), 0, 1) (denoise).
func Preset(name string) (Config, error) {
	c := Config{Name: name, Seed: 1}
	switch name {
	case "conv":
		c.Description = "Convolutional autoencoder trained to reconstruct MNIST digits"
	case "denoise":
		c.Description = "Convolutional denoising autoencoder trained on clip(x + 0.5·N(0,1), 0, 1) against clean digits"
		c.Noise = 0.5
		c.Seed = 2
	default:
		return Config{}, fmt.Errorf("train: no preset for model %q (have %v)", name, Models)
	}
	c.Defaults()
	return c, nil
}
