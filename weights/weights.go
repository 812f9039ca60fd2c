// Package weights embeds the trained models shipped with aeserve, so a
// fresh clone serves without training. Each model is a directory holding
// manifest.json, encoder.aew and decoder.aew (format: see internal/model),
// plus its loss curve and sample grid for people to look at.
package weights

import "embed"

// FS holds one directory per model. The pattern is "*" so the package still
// builds when no model is present; the server then trains on startup.
//
//go:embed *
var FS embed.FS
