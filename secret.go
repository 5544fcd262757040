package stripewebhook

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// Secret is an endpoint signing secret (whsec_…) with a name that says which
// one it is ("current", "previous", "connect"). Build it with [NewSecret] or
// [Secrets].
//
// Only the name can be printed: the value sits behind an unexported func,
// which fmt prints as an address, so fmt (every verb, and inside the unexported fields of a caller's struct),
// slog, encoding/json, encoding/xml, gob and YAML encoders see the name and
// never the value.
type Secret struct {
	Name string
	v    func() string
}

// NewSecret returns the secret value named name. Surrounding whitespace (a
// newline from a .env file) is trimmed; anything else that cannot be a
// Stripe endpoint secret is reported by [NewVerifier] and [NewHandler].
func NewSecret(name, value string) Secret {
	value = strings.TrimSpace(value)
	return Secret{Name: name, v: func() string { return value }}
}

// Secrets names each value by its position ("#1", "#2", …). Each value may
// itself be a comma-separated list, as STRIPE_WEBHOOK_SECRET is while a
// secret is being rolled, so that
//
//	stripewebhook.Secrets(os.Getenv("STRIPE_WEBHOOK_SECRET"))
//
// configures every secret of "whsec_new,whsec_old". Whitespace around each
// secret is trimmed and empty items are skipped.
func Secrets(values ...string) []Secret {
	var out []Secret
	for _, list := range values {
		for _, v := range strings.Split(list, ",") {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, NewSecret("#"+strconv.Itoa(len(out)+1), v))
			}
		}
	}
	return out
}

func (s Secret) String() string   { return "Secret(" + s.Name + ")" }
func (s Secret) GoString() string { return s.String() }

// Format prints the name for every verb, so that %d, %t or %x cannot reach
// the value either.
func (s Secret) Format(f fmt.State, _ rune) { f.Write([]byte(s.String())) }

// LogValue implements [slog.LogValuer]: only the name is logged.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText encodes only the name (JSON, XML and text encoders use it).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s Secret) key() []byte { return []byte(s.v()) }

// SecretError says why a configured secret cannot be an endpoint signing
// secret. It names the secret, never shows its value, and wraps
// [ErrInvalidSecret] or [ErrNoSecret].
type SecretError struct {
	Name   string // the secret's name
	Reason string
	err    error
}

func (e *SecretError) Error() string {
	return fmt.Sprintf("%v: secret %q %s", e.err, e.Name, e.Reason)
}

func (e *SecretError) Unwrap() error { return e.err }

// check reports what is wrong with s, without its value.
func (s Secret) check() error {
	bad := func(sentinel error, reason string) error {
		return &SecretError{Name: s.Name, Reason: reason, err: sentinel}
	}
	var v string
	if s.v != nil {
		v = s.v()
	}
	if v == "" {
		return bad(ErrNoSecret, "is empty (an unset environment variable?)")
	}
	switch {
	case v[0] == '"' || v[0] == '\'' || v[len(v)-1] == '"' || v[len(v)-1] == '\'':
		return bad(ErrInvalidSecret, "is wrapped in quotes (left by a .env file?)")
	case strings.HasPrefix(v, "sk_") || strings.HasPrefix(v, "rk_"):
		return bad(ErrInvalidSecret, "is a secret API key (sk_…/rk_…), not the endpoint's signing secret (whsec_…)")
	case strings.HasPrefix(v, "pk_"):
		return bad(ErrInvalidSecret, "is a publishable key (pk_…), not the endpoint's signing secret (whsec_…)")
	case !strings.HasPrefix(v, "whsec_"):
		return bad(ErrInvalidSecret, "does not start with whsec_ (the endpoint's signing secret does)")
	case len(v) == len("whsec_"):
		return bad(ErrInvalidSecret, "is only the whsec_ prefix")
	}
	for i := len("whsec_"); i < len(v); i++ {
		if !isSecretByte(v[i]) {
			return bad(ErrInvalidSecret, "contains characters a signing secret never has (a placeholder, or whitespace inside)")
		}
	}
	return nil
}

func isSecretByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '-' || c == '+' || c == '/' || c == '='
}

var _ error = (*SecretError)(nil)
