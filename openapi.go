// Package aeserve holds what must be embedded from the repository root: an
// embed pattern cannot reach above its package's directory, so the OpenAPI
// document that cmd/server serves and the tests check lives here, beside
// its file.
package aeserve

import _ "embed"

// OpenAPI is openapi.yaml, the HTTP contract of the server.
//
//go:embed openapi.yaml
var OpenAPI []byte
