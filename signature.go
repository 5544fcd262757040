package stripewebhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"sync"
	"time"
)

// SignatureHeader is the HTTP header that carries Stripe's signature.
const SignatureHeader = "Stripe-Signature"

// DefaultTolerance is how far the signed timestamp may be from the current
// time, in either direction, before a delivery is rejected as a replay.
const DefaultTolerance = 5 * time.Minute

// MaxHeaderLen caps the length of the Stripe-Signature header. Stripe sends a
// few hundred bytes even while a secret is being rolled.
const MaxHeaderLen = 4096

// Errors returned by [Verifier.Verify]. They never contain a secret or a
// signature. Match them with [errors.Is].
var (
	// ErrNotSigned means the Stripe-Signature header is missing or empty.
	ErrNotSigned = errors.New("stripewebhook: no Stripe-Signature header")
	// ErrInvalidHeader means the header is not of the form "t=<unix>,v1=<hex>,...".
	ErrInvalidHeader = errors.New("stripewebhook: malformed Stripe-Signature header")
	// ErrNoValidSignature means no v1 signature matched any configured secret.
	ErrNoValidSignature = errors.New("stripewebhook: no valid signature for any configured secret " +
		"(is the body the raw request bytes, unparsed and unmodified, and is the secret the endpoint's whsec_…?)")
	// ErrTimestampOutsideTolerance means the signature is authentic but its
	// timestamp is too old (a replay) or too far in the future. The error
	// returned is a [*TimestampError] that wraps it.
	ErrTimestampOutsideTolerance = errors.New("stripewebhook: signature timestamp outside tolerance")
)

// Configuration errors returned by [NewVerifier] and [NewHandler].
var (
	// ErrNoSecret means no secret, or an empty one, was configured.
	ErrNoSecret = errors.New("stripewebhook: no endpoint secret configured (run `stripe listen` or see the endpoint in the Dashboard for its whsec_… secret)")
	// ErrInvalidSecret means a configured secret cannot be an endpoint
	// signing secret; the error returned is a [*SecretError] that says why.
	ErrInvalidSecret = errors.New("stripewebhook: invalid endpoint secret")
	// ErrInvalidTolerance means the tolerance is zero or negative. A zero
	// tolerance never disables the timestamp check.
	ErrInvalidTolerance = errors.New("stripewebhook: tolerance must be positive")
)

// TimestampError reports an authentic signature whose timestamp is outside
// the tolerance. It wraps [ErrTimestampOutsideTolerance].
type TimestampError struct {
	Timestamp time.Time     // the t= of the header
	Now       time.Time     // the verifier's clock when checked
	Tolerance time.Duration // the configured tolerance
}

func (e *TimestampError) Error() string {
	d := e.Now.Sub(e.Timestamp)
	if d > 0 {
		return fmt.Sprintf("stripewebhook: signature timestamp is %s old, older than the tolerance of %s (a replay, or a clock out of sync)", d.Round(time.Second), e.Tolerance)
	}
	return fmt.Sprintf("stripewebhook: signature timestamp is %s in the future, beyond the tolerance of %s (check the server clock)", (-d).Round(time.Second), e.Tolerance)
}

// Unwrap returns [ErrTimestampOutsideTolerance].
func (e *TimestampError) Unwrap() error { return ErrTimestampOutsideTolerance }

// Verification is what a successful [Verifier.Verify] learned.
type Verification struct {
	Secret    string    // the Name of the secret that matched
	Timestamp time.Time // the signed timestamp
}

// Verifier checks Stripe-Signature headers against one or more secrets. It is
// safe for concurrent use. Build it with [NewVerifier].
type Verifier struct {
	secrets   []verifierSecret
	tolerance time.Duration
	now       func() time.Time
}

type verifierSecret struct {
	name string
	// macs pools keyed HMAC states with their scratch space: hmac.New
	// rehashes the key every time, Reset restores the keyed state for free.
	macs sync.Pool // of *macState
}

type macState struct {
	mac    hash.Hash
	prefix [24]byte // "<t>."
	sum    [sha256.Size]byte
}

// NewVerifier returns a Verifier for the given secrets. Of the options, only
// [WithTolerance] and [WithClock] apply to a Verifier.
func NewVerifier(secrets []Secret, opts ...VerifierOption) (*Verifier, error) {
	c := verifierConfig{tolerance: DefaultTolerance, now: time.Now}
	for _, o := range opts {
		o.applyVerifier(&c)
	}
	return c.verifier(secrets)
}

func (c *verifierConfig) verifier(secrets []Secret) (*Verifier, error) {
	if c.tolerance <= 0 {
		return nil, ErrInvalidTolerance
	}
	if len(secrets) == 0 {
		return nil, ErrNoSecret
	}
	v := &Verifier{
		secrets:   make([]verifierSecret, len(secrets)),
		tolerance: c.tolerance,
		now:       c.now,
	}
	for i, s := range secrets {
		if err := s.check(); err != nil {
			return nil, err
		}
		key := s.key()
		v.secrets[i].name = s.Name
		v.secrets[i].macs.New = func() any { return &macState{mac: hmac.New(sha256.New, key)} }
	}
	return v, nil
}

