package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tree writes files (path → content) under a new directory: a repository
// that is not a git checkout, as an export is.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// good is a set that passes the check: the core, a store requiring it, and
// a private example requiring both.
func good() map[string]string {
	return map[string]string{
		"versions.txt": "version v0.1.0\npublish .\npublish store\nprivate examples\n",
		"go.work": "go 1.26.0\n\nuse (\n\t.\n\t./examples\n\t./store\n)\n\nreplace (\n" +
			"\tgithub.com/stripewebhook/stripewebhook v0.1.0 => ./\n" +
			"\tgithub.com/stripewebhook/stripewebhook/store v0.1.0 => ./store\n)\n",
		"go.mod":           "module github.com/stripewebhook/stripewebhook\n\ngo 1.26.0\n",
		"core.go":          "package core\n\nimport _ \"github.com/stripewebhook/stripewebhook/internal/x\"\n",
		"internal/x/x.go":  "package x\n",
		"store/go.mod":     "module github.com/stripewebhook/stripewebhook/store\n\ngo 1.26.0\n\nrequire github.com/stripewebhook/stripewebhook v0.1.0\n",
		"store/store.go":   "package store\n\nimport _ \"github.com/stripewebhook/stripewebhook\"\n",
		"examples/go.mod":  "module github.com/stripewebhook/stripewebhook/examples\n\ngo 1.26.0\n\nrequire (\n\tgithub.com/stripewebhook/stripewebhook v0.1.0\n\tgithub.com/stripewebhook/stripewebhook/store v0.1.0\n)\n",
		"examples/main.go": "package main\n\nimport _ \"github.com/stripewebhook/stripewebhook/store\"\n\nfunc main() {}\n",
	}
}

func check(t *testing.T, files map[string]string) []string {
	t.Helper()
	s, err := load(tree(t, files))
	if err != nil {
		t.Fatal(err)
	}
	return s.check()
}

func TestCheckPassesAReleasableSet(t *testing.T) {
	if problems := check(t, good()); len(problems) > 0 {
		t.Fatalf("problems in a releasable set:\n%s", strings.Join(problems, "\n"))
	}
}

func TestCheckReportsEachMistake(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(map[string]string)
		want string
	}{
		{"replace directive", func(f map[string]string) {
			f["store/go.mod"] += "\nreplace github.com/stripewebhook/stripewebhook => ../\n"
		}, "replace github.com/stripewebhook/stripewebhook: go ignores"},
		{"placeholder version", func(f map[string]string) {
			f["store/go.mod"] = strings.Replace(f["store/go.mod"], "stripewebhook v0.1.0", "stripewebhook v0.0.0", 1)
		}, "requires github.com/stripewebhook/stripewebhook v0.0.0, want v0.1.0"},
		{"two versions", func(f map[string]string) {
			f["examples/go.mod"] = strings.Replace(f["examples/go.mod"], "store v0.1.0", "store v0.0.9", 1)
		}, "requires github.com/stripewebhook/stripewebhook/store v0.0.9, want v0.1.0"},
		{"another go directive", func(f map[string]string) {
			f["store/go.mod"] = strings.Replace(f["store/go.mod"], "go 1.26.0", "go 1.25.0", 1)
		}, "go 1.25.0, want go 1.26.0"},
		{"another module's internal package", func(f map[string]string) {
			f["store/store_test.go"] = "package store\n\nimport _ \"github.com/stripewebhook/stripewebhook/internal/x\"\n"
		}, "store/store_test.go: imports github.com/stripewebhook/stripewebhook/internal/x, an internal package of module github.com/stripewebhook/stripewebhook"},
		{"a module not required", func(f map[string]string) {
			f["store/go.mod"] = "module github.com/stripewebhook/stripewebhook/store\n\ngo 1.26.0\n"
		}, "store/store.go: imports github.com/stripewebhook/stripewebhook without requiring module"},
		{"a published module requiring a private one", func(f map[string]string) {
			f["store/go.mod"] += "\nrequire github.com/stripewebhook/stripewebhook/examples v0.1.0\n"
		}, "requires github.com/stripewebhook/stripewebhook/examples, which is never published"},
		{"tag order", func(f map[string]string) {
			f["versions.txt"] = "version v0.1.0\npublish store\npublish .\nprivate examples\n"
		}, "store requires ., so it must come after it"},
		{"a module outside the set", func(f map[string]string) {
			f["go.work"] = strings.Replace(f["go.work"], "\t./store\n", "\t./store\n\t./other\n", 1)
		}, "the workspace uses other"},
		{"a missing workspace replace", func(f map[string]string) {
			f["go.work"] = strings.Replace(f["go.work"], "\tgithub.com/stripewebhook/stripewebhook/store v0.1.0 => ./store\n", "", 1)
		}, "go.work: no replace github.com/stripewebhook/stripewebhook/store@v0.1.0"},
		{"the placeholder as release", func(f map[string]string) {
			for name, content := range f {
				f[name] = strings.ReplaceAll(content, "v0.1.0", "v0.0.0")
			}
		}, "v0.0.0 is a placeholder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := good()
			tc.edit(files)
			problems := check(t, files)
			for _, p := range problems {
				if strings.Contains(p, tc.want) {
					return
				}
			}
			t.Fatalf("want a problem containing %q, got:\n%s", tc.want, strings.Join(problems, "\n"))
		})
	}
}

// TestSetThenCheck: set writes one version everywhere, go.work's replace
// directives and the go.sum lines included, and the set it leaves passes.
func TestSetThenCheck(t *testing.T) {
	root := tree(t, good())
	s, err := load(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.setVersion("v0.2.0"); err != nil {
		t.Fatal(err)
	}
	if s, err = load(root); err != nil {
		t.Fatal(err)
	}
	if problems := s.check(); len(problems) > 0 {
		t.Fatalf("problems after set:\n%s", strings.Join(problems, "\n"))
	}
	for _, f := range []string{"store/go.mod", "examples/go.mod", "go.work"} {
		b, _ := os.ReadFile(filepath.Join(root, f))
		if strings.Contains(string(b), "v0.1.0") || !strings.Contains(string(b), "v0.2.0") {
			t.Errorf("%s after set v0.2.0:\n%s", f, b)
		}
	}
	sum, _ := os.ReadFile(filepath.Join(root, "examples", "go.sum"))
	for _, want := range []string{"github.com/stripewebhook/stripewebhook v0.2.0 h1:", "github.com/stripewebhook/stripewebhook/store v0.2.0/go.mod h1:"} {
		if !strings.Contains(string(sum), want) {
			t.Errorf("examples/go.sum lacks %q:\n%s", want, sum)
		}
	}
	if err := s.setVersion("0.2"); err == nil {
		t.Error("set accepted 0.2, which is not a semantic version")
	}
}
