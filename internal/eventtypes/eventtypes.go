// Package eventtypes knows the event types of the stripe-go release the
// module builds against, so that a typo in a registration fails at start-up.
package eventtypes

//go:generate go run ./gen

import "sort"

// ThinEvent is what stripe-go knows of a thin event type.
type ThinEvent struct {
	GoType  string // the stripe-go type V2CoreEvents.Retrieve returns
	Related string // the stripe-go type of the related object, or ""
}

// IsKnown reports whether t is an event type stripe-go declares, snapshot
// or thin.
func IsKnown(t string) bool {
	return in(Known[:], t) || in(Thin[:], t)
}

func in(sorted []string, t string) bool {
	i := sort.SearchStrings(sorted, t)
	return i < len(sorted) && sorted[i] == t
}

// WithPrefix returns the known types, snapshot then thin, that start with
// prefix, in order. The slice has no spare capacity: appending to it
// copies, never writes into Known or Thin.
func WithPrefix(prefix string) []string {
	snap, thin := withPrefix(Known[:], prefix), withPrefix(Thin[:], prefix)
	if len(thin) == 0 {
		return snap
	}
	if len(snap) == 0 {
		return thin
	}
	return append(append([]string(nil), snap...), thin...)
}

func withPrefix(sorted []string, prefix string) []string {
	i := sort.SearchStrings(sorted, prefix)
	j := i
	for j < len(sorted) && len(sorted[j]) >= len(prefix) && sorted[j][:len(prefix)] == prefix {
		j++
	}
	return sorted[i:j:j]
}
