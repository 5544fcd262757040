package webhooktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stripewebhook/stripewebhook/internal/stripejson"
)

// Edit changes one thing of an event payload; pass edits to [Fixture] or
// [Vary]. The payload stays pretty-printed as Stripe sends it.
type Edit func(event map[string]any) error

// Vary returns a copy of the event payload with the edits applied, for a
// test that needs the fixture with another account, status or type:
//
//	payload := webhooktest.Vary(t, webhooktest.Fixture(t, "invoice.paid"),
//		webhooktest.Account("acct_123"),
//		webhooktest.ObjectField("status", "open"),
//		webhooktest.PreviousAttributes(map[string]any{"status": "draft"}))
func Vary(tb testing.TB, payload []byte, edits ...Edit) []byte {
	tb.Helper()
	out, err := Apply(payload, edits...)
	if err != nil {
		tb.Fatalf("webhooktest: %v", err)
	}
	return out
}

// Apply is [Vary] for programs: it returns an error instead of stopping a
// test.
func Apply(payload []byte, edits ...Edit) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber() // amounts and timestamps keep their exact digits
	var ev map[string]any
	if err := dec.Decode(&ev); err != nil {
		return nil, fmt.Errorf("payload is not a JSON object: %w", err)
	}
	for _, e := range edits {
		if err := e(ev); err != nil {
			return nil, err
		}
	}
	return stripejson.Encode(ev)
}

func set(key string, v any) Edit {
	return func(ev map[string]any) error { ev[key] = v; return nil }
}

// ID sets the event's id.
func ID(id string) Edit { return set("id", id) }

// Type sets the event's type.
func Type(t string) Edit { return set("type", t) }

// Account sets the connected account the event comes from (Connect: a
// snapshot event's account, a thin event's context); "" makes it the
// platform's own event.
func Account(id string) Edit {
	return func(ev map[string]any) error {
		switch {
		case isThin(ev) && id == "":
			ev["context"] = nil
		case isThin(ev):
			ev["context"] = id
		case id == "":
			delete(ev, "account")
		default:
			ev["account"] = id
		}
		return nil
	}
}

func isThin(ev map[string]any) bool { return ev["object"] == "v2.core.event" }

// Livemode sets livemode (a live event, or a connected account's test event
// on a live endpoint).
func Livemode(live bool) Edit { return set("livemode", live) }

// APIVersion sets the API version the event was rendered with.
func APIVersion(v string) Edit { return set("api_version", v) }

// Created sets the event's creation time, in Unix seconds (an RFC 3339
// time in a thin event).
func Created(unix int64) Edit {
	return func(ev map[string]any) error {
		if isThin(ev) {
			ev["created"] = time.Unix(unix, 0).UTC().Format(time.RFC3339Nano)
		} else {
			ev["created"] = unix
		}
		return nil
	}
}

// ObjectField sets a field of data.object; path may name a nested field
// with dots ("metadata.order_id"), whose parents are created if missing.
// value is anything encoding/json encodes; nil makes the field null.
func ObjectField(path string, value any) Edit {
	return func(ev map[string]any) error {
		obj, err := object(ev)
		if err != nil {
			return err
		}
		keys := strings.Split(path, ".")
		for _, k := range keys[:len(keys)-1] {
			next, ok := obj[k].(map[string]any)
			if !ok {
				if obj[k] != nil {
					return fmt.Errorf("data.object.%s is not an object", k)
				}
				next = map[string]any{}
				obj[k] = next
			}
			obj = next
		}
		obj[keys[len(keys)-1]] = value
		return nil
	}
}

// PreviousAttributes sets data.previous_attributes, as in a *.updated
// event; nil removes it.
func PreviousAttributes(prev map[string]any) Edit {
	return func(ev map[string]any) error {
		data, ok := ev["data"].(map[string]any)
		if !ok || isThin(ev) {
			return fmt.Errorf("the payload has no data object")
		}
		if prev == nil {
			delete(data, "previous_attributes")
		} else {
			data["previous_attributes"] = prev
		}
		return nil
	}
}

func object(ev map[string]any) (map[string]any, error) {
	if isThin(ev) {
		return nil, fmt.Errorf("a thin event has no data.object")
	}
	data, _ := ev["data"].(map[string]any)
	obj, ok := data["object"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the payload has no data.object")
	}
	return obj, nil
}
