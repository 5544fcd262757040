package stripewebhook

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v82"
)

// referenceParse is the envelope decoded with encoding/json: the body into
// map[string]json.RawMessage (last key wins, keys exact), then each field
// into its Go type. parseEnvelope must agree with it on every input.
func referenceParse(body []byte) (*Event, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("null")
	}
	e := new(Event)
	field := func(m map[string]json.RawMessage, k string, dst any) error {
		if raw, ok := m[k]; ok {
			return json.Unmarshal(raw, dst)
		}
		return nil
	}
	// request and reason.request: an object (or null) with exact keys.
	requestObject := func(raw json.RawMessage, dst *EventRequest) error {
		var r map[string]json.RawMessage
		if err := json.Unmarshal(raw, &r); err != nil {
			return err
		}
		if err := field(r, "id", &dst.ID); err != nil {
			return err
		}
		return field(r, "idempotency_key", &dst.IdempotencyKey)
	}
	var typ, object, context string
	for k, dst := range map[string]any{"id": &e.ID, "type": &typ, "api_version": &e.APIVersion,
		"account": &e.Account, "livemode": &e.Livemode, "object": &object, "context": &context} {
		if err := field(m, k, dst); err != nil {
			return nil, err
		}
	}
	e.Type = stripe.EventType(typ)
	if raw, ok := m["request"]; ok {
		if len(raw) > 0 && raw[0] == '"' {
			if err := json.Unmarshal(raw, &e.Request.ID); err != nil {
				return nil, err
			}
		} else if err := requestObject(raw, &e.Request); err != nil {
			return nil, err
		}
	}
	if raw, ok := m["data"]; ok {
		var d map[string]json.RawMessage
		if err := json.Unmarshal(raw, &d); err != nil {
			return nil, err
		}
		e.Object, e.PreviousAttributes = d["object"], d["previous_attributes"]
	}
	var reason EventRequest
	if raw, ok := m["reason"]; ok {
		var r map[string]json.RawMessage
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, err
		}
		var rtype string
		if err := field(r, "type", &rtype); err != nil {
			return nil, err
		}
		if raw, ok := r["request"]; ok {
			if err := requestObject(raw, &reason); err != nil {
				return nil, err
			}
		}
	}
	var related *stripe.RelatedObject
	if raw, ok := m["related_object"]; ok {
		var r map[string]json.RawMessage
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, err
		}
		if r != nil {
			related = new(stripe.RelatedObject)
			for k, dst := range map[string]*string{"id": &related.ID, "type": &related.Type, "url": &related.URL} {
				if err := field(r, k, dst); err != nil {
					return nil, err
				}
			}
		}
	}
	if object == "v2.core.event" {
		e.Kind, e.Account, e.Request = Thin, context, reason
		if related != nil {
			e.related = *related
			e.Related = &e.related
		}
		var t time.Time
		if err := field(m, "created", &t); err != nil {
			return nil, err
		}
		if !t.IsZero() {
			e.Created = t.Unix()
		}
	} else if err := field(m, "created", &e.Created); err != nil {
		return nil, err
	}
	if e.ID == "" || e.Type == "" {
		return nil, errors.New("no id or type")
	}
	e.Payload = body
	return e, nil
}

// matchesReference fails t unless ParseEvent and referenceParse agree on
// body: both accept it with the same values, or both reject it.
func matchesReference(t *testing.T, body []byte) {
	agreesWithReference(t, body, ParseEvent, referenceParse)
}

// agreesWithReference fails t unless parse and reference agree on body.
func agreesWithReference(t *testing.T, body []byte, parse, reference func([]byte) (*Event, error)) {
	got, err := parse(body)
	want, rerr := reference(body)
	if (err == nil) != (rerr == nil) {
		t.Fatalf("parser err=%v, encoding/json err=%v, body %q", err, rerr, body)
	}
	if err != nil {
		if !errors.Is(err, ErrInvalidPayload) {
			t.Fatalf("error does not wrap ErrInvalidPayload: %v", err)
		}
		return
	}
	if !assert.Equal(t, want, got) {
		t.Fatalf("values differ for %q", body)
	}
}

