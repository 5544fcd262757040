package stripewebhook

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The vectors Stripe's SDKs share.
var (
	vectorPayload = []byte("{\n  \"id\": \"evt_test_webhook\",\n  \"object\": \"event\"\n}")
	vectorSecret  = "whsec_test_secret"
	vectorRolled  = "whsec_test_secret_rolled_key"
	vectorSig     = "2672d138c9a412830f3bfe2ecc5bfb3277cf6f5b49d0119d77dd6cb64da1257e"
	vectorSigRoll = "b8673e94394f9950c036c0f4116d1ad346e682dbb57ece6b4c74e46113ab654a"
	vectorTime    = time.Unix(12345, 0)
)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func newTestVerifier(t *testing.T, now time.Time, secrets ...Secret) *Verifier {
	t.Helper()
	v, err := NewVerifier(secrets, WithClock(fixedClock(now)))
	require.NoError(t, err)
	return v
}

func TestVerifyVectors(t *testing.T) {
	one := []Secret{NewSecret("current", vectorSecret)}
	rolled := []Secret{NewSecret("new", vectorRolled)}
	both := []Secret{NewSecret("old", vectorSecret), NewSecret("new", vectorRolled)}
	tests := []struct {
		name    string
		secrets []Secret
		header  string
		want    error
		secret  string
	}{
		{"valid", one, "t=12345,v1=" + vectorSig, nil, "current"},
		{"rolled key", rolled, "t=12345,v1=" + vectorSigRoll, nil, "new"},
		{"two signatures, second secret", rolled, "t=12345,v1=" + vectorSig + ",v1=" + vectorSigRoll, nil, "new"},
		{"two secrets, first matches", both, "t=12345,v1=" + vectorSig, nil, "old"},
		{"two secrets, second matches", both, "t=12345,v1=" + vectorSigRoll, nil, "new"},
		{"extra bad v1 passes", one, "t=12345,v1=" + vectorSig + ",v1=" + strings.Repeat("0", 64), nil, "current"},
		{"bad v1 first passes", one, "t=12345,v1=" + strings.Repeat("0", 64) + ",v1=" + vectorSig, nil, "current"},
		{"v0 and unknown keys ignored", one, "t=12345,v0=" + vectorSig + ",v1=" + vectorSig + ",v9=zz,x=1", nil, "current"},
		{"spaces around items", one, " t=12345 , v1=" + vectorSig + " ,", nil, "current"},
		{"empty items", one, ",,t=12345,,v1=" + vectorSig + ",", nil, "current"},
		{"upper-case hex", one, "t=12345,v1=" + strings.ToUpper(vectorSig), nil, "current"},
		{"only v0", one, "t=12345,v0=" + vectorSig, ErrNoValidSignature, ""},
		{"wrong secret", []Secret{NewSecret("x", "whsec_other")}, "t=12345,v1=" + vectorSig, ErrNoValidSignature, ""},
		{"no signatures", one, "t=12345", ErrNoValidSignature, ""},
		{"short v1 never matches", one, "t=12345,v1=" + vectorSig[:62], ErrNoValidSignature, ""},
		{"long v1 never matches", one, "t=12345,v1=" + vectorSig + "00", ErrNoValidSignature, ""},
		{"non-hex v1 never matches", one, "t=12345,v1=" + vectorSig[:63] + "g", ErrNoValidSignature, ""},
		{"other timestamp", one, "t=12346,v1=" + vectorSig, ErrNoValidSignature, ""},
		{"empty", one, "", ErrNotSigned, ""},
		{"bad_header", one, "bad_header", ErrInvalidHeader, ""},
		{"t=", one, "t=", ErrInvalidHeader, ""},
		{"v1,t=1", one, "v1,t=1", ErrInvalidHeader, ""},
		{"no t", one, "v1=" + vectorSig, ErrInvalidHeader, ""},
		{"two t", one, "t=12345,t=12345,v1=" + vectorSig, ErrInvalidHeader, ""},
		{"signed t", one, "t=+12345,v1=" + vectorSig, ErrInvalidHeader, ""},
		{"negative t", one, "t=-12345,v1=" + vectorSig, ErrInvalidHeader, ""},
		{"space inside t", one, "t= 12345,v1=" + vectorSig, ErrInvalidHeader, ""},
		{"t overflows", one, "t=99999999999999999999,v1=" + vectorSig, ErrInvalidHeader, ""},
		{"t not a number", one, "t=abc,v1=" + vectorSig, ErrInvalidHeader, ""},
		{"too long", one, "t=12345,v1=" + vectorSig + "," + strings.Repeat("x=1,", MaxHeaderLen/4), ErrInvalidHeader, ""},
		{"upper-case key", one, "T=12345,V1=" + vectorSig, ErrInvalidHeader, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestVerifier(t, vectorTime, tt.secrets...)
			got, err := v.Verify(vectorPayload, tt.header)
			if tt.want != nil {
				require.ErrorIs(t, err, tt.want)
				assert.Equal(t, Verification{}, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.secret, got.Secret)
			assert.Equal(t, vectorTime, got.Timestamp)
		})
	}
}

