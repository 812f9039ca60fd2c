package server

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/aeserve/aeserve/internal/model"
)

// Role is which part of the service a process runs. A sender deploys the
// encoder role and a receiver the decoder role; each loads only its own
// half's weights and serves only the routes that half answers, so the two
// scale (and are secured) on their own.
type Role string

const (
	RoleAll     Role = "all"     // every half and route (the default)
	RoleEncoder Role = "encoder" // the encoder half: /v1/encode
	RoleDecoder Role = "decoder" // the decoder half: /v1/decode, /v1/sample
)

// Roles lists every role, in the order flags document them.
var Roles = []Role{RoleAll, RoleEncoder, RoleDecoder}

// ParseRole accepts "all", "encoder" or "decoder".
func ParseRole(s string) (Role, error) {
	if r := Role(s); slices.Contains(Roles, r) {
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q (want all, encoder or decoder)", s)
}

// Halves are the stored stages a process of this role loads: nil, meaning
// every stage of every model, for RoleAll.
func (r Role) Halves() []model.Half {
	switch r {
	case RoleEncoder:
		return []model.Half{model.Encoder}
	case RoleDecoder:
		return []model.Half{model.Decoder}
	}
	return nil
}

// serves reports whether a route declared for roles is served by r.
func (r Role) serves(roles []Role) bool { return slices.Contains(roles, r) }

// notServedByRole is the 404 of a route that exists, but not in this
// process's role: the client is talking to the wrong deployment, which the
// detail says in terms an operator can act on.
func notServedByRole(role Role, method, pattern string, roles []Role) *Problem {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return problemf(http.StatusNotFound, kindNotServedByRole,
		"this server runs role %s, which does not serve %s %s (served by role %s)",
		role, method, pattern, strings.Join(names, " or "))
}