// FuzzParseThinEnvelope holds the scanner to encoding/json on thin events:
// created as an RFC 3339 string, context, related_object and reason, and
// the "object" that tells them from snapshots wherever it stands.
func FuzzParseThinEnvelope(f *testing.F) {
	files, err := filepath.Glob("fixture/events/v*.json")
	if err != nil || len(files) == 0 {
		f.Fatalf("no thin fixtures: %v", err)
	}
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	f.Add([]byte(`{"created":"2024-09-26T17:46:22.134Z","id":"evt_1","type":"v2.core.event_destination.ping","object":"v2.core.event"}`))
	f.Add([]byte(`{"id":"evt_1","object":"v2.core.event","type":"t","created":1764000000}`))
	f.Add([]byte(`{"id":"evt_1","object":"v2.core.event","type":"t","context":"acct_1","related_object":{"id":"x","url":null},"reason":{"request":{"id":"req_1"}}}`))
	f.Add([]byte(`{"id":"evt_1","object":"event","type":"t","created":"2024-09-26T17:46:22Z"}`))
	// Repeated members: the last occurrence wins, pending strings included.
	f.Add([]byte(`{"object":"v2.core.event","id":"evt_1","type":"t","reason":{"request":{"id":"req_1"}},"reason":{"type":"request"},"id":"evt_2"}`))
	f.Add([]byte(`{"object":"v2.core.event","id":"evt_1","type":"t","related_object":{"id":"a","url":"/x"},"related_object":{"type":"b"},"context":"acct_1","context":null}`))
	f.Add([]byte(`{"id":"evt_1","type":"t","request":{"id":"req_1","idempotency_key":"k"},"request":"req_2","account":"acct_1","account":"acct_\u0032"}`))
	f.Fuzz(matchesReference)
}

func fixtureFiles(t testing.TB) []string {
	files, err := filepath.Glob("fixture/events/*.json")
	require.NoError(t, err)
	bench, err := filepath.Glob("testdata/bench/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	return append(files, bench...)
}

func TestParseEnvelopeFixtures(t *testing.T) {
	for _, f := range fixtureFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			body, err := os.ReadFile(f)
			require.NoError(t, err)
			got, err := ParseEvent(body)
			require.NoError(t, err)
			want, err := referenceParse(body)
			require.NoError(t, err)
			assert.Equal(t, want, got)
			assert.True(t, strings.HasPrefix(got.ID, "evt_"))
			if got.Kind == Thin {
				// Held to stripe-go's own ThinEvent.
				var te stripe.ThinEvent
				require.NoError(t, json.Unmarshal(body, &te))
				assert.Equal(t, te.ID, got.ID)
				assert.Equal(t, te.Type, string(got.Type))
				assert.Equal(t, te.Livemode, got.Livemode)
				assert.Equal(t, te.Created.Unix(), got.Created)
				assert.Equal(t, te.RelatedObject, got.Related)
				if te.Context != nil {
					assert.Equal(t, *te.Context, got.Account)
				}
				if te.Reason != nil && te.Reason.Request != nil {
					assert.Equal(t, te.Reason.Request.ID, got.Request.ID)
					assert.Equal(t, te.Reason.Request.IdempotencyKey, got.Request.IdempotencyKey)
				}
				assert.Empty(t, got.APIVersion, "thin events are unversioned")
				assert.Nil(t, got.Object)
				return
			}
			assert.Equal(t, stripe.APIVersion, got.APIVersion)
			assert.Equal(t, byte('{'), got.Object[0])

			se, err := got.Stripe()
			require.NoError(t, err)
			assert.Equal(t, got.ID, se.ID)
			assert.Equal(t, got.Type, se.Type)
			assert.Equal(t, got.Account, se.Account)
			assert.Equal(t, got.Created, se.Created)
			assert.JSONEq(t, string(got.Object), string(se.Data.Raw))
		})
	}
}

