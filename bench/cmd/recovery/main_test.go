package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// The built command on JetStream: the event runs again after the killed
// worker's visibility timeout and claim lapse (30 s by default), not
// before, and well within the minute.
func TestRecoveryOnJetStream(t *testing.T) {
	for _, env := range []string{"STRIPEWEBHOOK_NATS_URL", "STRIPEWEBHOOK_REDIS_URL"} {
		if os.Getenv(env) == "" {
			t.Skipf("set %s to run the recovery measurement", env)
		}
	}
	bin := filepath.Join(t.TempDir(), "recovery")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-engines", "jetstream").Output()
	if err != nil {
		t.Fatalf("recovery: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`jetstream ran again ([0-9.]+) s after the SIGKILL`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no measurement in %q", out)
	}
	s, _ := strconv.ParseFloat(string(m[1]), 64)
	if s < 25 || s > 60 {
		t.Fatalf("ran again after %.1f s, want within 25–60 s (the 30 s defaults)", s)
	}
}
