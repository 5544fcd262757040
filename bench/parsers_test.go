// Package bench measures choices that the core module does not depend on:
// envelope parsers from other libraries, and the end-to-end HTTP comparison
// in cmd/e2e. It is its own module so that the core's go.mod stays
// stripe-go and the standard library.
package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/buger/jsonparser"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/stripewebhook/stripewebhook"
)

// envelope is what every candidate extracts.
type envelope struct {
	ID, Type, APIVersion, Account string
	Livemode                      bool
	Created                       int64
	Object                        []byte
}

var payloads = []struct{ name, file string }{
	{"0.8KB", "../testdata/bench/balance.available.json"},
	{"6KB", "../testdata/bench/invoice.paid.json"},
	{"190KB", "../testdata/bench/invoice.paid.100-lines.json"},
}

// encoding/json into a struct with a RawMessage: validates everything,
// copies data.object.
func stdlib(b []byte) (envelope, error) {
	var v struct {
		ID         string `json:"id"`
		Type       string `json:"type"`
		APIVersion string `json:"api_version"`
		Account    string `json:"account"`
		Livemode   bool   `json:"livemode"`
		Created    int64  `json:"created"`
		Data       struct {
			Object json.RawMessage `json:"object"`
		} `json:"data"`
	}
	err := json.Unmarshal(b, &v)
	return envelope{v.ID, v.Type, v.APIVersion, v.Account, v.Livemode, v.Created, v.Data.Object}, err
}

// jsonparser: fast, but it skips what it does not look at without
// validating it, so a malformed data.object passes.
var jpPaths = [][]string{{"id"}, {"type"}, {"api_version"}, {"account"}, {"livemode"}, {"created"}, {"data", "object"}}

func jsonparserEnv(b []byte) (envelope, error) {
	var e envelope
	var ferr error
	jsonparser.EachKey(b, func(idx int, v []byte, typ jsonparser.ValueType, err error) {
		if err != nil {
			ferr = err
			return
		}
		switch idx {
		case 0:
			e.ID = string(v)
		case 1:
			e.Type = string(v)
		case 2:
			e.APIVersion = string(v)
		case 3:
			if typ == jsonparser.String {
				e.Account = string(v)
			}
		case 4:
			e.Livemode, _ = jsonparser.ParseBoolean(v)
		case 5:
			e.Created, _ = jsonparser.ParseInt(v)
		case 6:
			e.Object = v
		}
	}, jpPaths...)
	return e, ferr
}

// jsontext: a validating streaming tokenizer (encoding/json/v2's).
func jsontextEnv(b []byte) (envelope, error) {
	var e envelope
	d := jsontext.NewDecoder(bytes.NewReader(b))
	if _, err := d.ReadToken(); err != nil {
		return e, err
	}
	for d.PeekKind() != '}' {
		k, err := d.ReadToken()
		if err != nil {
			return e, err
		}
		key := k.String() // a Token is void after the next read
		switch key {
		case "data":
			if _, err := d.ReadToken(); err != nil {
				return e, err
			}
			for d.PeekKind() != '}' {
				dk, err := d.ReadToken()
				if err != nil {
					return e, err
				}
				isObject := dk.String() == "object"
				v, err := d.ReadValue()
				if err != nil {
					return e, err
				}
				if isObject {
					e.Object = bytes.Clone(v) // v is void after the next read
				}
			}
			if _, err := d.ReadToken(); err != nil {
				return e, err
			}
		case "id", "type", "api_version", "account", "livemode", "created":
			v, err := d.ReadToken()
			if err != nil {
				return e, err
			}
			switch key {
			case "id":
				e.ID = v.String()
			case "type":
				e.Type = v.String()
			case "api_version":
				e.APIVersion = v.String()
			case "account":
				if v.Kind() == '"' {
					e.Account = v.String()
				}
			case "livemode":
				e.Livemode = v.Kind() == 't'
			case "created":
				e.Created, _ = v.Int()
			}
			if v.Kind() == '{' || v.Kind() == '[' {
				return e, fmt.Errorf("unexpected container for %s", key)
			}
		default:
			if err := d.SkipValue(); err != nil {
				return e, err
			}
		}
	}
	return e, nil
}

func ours(b []byte) (envelope, error) {
	e, err := stripewebhook.ParseEvent(b)
	if err != nil {
		return envelope{}, err
	}
	return envelope{e.ID, string(e.Type), e.APIVersion, e.Account, e.Livemode, e.Created, e.Object}, nil
}

var candidates = []struct {
	name  string
	parse func([]byte) (envelope, error)
}{
	{"stripewebhook", ours},
	{"encoding-json-rawmessage", stdlib},
	{"jsontext", jsontextEnv},
	{"jsonparser", jsonparserEnv},
}

func TestCandidatesAgree(t *testing.T) {
	for _, p := range payloads {
		b, err := os.ReadFile(p.file)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ours(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range candidates {
			got, err := c.parse(b)
			if err != nil {
				t.Fatalf("%s on %s: %v", c.name, p.name, err)
			}
			if got.ID != want.ID || got.Type != want.Type || got.Created != want.Created || got.APIVersion != want.APIVersion ||
				got.Account != want.Account || got.Livemode != want.Livemode || !bytes.Equal(got.Object, want.Object) {
				t.Errorf("%s on %s: %+v", c.name, p.name, got.ID)
			}
		}
	}
	// Only the validating parsers reject a malformed data.object.
	bad := []byte(`{"id":"evt_1","type":"invoice.paid","data":{"object":{"a":tru}}}`)
	for _, c := range candidates {
		_, err := c.parse(bad)
		t.Logf("%-26s malformed data.object rejected: %v", c.name, err != nil)
	}
}

// BenchmarkEnvelope: each parser on each payload, with the ratio to ours
// printed after each payload.
func BenchmarkEnvelope(b *testing.B) {
	for _, p := range payloads {
		body, err := os.ReadFile(p.file)
		if err != nil {
			b.Fatal(err)
		}
		times := map[string]float64{}
		for _, c := range candidates {
			b.Run(p.name+"/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				for b.Loop() {
					if _, err := c.parse(body); err != nil {
						b.Fatal(err)
					}
				}
				times[c.name] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			})
		}
		for _, c := range candidates[1:] {
			fmt.Printf("ratio envelope %-6s %-26s %6.2fx the time of stripewebhook's scanner\n", p.name, c.name, times[c.name]/times["stripewebhook"])
		}
	}
}
