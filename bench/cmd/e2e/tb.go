package main

import "testing"

// testingTB is embedded so that tb satisfies testing.TB; only Helper and
// Fatalf are ever called.
type testingTB = testing.TB
