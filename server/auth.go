package server

import (
	"crypto"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// authLeeway is the clock skew tolerated on exp and nbf.
const authLeeway = 30 * time.Second

// auth verifies connect tokens. A nil *auth means authentication is off.
type auth struct {
	key     any      // []byte for HS256, crypto.PublicKey for RS256/ES256; immutable
	methods []string // accepted algorithms; immutable
}

// newAuth builds the verifier from a shared secret (HS256) or a PEM public
// key (RS256 or ES256). Both empty means off (nil, nil).
func newAuth(secret string, publicKeyPEM []byte) (*auth, error) {
	switch {
	case secret != "" && len(publicKeyPEM) > 0:
		return nil, fmt.Errorf("%w: set either a JWT secret or a JWT public key, not both", ErrBadConfig)
	case secret != "":
		return &auth{key: []byte(secret), methods: []string{"HS256"}}, nil
	case len(publicKeyPEM) > 0:
		if k, err := jwt.ParseRSAPublicKeyFromPEM(publicKeyPEM); err == nil {
			return &auth{key: crypto.PublicKey(k), methods: []string{"RS256"}}, nil
		}
		k, err := jwt.ParseECPublicKeyFromPEM(publicKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("%w: JWT public key is neither an RSA nor an EC PEM key: %w", ErrBadConfig, err)
		}
		return &auth{key: crypto.PublicKey(k), methods: []string{"ES256"}}, nil
	}
	return nil, nil
}

// claims are the connect token's claims: sub is the user, topics what the
// connection may subscribe to (exact names, or prefixes written "news.*").
type claims struct {
	jwt.RegisteredClaims
	Topics []string `json:"topics"`
}

// Errors of token verification, mapped to 401 by Accept.
var (
	errNoToken  = errors.New("missing token")
	errBadToken = errors.New("invalid token")
)

// verify checks the token's signature, algorithm, exp and nbf.
func (a *auth) verify(token string) (*claims, error) {
	if token == "" {
		return nil, errNoToken
	}
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return a.key, nil },
		jwt.WithValidMethods(a.methods), jwt.WithLeeway(authLeeway), jwt.WithExpirationRequired())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadToken, err)
	}
	return &c, nil
}

// allows reports whether the claims grant topic.
func (c *claims) allows(topic string) bool {
	for _, t := range c.Topics {
		if p, ok := strings.CutSuffix(t, "*"); ok {
			if strings.HasPrefix(topic, p) {
				return true
			}
		} else if t == topic {
			return true
		}
	}
	return false
}

// bearer extracts the token from "Bearer <token>".
func bearer(header string) string {
	if len(header) > 7 && strings.EqualFold(header[:7], "bearer ") {
		return strings.TrimSpace(header[7:])
	}
	return ""
}
