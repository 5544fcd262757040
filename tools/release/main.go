// Command release keeps this repository's modules releasable as one set, at
// one version, the way River and opentelemetry-go release theirs: every
// module requires the others at the release version (never a placeholder,
// never a replace directive), go.work is for development only, and nested
// modules are tagged with their directory as prefix (rivqueue/v0.1.0).
// RELEASING.md says when to run each command; run them from the root of the
// repository:
//
//	go run ./tools/release check          # the rules below, on the working tree
//	go run ./tools/release set v0.2.0     # the version in versions.txt, every go.mod and go.sum
//	go run ./tools/release tags           # the tags of the release, in the order to push them
//	go run ./tools/release proxy DIR      # a file-based module proxy of the published modules
//	go run ./tools/release version        # the release version
//	go run ./tools/release packages       # the public packages of the published modules
//
// versions.txt names the version and the modules: published ones in tag
// order (each after those it requires), private ones (benchmarks,
// examples, this tool) that are in the workspace but never tagged.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: release check | set VERSION | tags | proxy DIR | version | packages")
	}
	set, err := load(".")
	if err != nil {
		return err
	}
	switch cmd, rest := args[0], args[1:]; {
	case cmd == "check" && len(rest) == 0:
		problems := set.check()
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, p)
		}
		if len(problems) > 0 {
			return fmt.Errorf("%d problems: the modules would not install as published", len(problems))
		}
		return nil
	case cmd == "set" && len(rest) == 1:
		return set.setVersion(rest[0])
	case cmd == "tags" && len(rest) == 0:
		for _, m := range set.published() {
			fmt.Println(m.tag(set.version))
		}
		return nil
	case cmd == "proxy" && len(rest) == 1:
		return set.writeProxy(rest[0])
	case cmd == "version" && len(rest) == 0:
		fmt.Println(set.version)
		return nil
	case cmd == "packages" && len(rest) == 0:
		pkgs, err := set.publicPackages()
		for _, p := range pkgs {
			fmt.Println(p)
		}
		return err
	}
	return fmt.Errorf("unknown command or arguments: %q", args)
}
