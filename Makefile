# Everyday targets. Each is a plain go command, spelled out in README too.
MNIST ?= ../shared/mnist
GOFLAGS_FAST ?= -tags openblas

.PHONY: run test race bench train eval lint ci image deploy-test

run:            ## serve the embedded models on :8080
	go run ./cmd/server

test:           ## README's test command
	go test ./...

race:
	go test -race ./internal/model ./internal/batch ./internal/server ./api

bench:          ## kernels and batcher benchmarks
	go test -run '^$$' -bench . -benchmem ./internal/model ./internal/batch

MODELS ?= conv denoise dense deep sparse sparse-unpenalised contractive contractive-unpenalised compact vae vae2 classifier

train:          ## REPLACES the shipped weights in weights/ by retraining every model (MODELS=...; needs libopenblas-dev)
	@echo "make train replaces the shipped weights in weights/ (MODELS=$(MODELS)); the next build serves what it trains"
	for m in $(MODELS); do GOMAXPROCS=1 go run $(GOFLAGS_FAST) ./cmd/train --model $$m --data $(MNIST) --out weights --force || exit 1; done

eval:           ## quality table and docs/report/ on the 10,000 MNIST test images
	go run ./cmd/eval --data $(MNIST)

lint:
	gofmt -l $$(git ls-files '*.go')
	go vet ./...
	staticcheck ./...
	cd deploy && go vet ./... && staticcheck ./...

image:          ## the container image (docker or podman)
	docker build --build-arg VERSION=$$(git describe --tags --always) --build-arg REVISION=$$(git rev-parse HEAD) -t aeserve .

deploy-test:    ## the Kubernetes manifests, and the image with podman (deploy/ is its own module)
	cd deploy && go vet ./... && go test ./...

ci:
	bash .ci/run
