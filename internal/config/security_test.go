package config

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

// The security switches: flags and variables, off by default, TLS files in
// pairs, origins checked as they are read.
func TestSecurityFlags(t *testing.T) {
	o, err := Parse(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c := o.Server; c.TLSCertFile != "" || c.TLSKeyFile != "" || c.AuthTokensFile != "" || c.CORSOrigins != nil {
		t.Errorf("defaults: %+v", c)
	}
	o, err = Parse([]string{"--tls-cert", "c.pem", "--cors-origins", "https://App.example, http://localhost:3000"}, env(map[string]string{
		"AESERVE_TLS_KEY":      "k.pem",
		"AESERVE_AUTH_TOKENS":  "/run/secrets/tokens",
		"AESERVE_CORS_ORIGINS": "https://ignored.example", // the flag wins
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := o.Server
	if c.TLSCertFile != "c.pem" || c.TLSKeyFile != "k.pem" || c.AuthTokensFile != "/run/secrets/tokens" ||
		!slices.Equal(c.CORSOrigins, []string{"https://app.example", "http://localhost:3000"}) {
		t.Errorf("options %+v", c)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"certificate without key", []string{"--tls-cert", "c.pem"}, nil, "--tls-key"},
		{"key without certificate", nil, map[string]string{"AESERVE_TLS_KEY": "k.pem"}, "--tls-cert"},
		{"origin null", []string{"--cors-origins", "null"}, nil, `"null"`},
		{"origin in env", nil, map[string]string{"AESERVE_CORS_ORIGINS": "app.example"}, "AESERVE_CORS_ORIGINS"},
		{"* and more", []string{"--cors-origins", "*,https://a.example"}, nil, "alone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.args, env(tc.env), io.Discard)
			if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want a usage error containing %q", err, tc.want)
			}
		})
	}
}
