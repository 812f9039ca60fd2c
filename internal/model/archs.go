package model

// The architectures this build knows, by the name manifests give them. A
// new one is a layer list here; everything else (graphs for training and
// for the fast inference path, shapes, the weights' tensor lists, the
// server's routes) follows from it.

// image is MNIST's per-item input shape.
var image = []int{1, ImageSide, ImageSide}

// ArchConv is the convolutional autoencoder of the classic MNIST tutorials:
//
//	encoder Conv(1→32,3×3,same) ReLU MaxPool2 Conv(32→32,3×3,same) ReLU MaxPool2 → 32×7×7
//	decoder ConvT(32→32,3×3,s2,same) ReLU ConvT(32→32,3×3,s2,same) ReLU Conv(32→1,3×3,same) sigmoid
var ArchConv = register(&Arch{
	Name:    "conv-ae/v1",
	Summary: "convolutional autoencoder: two 3×3 convolutions with 2×2 max pooling to a 32×7×7 code, two stride-2 transposed convolutions and a 3×3 convolution back",
	Task:    TaskAutoencoder,
	stages: []Stage{
		{Half: Encoder, In: image, Layers: []Layer{
			Conv("encoder.conv1", 1, 32, 28, 28, ActReLU, true),
			Conv("encoder.conv2", 32, 32, 14, 14, ActReLU, true),
		}},
		{Half: Decoder, In: []int{32, 7, 7}, Layers: []Layer{
			ConvT("decoder.deconv1", 32, 32, 7, 7, ActReLU),
			ConvT("decoder.deconv2", 32, 32, 14, 14, ActReLU),
			Conv("decoder.conv3", 32, 1, 28, 28, ActSigmoid, false),
		}},
	},
})

// ArchDense is the smallest undercomplete autoencoder: 784 → 32 (ReLU) → 784
// (sigmoid).
var ArchDense = register(&Arch{
	Name:    "dense-ae/v1",
	Summary: "undercomplete dense autoencoder: 784 → 32 (ReLU) → 784 (sigmoid)",
	Task:    TaskAutoencoder,
	stages: []Stage{
		{Half: Encoder, In: image, Layers: []Layer{Dense("encoder.fc1", ImageLen, 32, ActReLU)}},
		{Half: Decoder, In: []int{32}, Layers: []Layer{Dense("decoder.fc1", 32, ImageLen, ActSigmoid)}},
	},
})

// ArchDeep is the deep autoencoder: 784 → 128 → 64 → 32 → 64 → 128 → 784,
// ReLU throughout, sigmoid out.
var ArchDeep = register(&Arch{
	Name:    "deep-ae/v1",
	Summary: "deep dense autoencoder: 784 → 128 → 64 → 32 → 64 → 128 → 784, ReLU, sigmoid out",
	Task:    TaskAutoencoder,
	stages: []Stage{
		{Half: Encoder, In: image, Layers: []Layer{
			Dense("encoder.fc1", ImageLen, 128, ActReLU),
			Dense("encoder.fc2", 128, 64, ActReLU),
			Dense("encoder.fc3", 64, 32, ActReLU),
		}},
		{Half: Decoder, In: []int{32}, Layers: []Layer{
			Dense("decoder.fc1", 32, 64, ActReLU),
			Dense("decoder.fc2", 64, 128, ActReLU),
			Dense("decoder.fc3", 128, ImageLen, ActSigmoid),
		}},
	},
})

// ArchSigmoid128 is one sigmoid layer of 128 units and back: the sparse
// autoencoder's network (its sparsity comes from the objective).
var ArchSigmoid128 = register(&Arch{
	Name:    "dense-sigmoid-ae/128",
	Summary: "dense autoencoder with a sigmoid code: 784 → 128 (sigmoid) → 784 (sigmoid)",
	Task:    TaskAutoencoder,
	stages: []Stage{
		{Half: Encoder, In: image, Layers: []Layer{Dense("encoder.fc1", ImageLen, 128, ActSigmoid)}},
		{Half: Decoder, In: []int{128}, Layers: []Layer{Dense("decoder.fc1", 128, ImageLen, ActSigmoid)}},
	},
})

// ArchSigmoid64 is one sigmoid layer of 64 units and back: the contractive
// autoencoder's network (its penalty's closed form needs a sigmoid code).
var ArchSigmoid64 = register(&Arch{
	Name:    "dense-sigmoid-ae/64",
	Summary: "dense autoencoder with a sigmoid code: 784 → 64 (sigmoid) → 784 (sigmoid)",
	Task:    TaskAutoencoder,
	stages: []Stage{
		{Half: Encoder, In: image, Layers: []Layer{Dense("encoder.fc1", ImageLen, 64, ActSigmoid)}},
		{Half: Decoder, In: []int{64}, Layers: []Layer{Dense("decoder.fc1", 64, ImageLen, ActSigmoid)}},
	},
})

// ArchCompact is a convolutional autoencoder with a code of 32 numbers, for
// sending digits in a few dozen bytes; the code is linear (no activation),
// which suits quantising it:
//
//	encoder Conv(1→16,3×3,same) ReLU MaxPool2 Conv(16→32,3×3,same) ReLU MaxPool2 Dense(1568→32)
//	decoder Dense(32→1568) ReLU ConvT(32→32,3×3,s2,same) ReLU ConvT(32→16,3×3,s2,same) ReLU Conv(16→1,3×3,same) sigmoid
var ArchCompact = register(&Arch{
	Name:    "compact-ae/v1",
	Summary: "compact convolutional autoencoder: two 3×3 convolutions with 2×2 max pooling and a dense layer to a linear 32-number code, mirrored back",
	Task:    TaskAutoencoder,
	Int8:    true,
	stages: []Stage{
		{Half: Encoder, In: image, Layers: []Layer{
			Conv("encoder.conv1", 1, 16, 28, 28, ActReLU, true),
			Conv("encoder.conv2", 16, 32, 14, 14, ActReLU, true),
			Dense("encoder.fc", 32*7*7, 32, ActNone),
		}},
		{Half: Decoder, In: []int{32}, Layers: []Layer{
			Dense("decoder.fc", 32, 32*7*7, ActReLU),
			ConvT("decoder.deconv1", 32, 32, 7, 7, ActReLU),
			ConvT("decoder.deconv2", 32, 16, 14, 14, ActReLU),
			Conv("decoder.conv3", 16, 1, 28, 28, ActSigmoid, false),
		}},
	},
})

// ArchCNN is a small CNN classifier:
//
//	Conv(1→32,3×3,same) ReLU MaxPool2 Conv(32→64,3×3,same) ReLU MaxPool2 Dense(3136→128) ReLU Dense(128→10) softmax
var ArchCNN = register(&Arch{
	Name:    "cnn-classifier/v1",
	Summary: "CNN classifier: two 3×3 convolutions with 2×2 max pooling, a dense layer of 128 and a softmax over the 10 digits",
	Task:    TaskClassifier,
	stages: []Stage{
		{Half: Classifier, In: image, Layers: []Layer{
			Conv("classifier.conv1", 1, 32, 28, 28, ActReLU, true),
			Conv("classifier.conv2", 32, 64, 14, 14, ActReLU, true),
			Dense("classifier.fc1", 64*7*7, 128, ActReLU),
			Dense("classifier.fc2", 128, 10, ActSoftmax),
		}},
	},
})
