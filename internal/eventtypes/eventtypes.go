// Package eventtypes knows the event types of the stripe-go release the
// module builds against, so that a typo in a registration fails at start-up.
package eventtypes

//go:generate go run ./gen

import "sort"

// IsKnown reports whether t is an event type stripe-go declares.
func IsKnown(t string) bool {
	i := sort.SearchStrings(Known[:], t)
	return i < len(Known) && Known[i] == t
}

// WithPrefix returns the known types that start with prefix, in order. The
// slice has no spare capacity: appending to it copies, never writes into
// Known.
func WithPrefix(prefix string) []string {
	i := sort.SearchStrings(Known[:], prefix)
	j := i
	for j < len(Known) && len(Known[j]) >= len(prefix) && Known[j][:len(prefix)] == prefix {
		j++
	}
	return Known[i:j:j]
}