func TestParseEnvelopeRejects(t *testing.T) {
	for _, tt := range []struct{ name, body string }{
		{"empty", ""},
		{"spaces", "  \n"},
		{"not JSON", "id=evt_1&type=invoice.paid"},
		{"array", `[{"id":"evt_1","type":"invoice.paid"}]`},
		{"null", `null`},
		{"string", `"evt_1"`},
		{"truncated", `{"id":"evt_1","type":"invoice.paid","data":{"object":{"id":"in_1"`},
		{"trailing garbage", `{"id":"evt_1","type":"invoice.paid"} x`},
		{"two values", `{"id":"evt_1","type":"invoice.paid"}{}`},
		{"no id", `{"type":"invoice.paid"}`},
		{"empty id", `{"id":"","type":"invoice.paid"}`},
		{"null id", `{"id":null,"type":"invoice.paid"}`},
		{"no type", `{"id":"evt_1"}`},
		{"numeric id", `{"id":1,"type":"invoice.paid"}`},
		{"string livemode", `{"id":"evt_1","type":"invoice.paid","livemode":"true"}`},
		{"float created", `{"id":"evt_1","type":"invoice.paid","created":1.5}`},
		{"huge created", `{"id":"evt_1","type":"invoice.paid","created":99999999999999999999}`},
		{"data not object", `{"id":"evt_1","type":"invoice.paid","data":[]}`},
		{"request number", `{"id":"evt_1","type":"invoice.paid","request":7}`},
		{"bad inside object", `{"id":"evt_1","type":"invoice.paid","data":{"object":{"a":tru}}}`},
		{"control char", "{\"id\":\"evt\x01\",\"type\":\"invoice.paid\"}"},
		{"bad escape", `{"id":"evt\x","type":"invoice.paid"}`},
		{"single quotes", `{'id':'evt_1','type':'invoice.paid'}`},
		{"trailing comma", `{"id":"evt_1","type":"invoice.paid",}`},
		{"leading zero", `{"id":"evt_1","type":"invoice.paid","x":01}`},
		{"too deep", `{"id":"evt_1","type":"invoice.paid","x":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseEvent([]byte(tt.body))
			require.ErrorIs(t, err, ErrInvalidPayload)
			_, rerr := referenceParse([]byte(tt.body))
			require.Error(t, rerr, "encoding/json accepts it")
		})
	}
}

func TestParseEnvelopeAccepts(t *testing.T) {
	for _, tt := range []struct{ name, body string }{
		{"minimal", `{"id":"evt_1","type":"invoice.paid"}`},
		{"escaped id", `{"id":"evt_\u0031\n","type":"invoice.paid"}`},
		{"escaped key", `{"\u0069d":"evt_1","type":"invoice.paid"}`},
		{"invalid utf8 in id", "{\"id\":\"evt_\xff\",\"type\":\"invoice.paid\"}"},
		{"duplicate key, last wins", `{"id":"evt_1","id":"evt_2","type":"invoice.paid"}`},
		{"type error overridden", `{"id":1,"id":"evt_2","type":"invoice.paid"}`},
		{"null fields", `{"id":"evt_1","type":"invoice.paid","account":null,"livemode":null,"created":null,"request":null,"data":null}`},
		{"old string request", `{"id":"evt_1","type":"invoice.paid","request":"req_1"}`},
		{"unknown type", `{"id":"evt_1","type":"brand_new.thing"}`},
		{"null object", `{"id":"evt_1","type":"invoice.paid","data":{"object":null}}`},
		{"nested", `{"id":"evt_1","type":"invoice.paid","data":{"object":{"a":[1,-2.5e+3,true,false,null,{"b":"c\"d"}]},"previous_attributes":{}}}`},
		{"white space", " \t\r\n{ \"id\" : \"evt_1\" , \"type\" : \"invoice.paid\" } \n"},
		{"keys case-sensitive", `{"ID":"evt_X","id":"evt_1","Type":"x","type":"invoice.paid"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEvent([]byte(tt.body))
			require.NoError(t, err)
			want, err := referenceParse([]byte(tt.body))
			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
	}
}

func TestParseEnvelopeKnownTypeDoesNotAllocate(t *testing.T) {
	body := []byte(`{"id":"evt_1","type":"invoice.paid","api_version":"` + stripe.APIVersion + `","data":{"object":{"id":"in_1"}}}`)
	var e Event
	allocs := testing.AllocsPerRun(100, func() {
		e = Event{}
		if err := parseEnvelope(body, &e); err != nil {
			t.Fatal(err)
		}
	})
	assert.Equal(t, 1.0, allocs, "only the id string should be allocated")
}

func TestSpecialMask(t *testing.T) {
	special := func(c int) bool { return c == '"' || c == '\\' || c < 0x20 || c >= 0x80 }
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 8; pos++ {
			for _, fill := range []byte{'a', ' ', 0x7f, 0x20} {
				b := bytes.Repeat([]byte{fill}, 8)
				b[pos] = byte(c)
				m := specialMask(binary.LittleEndian.Uint64(b))
				for i := 0; i < 8; i++ {
					want := special(int(b[i]))
					if got := m>>(8*i+7)&1 == 1; got != want {
						t.Fatalf("specialMask(%q): byte %d flagged %v", b, i, got)
					}
				}
				if m&^0x8080808080808080 != 0 {
					t.Fatalf("specialMask(%q) = %#x: bits outside the high ones", b, m)
				}
			}
		}
	}
}

func TestObjectName(t *testing.T) {
	assert.Equal(t, "invoice", objectName([]byte(`{"id":"in_1","object":"invoice","x":{"object":"no"}}`)))
	assert.Equal(t, "checkout.session", objectName([]byte(`{"object":"checkout.session"}`)))
	assert.Equal(t, "", objectName([]byte(`{"id":"in_1","x":{"object":"nested"}}`)))
	assert.Equal(t, "", objectName([]byte(`[1]`)))
	assert.Equal(t, "in_1", objectID([]byte(`{"id":"in_1","object":"invoice","x":{"id":"no"}}`)))
	assert.Equal(t, "", objectID([]byte(`{"object":"invoice","x":{"id":"nested"}}`)))
}

// FuzzParseEnvelope holds the hand-written scanner to encoding/json: the
// same accept/reject decision and the same field values on every input.
func FuzzParseEnvelope(f *testing.F) {
	for _, file := range fixtureFiles(f) {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		if len(body) < 10000 {
			f.Add(body)
		}
	}
	f.Add([]byte(`{"id":"evt_1","type":"invoice.paid","request":"req_1","data":{"object":null}}`))
	f.Add([]byte(`{"id":"e\u0041","type":"t","created":-0,"livemode":true}`))
	f.Fuzz(matchesReference)
}
