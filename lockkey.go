package stripewebhook

import (
	"bytes"
	"strings"
)

// SubscriptionKey is a [WithLockKey] for billing: the events of one
// subscription — the subscription's own (customer.subscription.*), its
// invoices' (invoice.*, through parent.subscription_details.subscription,
// or the subscription field of API versions before 2025-03-31) and its
// checkout sessions' (checkout.session.*) — share the subscription's lock,
// so that they run one at a time whichever replica receives them. Other
// events, and invoices or sessions of no subscription, keep their own
// object's lock.
func SubscriptionKey(e *Event) string {
	t := string(e.Type)
	switch {
	case strings.HasPrefix(t, "customer.subscription."):
		return objectID(e.Object)
	case strings.HasPrefix(t, "invoice."):
		if id := idOf(topValue(topValue(topValue(e.Object, "parent"), "subscription_details"), "subscription")); id != "" {
			return id
		}
		return idOf(topValue(e.Object, "subscription"))
	case strings.HasPrefix(t, "checkout.session."):
		return idOf(topValue(e.Object, "subscription"))
	}
	return ""
}

// idOf reads an id from a field's raw value: the string itself, or an
// expanded object's id.
func idOf(raw []byte) string {
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		s := scanner{b: raw}
		r, plain, err := s.str()
		if err != nil {
			return ""
		}
		return stringValue(r, plain)
	case '{':
		return objectID(raw)
	}
	return ""
}

// topValue returns the raw value of the top-level field name of a JSON
// object, or nil.
func topValue(raw []byte, name string) []byte {
	if len(raw) == 0 {
		return nil
	}
	s := scanner{b: raw}
	more, err := s.open(0)
	for err == nil && more {
		var key string
		var v []byte
		if key, err = s.member(); err != nil {
			return nil
		}
		if v, err = s.value(1); err != nil {
			return nil
		}
		if key == name {
			return bytes.TrimLeft(v, " \t\r\n")
		}
		more, err = s.next()
	}
	return nil
}
