package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/zip"
)

// setVersion writes version into versions.txt, into go.work's replace
// directives (each published module at version by its directory) and into
// every requirement of a module of the set on another, then the go.sum lines of those
// requirements: the hashes the go command will find in the modules' zips
// at that version, computed from the tree, a module after those it needs
// (a module's go.sum is in its own zip). A module's go.sum is in no other
// module's zip, so the release commit carries them all and every tag
// points at it.
func (s *moduleSet) setVersion(version string) error {
	if !semver.IsValid(version) || semver.Canonical(version) != version {
		return fmt.Errorf("%q is not a semantic version such as v0.1.0", version)
	}
	data, err := os.ReadFile(filepath.Join(s.root, "versions.txt"))
	if err != nil {
		return err
	}
	data = regexp.MustCompile(`(?m)^version .*$`).ReplaceAll(data, []byte("version "+version))
	if err := os.WriteFile(filepath.Join(s.root, "versions.txt"), data, 0o644); err != nil {
		return err
	}
	for _, r := range s.goWork.Replace {
		if s.byPath(r.Old.Path) != nil {
			if err := s.goWork.DropReplace(r.Old.Path, r.Old.Version); err != nil {
				return err
			}
		}
	}
	s.version = version
	s.goWork.Cleanup()
	work := modfile.Format(s.goWork.Syntax)
	work = append(bytes.TrimRight(work, "\n"), "\n\n// Each published module at the release version is its directory: the go\n// command reads the go.mod of every required version, even here.\nreplace (\n"...)
	for _, m := range s.published() {
		work = fmt.Appendf(work, "\t%s %s => %s\n", m.path(), version, m.replacement())
	}
	work = append(work, ")\n"...)
	if err := os.WriteFile(filepath.Join(s.root, "go.work"), work, 0o644); err != nil {
		return err
	}
	for _, m := range s.modules {
		for _, r := range s.ours(m) {
			if err := m.file.AddRequire(r.Mod.Path, version); err != nil {
				return err
			}
		}
		m.file.Cleanup()
		out, err := m.file.Format()
		if err != nil {
			return err
		}
		if err := os.WriteFile(m.goModPath(s.root), out, 0o644); err != nil {
			return err
		}
	}
	return s.writeSums()
}

// writeSums replaces the go.sum lines of every module for the set's
// modules with the hashes of the set's modules at its version.
func (s *moduleSet) writeSums() error {
	all, err := s.files()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "release-zip-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	sums := map[*mod][]string{}   // the two go.sum lines of each module hashed so far
	for _, m := range s.modules { // published first, in tag order: each after those it needs
		if err := s.writeSum(m, sums); err != nil {
			return err
		}
		if !m.published {
			continue
		}
		zipFile := filepath.Join(tmp, "m.zip")
		if err := s.writeZip(zipFile, m, all); err != nil {
			return err
		}
		h, err := dirhash.HashZip(zipFile, dirhash.Hash1)
		if err != nil {
			return err
		}
		gomod, err := os.ReadFile(m.goModPath(s.root))
		if err != nil {
			return err
		}
		hmod, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(gomod)), nil })
		if err != nil {
			return err
		}
		sums[m] = []string{
			fmt.Sprintf("%s %s %s", m.path(), s.version, h),
			fmt.Sprintf("%s %s/go.mod %s", m.path(), s.version, hmod),
		}
	}
	return nil
}

// writeSum rewrites m's go.sum: the lines for the set's modules replaced by
// those of the modules m needs.
func (s *moduleSet) writeSum(m *mod, sums map[*mod][]string) error {
	file := filepath.Join(s.root, filepath.FromSlash(m.dir), "go.sum")
	data, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 0 && s.byPath(f[0]) == nil {
			lines = append(lines, l)
		}
	}
	for _, dep := range s.closure(m) {
		if sums[dep] == nil {
			return fmt.Errorf("%s needs %s, which versions.txt lists after it or does not publish", m.dir, dep.dir)
		}
		lines = append(lines, sums[dep]...)
	}
	if len(lines) == 0 {
		return nil
	}
	slices.Sort(lines)
	return os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// writeZip writes m's module zip at the set's version, as the go command
// would make it from a checkout of the tag.
func (s *moduleSet) writeZip(name string, m *mod, all []string) error {
	var files []zip.File
	for _, f := range filesOf(m, all) {
		files = append(files, zipFile{rel: f, abs: filepath.Join(s.root, filepath.FromSlash(m.dir), filepath.FromSlash(f))})
	}
	out, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := zip.Create(out, module.Version{Path: m.path(), Version: s.version}, files); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", m.dir, err)
	}
	return out.Close()
}

type zipFile struct{ rel, abs string }

func (f zipFile) Path() string                 { return f.rel }
func (f zipFile) Lstat() (os.FileInfo, error)  { return os.Lstat(f.abs) }
func (f zipFile) Open() (io.ReadCloser, error) { return os.Open(f.abs) }
