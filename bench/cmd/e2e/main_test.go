package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// The test binary stands in for the program: run() starts it again as each
// handler's process.
func TestMain(m *testing.M) {
	if kind := os.Getenv(serveEnv); kind != "" {
		serveChild(kind)
		return
	}
	os.Exit(m.Run())
}

func TestSmallRun(t *testing.T) {
	for _, typed := range []bool{false, true} {
		var out bytes.Buffer
		if err := run(&out, 300, 4, 3, "invoice", typed, "", ""); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"ours ", "guide ", "drain ", "ratio ours/ceiling", "MiB"} {
			if !strings.Contains(out.String(), want) {
				t.Fatalf("output lacks %q:\n%s", want, out.String())
			}
		}
	}
	if err := run(&bytes.Buffer{}, 10, 1, 1, "nope", false, "", ""); err == nil {
		t.Fatal("unknown payload accepted")
	}
}
