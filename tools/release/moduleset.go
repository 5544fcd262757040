package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
)

// prefix is the path of the root module; every module of the repository is
// prefix + "/" + its directory.
const prefix = "github.com/stripewebhook/stripewebhook"

// moduleSet is versions.txt with the go.mod files it names.
type moduleSet struct {
	root    string // the repository's root directory
	version string
	modules []*mod // published ones first, in tag order
	goWork  *modfile.WorkFile
}

type mod struct {
	dir       string // slash-separated, relative to the root: "." or "rivqueue"
	published bool
	file      *modfile.File
}

func (m *mod) path() string {
	if m.dir == "." {
		return prefix
	}
	return prefix + "/" + m.dir
}

// tag is the module's tag for version: nested modules' tags carry their
// directory, as the go command looks them up.
func (m *mod) tag(version string) string {
	if m.dir == "." {
		return version
	}
	return m.dir + "/" + version
}

// replacement is the directory that go.work puts in m's place.
func (m *mod) replacement() string {
	if m.dir == "." {
		return "./"
	}
	return "./" + m.dir
}

func (m *mod) goModPath(root string) string {
	return filepath.Join(root, filepath.FromSlash(m.dir), "go.mod")
}

func load(root string) (*moduleSet, error) {
	s := &moduleSet{root: root}
	f, err := os.Open(filepath.Join(root, "versions.txt"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("versions.txt:%d: want a keyword and a value", n)
		}
		switch fields[0] {
		case "version":
			s.version = fields[1]
		case "publish", "private":
			m := &mod{dir: path.Clean(fields[1]), published: fields[0] == "publish"}
			data, err := os.ReadFile(m.goModPath(root))
			if err != nil {
				return nil, fmt.Errorf("versions.txt:%d: %w", n, err)
			}
			if m.file, err = modfile.Parse(m.goModPath(root), data, nil); err != nil {
				return nil, err
			}
			s.modules = append(s.modules, m)
		default:
			return nil, fmt.Errorf("versions.txt:%d: unknown keyword %q", n, fields[0])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !semver.IsValid(s.version) || semver.Canonical(s.version) != s.version {
		return nil, fmt.Errorf("versions.txt: version %q is not a semantic version such as v0.1.0", s.version)
	}
	data, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		return nil, err
	}
	if s.goWork, err = modfile.ParseWork("go.work", data, nil); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *moduleSet) published() []*mod {
	var out []*mod
	for _, m := range s.modules {
		if m.published {
			out = append(out, m)
		}
	}
	return out
}

// byPath returns the module of the set whose path is p.
func (s *moduleSet) byPath(p string) *mod {
	for _, m := range s.modules {
		if m.path() == p {
			return m
		}
	}
	return nil
}

// owner returns the module of the set that holds the package importPath:
// the one with the longest path that is a prefix of it.
func (s *moduleSet) owner(importPath string) *mod {
	var best *mod
	for _, m := range s.modules {
		p := m.path()
		if (importPath == p || strings.HasPrefix(importPath, p+"/")) && (best == nil || len(p) > len(best.path())) {
			best = m
		}
	}
	return best
}

// ours lists the requirements of m on modules of this repository.
func (s *moduleSet) ours(m *mod) []*modfile.Require {
	var out []*modfile.Require
	for _, r := range m.file.Require {
		if r.Mod.Path == prefix || strings.HasPrefix(r.Mod.Path, prefix+"/") {
			out = append(out, r)
		}
	}
	return out
}

// closure returns the modules of the set that m requires, directly or
// through another, in the set's order.
func (s *moduleSet) closure(m *mod) []*mod {
	seen := map[*mod]bool{}
	var walk func(*mod)
	walk = func(m *mod) {
		for _, r := range s.ours(m) {
			if dep := s.byPath(r.Mod.Path); dep != nil && !seen[dep] {
				seen[dep] = true
				walk(dep)
			}
		}
	}
	walk(m)
	var out []*mod
	for _, dep := range s.modules {
		if seen[dep] {
			out = append(out, dep)
		}
	}
	return out
}

// files lists the files of the tree that a module zip may hold, relative to
// the root: the files git tracks or would track (ignored build outputs
// left out), or every file when the tree is not a git checkout (an export).
func (s *moduleSet) files() ([]string, error) {
	if _, err := os.Stat(filepath.Join(s.root, ".git")); err == nil {
		cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
		cmd.Dir = s.root
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("git ls-files: %w", err)
		}
		var files []string
		for _, f := range bytes.Split(out, []byte{0}) {
			if len(f) > 0 {
				if _, err := os.Lstat(filepath.Join(s.root, string(f))); err == nil { // not deleted
					files = append(files, string(f))
				}
			}
		}
		return files, nil
	}
	var files []string
	err := filepath.WalkDir(s.root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(s.root, p)
		files = append(files, filepath.ToSlash(rel))
		return err
	})
	slices.Sort(files)
	return files, err
}

// filesOf returns the files of m's directory and below, relative to it;
// the zip writer leaves out those of nested modules.
func filesOf(m *mod, all []string) []string {
	var out []string
	for _, f := range all {
		switch {
		case m.dir == ".":
			out = append(out, f)
		case strings.HasPrefix(f, m.dir+"/"):
			out = append(out, strings.TrimPrefix(f, m.dir+"/"))
		}
	}
	return out
}
