package main

import (
	"bytes"
	"strings"
	"testing"
)

// A small flood: every scenario reports a peak and genuine deliveries that
// were answered, never a hang.
func TestSmallFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and floods examples/basic")
	}
	var out bytes.Buffer
	if err := run(&out, 20, 1<<20, 2); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	if strings.Count(out.String(), "peak RSS") != 3 || strings.Contains(out.String(), "error:") || !strings.Contains(out.String(), "ratio forged/baseline") {
		t.Fatalf("output:\n%s", out.String())
	}
}