func TestVerifyTolerance(t *testing.T) {
	header := "t=12345,v1=" + vectorSig
	for _, tt := range []struct {
		name   string
		offset time.Duration
		ok     bool
	}{
		{"now", 0, true},
		{"tolerance ago", DefaultTolerance, true},
		{"tolerance ahead", -DefaultTolerance, true},
		{"just too old", DefaultTolerance + time.Second, false},
		{"just too new", -DefaultTolerance - time.Second, false},
		{"a day old", 24 * time.Hour, false},
		{"a day ahead", -24 * time.Hour, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestVerifier(t, vectorTime.Add(tt.offset), NewSecret("s", vectorSecret))
			_, err := v.Verify(vectorPayload, header)
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrTimestampOutsideTolerance)
			var te *TimestampError
			require.ErrorAs(t, err, &te)
			assert.Equal(t, vectorTime, te.Timestamp)
			assert.Equal(t, DefaultTolerance, te.Tolerance)
			if tt.offset > 0 {
				assert.Contains(t, err.Error(), "old")
			} else {
				assert.Contains(t, err.Error(), "future")
			}
		})
	}
}

func TestVerifySignatureBeforeTime(t *testing.T) {
	v := newTestVerifier(t, vectorTime.Add(time.Hour), NewSecret("s", vectorSecret))
	// Stale and forged: the forgery is what matters.
	_, err := v.Verify(vectorPayload, "t=12345,v1="+strings.Repeat("ab", 32))
	require.ErrorIs(t, err, ErrNoValidSignature)
	// Stale and authentic: say it is too old.
	_, err = v.Verify(vectorPayload, "t=12345,v1="+vectorSig)
	require.ErrorIs(t, err, ErrTimestampOutsideTolerance)
}

func TestVerifyCustomTolerance(t *testing.T) {
	v, err := NewVerifier([]Secret{NewSecret("", vectorSecret)}, WithTolerance(time.Hour), WithClock(fixedClock(vectorTime.Add(59*time.Minute))))
	require.NoError(t, err)
	_, err = v.Verify(vectorPayload, "t=12345,v1="+vectorSig)
	require.NoError(t, err)
}

func TestNewVerifierConfigErrors(t *testing.T) {
	for _, tol := range []time.Duration{0, -time.Second} {
		_, err := NewVerifier(Secrets(vectorSecret), WithTolerance(tol))
		require.ErrorIs(t, err, ErrInvalidTolerance, "tolerance %v must not disable the check", tol)
	}
	_, err := NewVerifier(nil)
	require.ErrorIs(t, err, ErrNoSecret)
	_, err = NewVerifier([]Secret{NewSecret("current", vectorSecret), NewSecret("previous", "")})
	require.ErrorIs(t, err, ErrNoSecret)
	assert.Contains(t, err.Error(), `"previous"`)
}

func TestVerifyPayloadMustBeRaw(t *testing.T) {
	v := newTestVerifier(t, vectorTime, NewSecret("", vectorSecret))
	reformatted := bytes.ReplaceAll(vectorPayload, []byte("\n  "), nil)
	_, err := v.Verify(reformatted, "t=12345,v1="+vectorSig)
	require.ErrorIs(t, err, ErrNoValidSignature)
	assert.Contains(t, err.Error(), "raw request bytes")
}

func TestVerifyManySignaturesInHeader(t *testing.T) {
	// More v1 values than fit inline.
	h := "t=12345"
	for i := 0; i < 10; i++ {
		h += fmt.Sprintf(",v1=%064x", i)
	}
	v := newTestVerifier(t, vectorTime, NewSecret("", vectorSecret))
	_, err := v.Verify(vectorPayload, h)
	require.ErrorIs(t, err, ErrNoValidSignature)
	_, err = v.Verify(vectorPayload, h+",v1="+vectorSig)
	require.NoError(t, err)
}

func TestVerifyConcurrent(t *testing.T) {
	v := newTestVerifier(t, vectorTime, Secrets(vectorRolled, vectorSecret)...)
	errs := make(chan error, 64)
	for range 64 {
		go func() {
			var err error
			for range 100 {
				if _, e := v.Verify(vectorPayload, "t=12345,v1="+vectorSig); e != nil {
					err = e
				}
			}
			errs <- err
		}()
	}
	for range 64 {
		require.NoError(t, <-errs)
	}
}

// FuzzParseHeader checks that no header panics the parser, and that what it
// accepts has exactly one plain-digit t and only well-formed signatures.
func FuzzParseHeader(f *testing.F) {
	for _, s := range []string{"", "t=12345,v1=" + vectorSig, "t=,v1=", "v1,t=1", "bad_header", " t=1 ,, v0=x,v1=" + vectorSig, "t=1,t=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		var h parsedHeader
		err := h.parse(header)
		if err != nil {
			if !errors.Is(err, ErrNotSigned) && !errors.Is(err, ErrInvalidHeader) && !errors.Is(err, ErrNoValidSignature) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if h.t < 0 || h.n == 0 || strings.Count(header, "t=") == 0 {
			t.Fatalf("accepted %q as t=%d with %d signatures", header, h.t, h.n)
		}
	})
}

// FuzzVerify checks that no payload or header panics Verify, and that only
// the real signature verifies.
func FuzzVerify(f *testing.F) {
	f.Add(vectorPayload, "t=12345,v1="+vectorSig)
	f.Add([]byte("{}"), "t=12345,v1="+vectorSigRoll)
	f.Add([]byte(""), "t=0,v1=")
	v, err := NewVerifier(Secrets(vectorSecret), WithClock(fixedClock(vectorTime)))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, payload []byte, header string) {
		_, err := v.Verify(payload, header)
		// Hex is accepted in either case, as Go's and Stripe's decoders do.
		authentic := bytes.Equal(payload, vectorPayload) && strings.Contains(strings.ToLower(header), vectorSig)
		if err == nil && !authentic {
			t.Fatalf("verified a forgery: %q %q", payload, header)
		}
	})
}
