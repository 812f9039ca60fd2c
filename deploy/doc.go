// Package deploy holds no code: its tests prove what aeserve ships to run
// it, the container image (Dockerfile) and the Kubernetes manifests
// (kustomize base and overlays), against the server in this repository. It
// is a module of its own so that kustomize's and Kubernetes' modules stay out
// of the server's.
package deploy
