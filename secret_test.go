package stripewebhook

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// A user's configuration struct, holding secrets in exported and
// unexported fields, by value and by pointer.
type appConfig struct {
	Addr     string
	Webhook  Secret
	Rolled   []Secret
	current  Secret
	previous *Secret
	byName   map[string]Secret
}

func TestSecretValueNeverPrinted(t *testing.T) {
	const value = "whsec_Zm9vYmFyYmF6cXV4"
	s := NewSecret("current", value)
	cfg := appConfig{Addr: ":4242", Webhook: s, Rolled: []Secret{s}, current: s, previous: &s, byName: map[string]Secret{"a": s}}

	outputs := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%t", "%o", "%b", "%e", "%c", "%U", "%p", "%10.3v"} {
		outputs["secret "+verb] = fmt.Sprintf(verb, s)
		outputs["pointer "+verb] = fmt.Sprintf(verb, &s)
		outputs["struct "+verb] = fmt.Sprintf(verb, cfg)
		outputs["struct pointer "+verb] = fmt.Sprintf(verb, &cfg)
		outputs["slice "+verb] = fmt.Sprintf(verb, []Secret{s})
	}
	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"slog text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"slog json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		slog.New(h(&buf)).Info("config", "secret", s, "cfg", cfg, "ptr", &cfg, "list", []Secret{s})
		outputs[name] = buf.String()
	}
	js, err := json.Marshal(cfg)
	require.NoError(t, err)
	outputs["json"] = string(js)
	xs, err := xml.Marshal(cfg)
	require.NoError(t, err)
	outputs["xml"] = string(xs)
	ys, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	outputs["yaml"] = string(ys)
	var gb bytes.Buffer
	require.NoError(t, gob.NewEncoder(&gb).Encode(cfg))
	outputs["gob"] = gb.String()

	for name, out := range outputs {
		assert.NotContains(t, out, "Zm9vYmFy", name)
	}
	assert.Contains(t, outputs["secret %d"], "current")
	assert.Contains(t, outputs["json"], "Secret(current)")

	// What was printed cannot be read back as a working secret either.
	var back appConfig
	require.NoError(t, gob.NewDecoder(&gb).Decode(&back))
	_, err = NewVerifier([]Secret{back.Webhook})
	require.ErrorIs(t, err, ErrNoSecret)
}

func TestSecretsSplitsCommaSeparatedLists(t *testing.T) {
	got := Secrets(" whsec_new , whsec_old\n", "", "whsec_connect,")
	require.Len(t, got, 3)
	for i, name := range []string{"#1", "#2", "#3"} {
		assert.Equal(t, name, got[i].Name)
	}
	assert.Equal(t, "whsec_old", string(got[1].key()))
	assert.Empty(t, Secrets(""), "an unset variable configures nothing, and NewHandler says so")
}

func TestSecretCheckedAtConstruction(t *testing.T) {
	for _, tt := range []struct {
		name, value string
		want        error
		reason      string
	}{
		{"empty", "", ErrNoSecret, "empty"},
		{"whitespace only", " \n\t", ErrNoSecret, "empty"},
		{"double quotes", `"whsec_abc123"`, ErrInvalidSecret, "quotes"},
		{"single quotes", `'whsec_abc123'`, ErrInvalidSecret, "quotes"},
		{"API key", "sk_test_51abcDEF", ErrInvalidSecret, "secret API key"},
		{"restricted key", "rk_live_51abcDEF", ErrInvalidSecret, "secret API key"},
		{"publishable key", "pk_test_51abcDEF", ErrInvalidSecret, "publishable"},
		{"other", "abc123", ErrInvalidSecret, "whsec_"},
		{"README placeholder", "whsec_...", ErrInvalidSecret, "placeholder"},
		{"prefix only", "whsec_", ErrInvalidSecret, "prefix"},
		{"space inside", "whsec_abc 123", ErrInvalidSecret, "whitespace"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewVerifier([]Secret{NewSecret("current", tt.value)})
			require.ErrorIs(t, err, tt.want)
			var se *SecretError
			require.True(t, errors.As(err, &se))
			assert.Equal(t, "current", se.Name)
			assert.Contains(t, err.Error(), tt.reason)
			assert.Contains(t, err.Error(), `"current"`)
			if v := strings.TrimSpace(tt.value); len(v) > 6 {
				assert.NotContains(t, err.Error(), v[3:])
			}
		})
	}
	t.Run("trimmed", func(t *testing.T) {
		v, err := NewVerifier([]Secret{NewSecret("env", "whsec_test_secret\n")}, WithClock(fixedClock(vectorTime)))
		require.NoError(t, err)
		_, err = v.Verify(vectorPayload, "t=12345,v1="+vectorSig)
		require.NoError(t, err, "a trailing newline from a .env file is not part of the secret")
	})
	t.Run("zero value", func(t *testing.T) {
		_, err := NewVerifier([]Secret{{Name: "x"}})
		require.ErrorIs(t, err, ErrNoSecret)
	})
}
