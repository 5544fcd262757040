package stripewebhook

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// referenceBus decodes a bus envelope with encoding/json alone: the
// members into a map (keys exact, the last occurrence winning), each into
// its Go type, and the Stripe event inside with referenceParse.
func referenceBus(body []byte, bus Bus) (*Event, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("null")
	}
	o := &Origin{Bus: bus, envelope: body}
	get := func(k string, dst *string) error {
		if raw, ok := m[k]; ok {
			return json.Unmarshal(raw, dst)
		}
		return nil
	}
	var version, kind, spec, at string
	names := map[string]*string{"id": &o.ID, "source": &o.Source, "time": &at}
	if bus == EventBridge {
		names["version"], names["detail-type"], names["account"], names["region"] = &version, &kind, &o.Account, &o.Region
	} else {
		names["specversion"], names["type"] = &spec, &kind
	}
	for k, dst := range names {
		if err := get(k, dst); err != nil {
			return nil, err
		}
	}
	if at != "" {
		t, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			return nil, err
		}
		o.Time = t
	}
	var inner []byte
	if bus == EventBridge {
		if version != "0" {
			return nil, errors.New("version")
		}
		if rest, ok := strings.CutPrefix(o.Source, "aws.partner/stripe.com/"); ok && isDestinationID(rest) {
			o.Destination = rest
		}
		inner = m["detail"]
	} else {
		if spec != "1.0" || o.ID == "" || o.Source == "" || kind == "" {
			return nil, errors.New("required attributes")
		}
		if parts := strings.Split(o.Source, "/"); isDestinationID(parts[len(parts)-1]) {
			o.Destination = parts[len(parts)-1]
		}
		inner = m["data"]
		if raw, ok := m["data_base64"]; ok {
			if inner != nil {
				return nil, errors.New("both")
			}
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, err
			}
			var err error
			if inner, err = base64.StdEncoding.DecodeString(s); err != nil {
				return nil, err
			}
		}
		inner = bytes.TrimLeft(inner, " \t\r\n")
	}
	if len(inner) == 0 || inner[0] != '{' {
		return nil, errors.New("not an object")
	}
	e, err := referenceParse(inner)
	if err != nil {
		return nil, err
	}
	if bus == EventBridge && kind != string(e.Type) {
		return nil, errors.New("detail-type")
	}
	e.Origin = o
	return e, nil
}

func busMatchesReference(t *testing.T, body []byte, bus Bus) {
	agreesWithReference(t, body,
		func(b []byte) (*Event, error) { return parseBus(bus, b) },
		func(b []byte) (*Event, error) { return referenceBus(b, bus) })
}

// busSeeds wraps a few fixtures, snapshot and thin, in bus's envelope.
func busSeeds(f *testing.F, wrap func(inner string) string) {
	files, err := filepath.Glob("fixture/events/*.json")
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	for _, file := range []string{files[0], files[len(files)-1], "fixture/events/invoice.paid.json"} {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(wrap(string(body))))
	}
}

// FuzzParseEventBridge holds ParseEventBridge to encoding/json: the same
// accept/reject decisions and the same values, envelope and event.
func FuzzParseEventBridge(f *testing.F) {
	busSeeds(f, func(inner string) string {
		var e struct{ Type string }
		json.Unmarshal([]byte(inner), &e)
		return `{"version":"0","id":"6a7e8feb-b491-4cf7-a9f1-bf3703467718","detail-type":"` + e.Type + `","source":"aws.partner/stripe.com/ed_test_1","account":"123456789012","time":"2026-12-01T10:00:00Z","region":"us-east-1","resources":[],"detail":` + inner + `}`
	})
	f.Add([]byte(`{"version":"0","detail-type":"t","detail":{"id":"evt_1","type":"t"},"source":"x","source":"aws.partner/stripe.com/ed_1","time":null}`))
	f.Fuzz(func(t *testing.T, body []byte) { busMatchesReference(t, body, EventBridge) })
}

// FuzzParseEventGrid holds ParseEventGrid to encoding/json.
func FuzzParseEventGrid(f *testing.F) {
	busSeeds(f, func(inner string) string {
		return `{"specversion":"1.0","type":"t","source":"/providers/stripe/ed_test_1","id":"a","time":"2026-12-01T10:00:00.5Z","datacontenttype":"application/json","data":` + inner + `}`
	})
	f.Add([]byte(`{"specversion":"1.0","type":"t","source":"/x/ed_1","id":"a","data_base64":"eyJpZCI6ImV2dF8xIiwidHlwZSI6InQifQ=="}`))
	f.Fuzz(func(t *testing.T, body []byte) { busMatchesReference(t, body, EventGrid) })
}
