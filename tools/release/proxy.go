package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/module"
)

// writeProxy lays out, under dir, a module proxy (GOPROXY=file://dir) that
// serves every published module at the set's version, zipped from the
// tree as the go command would zip a checkout of its tag.
func (s *moduleSet) writeProxy(dir string) error {
	all, err := s.files()
	if err != nil {
		return err
	}
	info, _ := json.Marshal(struct {
		Version string
		Time    time.Time
	}{s.version, time.Now().UTC().Truncate(time.Second)})
	for _, m := range s.published() {
		escaped, err := module.EscapePath(m.path())
		if err != nil {
			return err
		}
		v := filepath.Join(dir, filepath.FromSlash(escaped), "@v")
		if err := os.MkdirAll(v, 0o755); err != nil {
			return err
		}
		gomod, err := os.ReadFile(m.goModPath(s.root))
		if err != nil {
			return err
		}
		for name, data := range map[string][]byte{"list": []byte(s.version + "\n"), s.version + ".info": info, s.version + ".mod": gomod} {
			if err := os.WriteFile(filepath.Join(v, name), data, 0o644); err != nil {
				return err
			}
		}
		if err := s.writeZip(filepath.Join(v, s.version+".zip"), m, all); err != nil {
			return err
		}
	}
	return nil
}

// publicPackages lists the importable packages of the published modules:
// no internal package, no command, no package of a private module.
func (s *moduleSet) publicPackages() ([]string, error) {
	var patterns []string
	for _, m := range s.published() {
		patterns = append(patterns, "./"+m.dir+"/...")
	}
	cmd := exec.Command("go", append([]string{"list", "-f", "{{if ne .Name \"main\"}}{{.ImportPath}}{{end}}"}, patterns...)...)
	cmd.Dir = s.root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w", err)
	}
	var pkgs []string
	for _, p := range strings.Fields(string(out)) {
		if owner := s.owner(p); owner != nil && owner.published && !isInternal(strings.TrimPrefix(p, owner.path())) {
			pkgs = append(pkgs, p)
		}
	}
	return pkgs, nil
}
