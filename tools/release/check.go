package main

import (
	"fmt"
	"go/parser"
	"go/token"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/mod/modfile"
)

// check returns what would stop a user from installing the modules as
// published, or make one version of a module build against another
// version of a module it needs than the one it was tested with.
func (s *moduleSet) check() []string {
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if s.version == "v0.0.0" {
		report("versions.txt: v0.0.0 is a placeholder, not a release")
	}
	var used []string
	for _, u := range s.goWork.Use {
		used = append(used, path.Clean(filepath.ToSlash(u.Path)))
	}
	goVersion := ""
	if s.goWork.Go != nil {
		goVersion = s.goWork.Go.Version
	}
	// go.work replaces each published module at the release version by its
	// directory: the go command reads the go.mod of every version a module
	// requires, even in a workspace, and the release version is not
	// published while it is being prepared. Nothing else is replaced.
	want := map[string]string{}
	for _, m := range s.published() {
		want[m.path()+"@"+s.version] = m.replacement()
	}
	for _, r := range s.goWork.Replace {
		key := r.Old.Path + "@" + r.Old.Version
		if dir, ok := want[key]; !ok || path.Clean(r.New.Path) != path.Clean(dir) || r.New.Version != "" {
			report("go.work: replace %s => %s: only each published module at %s by its directory (go run ./tools/release set %s)", key, r.New.Path, s.version, s.version)
		}
		delete(want, key)
	}
	for key, dir := range want {
		report("go.work: no replace %s => %s (go run ./tools/release set %s)", key, dir, s.version)
	}
	for _, m := range s.modules {
		if !slices.Contains(used, m.dir) {
			report("go.work: %s is in versions.txt but not used by the workspace", m.dir)
		}
	}
	for _, u := range used {
		if !slices.ContainsFunc(s.modules, func(m *mod) bool { return m.dir == u }) {
			report("versions.txt: the workspace uses %s, which is neither published nor private", u)
		}
	}

	position := map[*mod]int{}
	for i, m := range s.modules {
		position[m] = i
	}
	for _, m := range s.modules {
		where := m.goModPath(".")
		if got := m.file.Module.Mod.Path; got != m.path() {
			report("%s: module %s, want %s (its directory)", where, got, m.path())
		}
		switch {
		case m.file.Go == nil:
			report("%s: no go directive (want go %s, as go.work)", where, goVersion)
		case m.file.Go.Version != goVersion:
			report("%s: go %s, want go %s, the one go directive of every module (go.work's)", where, m.file.Go.Version, goVersion)
		}
		if m.file.Toolchain != nil {
			report("%s: toolchain %s: a dependency's toolchain line is ignored; leave the choice to the user", where, m.file.Toolchain.Name)
		}
		for _, r := range m.file.Replace {
			report("%s: replace %s: go ignores a dependency's replace directives and go install refuses them; the workspace (go.work) is for development", where, r.Old.Path)
		}
		for _, r := range s.ours(m) {
			dep := s.byPath(r.Mod.Path)
			switch {
			case dep == nil:
				report("%s: requires %s, which versions.txt does not name", where, r.Mod.Path)
				continue
			case r.Mod.Version != s.version:
				report("%s: requires %s %s, want %s, the release version", where, r.Mod.Path, r.Mod.Version, s.version)
			}
			if !dep.published {
				report("%s: requires %s, which is never published", where, r.Mod.Path)
			}
			if m.published && position[dep] > position[m] {
				report("versions.txt: %s requires %s, so it must come after it (tags are pushed in that order)", m.dir, dep.dir)
			}
		}
	}
	problems = append(problems, s.checkImports()...)
	return problems
}

// checkImports reports each import, in any .go file of the tree (tests
// included), of another module's internal package, or of a module that the
// importing module does not require: the workspace builds both, a user's
// build does neither.
func (s *moduleSet) checkImports() []string {
	all, err := s.files()
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	fset := token.NewFileSet()
	for _, f := range all {
		if !strings.HasSuffix(f, ".go") || skipped(f) {
			continue
		}
		dir := path.Dir(f)
		importer := s.owner(path.Join(prefix, dir))
		if dir == "." {
			importer = s.byPath(prefix)
		}
		if importer == nil {
			problems = append(problems, fmt.Sprintf("%s: in no module of versions.txt", f))
			continue
		}
		file, err := parser.ParseFile(fset, filepath.Join(s.root, filepath.FromSlash(f)), nil, parser.ImportsOnly)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		for _, spec := range file.Imports {
			p, _ := strconv.Unquote(spec.Path.Value)
			owner := s.owner(p)
			if owner == nil || owner == importer {
				continue
			}
			if isInternal(strings.TrimPrefix(p, owner.path())) {
				problems = append(problems, fmt.Sprintf("%s: imports %s, an internal package of module %s", f, p, owner.path()))
			}
			if !slices.ContainsFunc(s.ours(importer), func(r *modfile.Require) bool { return r.Mod.Path == owner.path() }) {
				problems = append(problems, fmt.Sprintf("%s: imports %s without requiring module %s", f, p, owner.path()))
			}
		}
	}
	return problems
}

// skipped reports whether the go command ignores f: testdata, and
// directories whose names start with "." or "_".
func skipped(f string) bool {
	for _, elem := range strings.Split(path.Dir(f), "/") {
		if elem == "testdata" || strings.HasPrefix(elem, "_") || (strings.HasPrefix(elem, ".") && elem != ".") {
			return true
		}
	}
	return false
}

// isInternal reports whether the package path below a module's path has an
// internal element.
func isInternal(rest string) bool {
	return slices.Contains(strings.Split(rest, "/"), "internal")
}
