package stripewebhook

import (
	"unsafe"

	"github.com/stripe/stripe-go/v82"

	"github.com/stripewebhook/stripewebhook/internal/eventtypes"
)

// unsafeString views b as a string without copying. The string must not
// outlive b nor be kept after b changes: it is only used for lookups and
// parsing within one call.
func unsafeString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// knownTypes maps each stripe-go event type, snapshot or thin, to one
// string, so that decoding a known type allocates nothing.
var knownTypes = func() map[string]stripe.EventType {
	m := make(map[string]stripe.EventType, len(eventtypes.Known)+len(eventtypes.Thin))
	for _, t := range append(eventtypes.Known[:], eventtypes.Thin[:]...) {
		m[t] = stripe.EventType(t)
	}
	return m
}()

func internType(raw []byte, plain bool) stripe.EventType {
	if plain {
		if t, ok := knownTypes[unsafeString(raw)]; ok {
			return t
		}
	}
	return stripe.EventType(stringValue(raw, plain))
}