// Verify checks that header carries a v1 signature of payload made with one
// of the secrets, and that its timestamp is within the tolerance of now.
// payload must be the raw request body, byte for byte. The signature is
// checked before the time, so an authentic but stale delivery reports a
// [*TimestampError] rather than [ErrNoValidSignature].
func (v *Verifier) Verify(payload []byte, header string) (Verification, error) {
	var h parsedHeader
	if err := h.parse(header); err != nil {
		return Verification{}, err
	}
	name, ok := v.match(&h, payload)
	if !ok {
		return Verification{}, ErrNoValidSignature
	}
	ts := time.Unix(h.t, 0)
	now := v.now()
	if d := now.Sub(ts); d > v.tolerance || d < -v.tolerance {
		return Verification{}, &TimestampError{Timestamp: ts, Now: now, Tolerance: v.tolerance}
	}
	return Verification{Secret: name, Timestamp: ts}, nil
}

// checkHeader is what Verify checks of the header alone: its form and its
// timestamp, so that a delivery that cannot pass is refused before its
// body is read. It returns Verify's error for such a header.
func (v *Verifier) checkHeader(header string) error {
	var h parsedHeader
	if err := h.parse(header); err != nil {
		return err
	}
	ts := time.Unix(h.t, 0)
	now := v.now()
	if d := now.Sub(ts); d > v.tolerance || d < -v.tolerance {
		return &TimestampError{Timestamp: ts, Now: now, Tolerance: v.tolerance}
	}
	return nil
}

// match computes the expected signature once per secret and compares it in
// constant time with every v1 signature of the header.
func (v *Verifier) match(h *parsedHeader, payload []byte) (string, bool) {
	for i := range v.secrets {
		s := &v.secrets[i]
		st := s.macs.Get().(*macState)
		prefix := append(strconv.AppendInt(st.prefix[:0], h.t, 10), '.')
		st.mac.Reset()
		st.mac.Write(prefix)
		st.mac.Write(payload)
		expected := st.mac.Sum(st.sum[:0])
		found := false
		for j := range h.n {
			if hmac.Equal(expected, h.sig(j)) {
				found = true
			}
		}
		s.macs.Put(st)
		if found {
			return s.name, true
		}
	}
	return "", false
}

// parsedHeader is the Stripe-Signature header, parsed once per request. It
// keeps the first few v1 signatures inline so parsing does not allocate.
type parsedHeader struct {
	t      int64
	n      int
	inline [4][sha256.Size]byte
	more   [][sha256.Size]byte
}

func (h *parsedHeader) sig(i int) []byte {
	if i < len(h.inline) {
		return h.inline[i][:]
	}
	return h.more[i-len(h.inline)][:]
}

// parse reads "t=<digits>,v1=<64 hex>,v0=…". Items are split on ',', spaces
// and tabs around them trimmed, empty items skipped, each item split at its
// first '='. There must be exactly one t, of plain decimal digits. v1 values
// that are not 64 hex characters never match; v0 and unknown keys are ignored.
func (h *parsedHeader) parse(header string) error {
	if header == "" {
		return ErrNotSigned
	}
	if len(header) > MaxHeaderLen {
		return ErrInvalidHeader
	}
	seenT := false
	for rest := header; rest != ""; {
		var item string
		if i := indexByte(rest, ','); i >= 0 {
			item, rest = rest[:i], rest[i+1:]
		} else {
			item, rest = rest, ""
		}
		item = trimSpace(item)
		if item == "" {
			continue
		}
		eq := indexByte(item, '=')
		if eq < 0 {
			return ErrInvalidHeader
		}
		key, val := item[:eq], item[eq+1:]
		switch key {
		case "t":
			if seenT {
				return ErrInvalidHeader
			}
			t, ok := parseDigits(val)
			if !ok {
				return ErrInvalidHeader
			}
			h.t, seenT = t, true
		case "v1":
			var sig [sha256.Size]byte
			if !decodeHex(sig[:], val) {
				continue
			}
			if h.n < len(h.inline) {
				h.inline[h.n] = sig
			} else {
				h.more = append(h.more, sig)
			}
			h.n++
		}
	}
	if !seenT {
		return ErrInvalidHeader
	}
	if h.n == 0 {
		return ErrNoValidSignature
	}
	return nil
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func trimSpace(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// parseDigits accepts 1 to 18 ASCII digits: no sign, no spaces, no overflow.
func parseDigits(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// decodeHex decodes exactly len(dst)*2 hex characters (either case).
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := fromHex(s[2*i])
		lo, ok2 := fromHex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
