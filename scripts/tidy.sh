#!/usr/bin/env bash
# go mod tidy for every module of the repository, as it would run outside the
# workspace: the modules require each other at the release version, which no
# proxy serves before the release, so each module is tidied against a local
# proxy of the working tree (scripts/localproxy.sh), in tag order, with the
# go.sum lines of this repository's modules written by
# `go run ./tools/release set` before each and at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/localproxy.sh
version=$(go run ./tools/release version)
localproxy_version=$version
dirs=$(awk '$1 == "publish" || $1 == "private" {print $2}' versions.txt)
tmp=$(mktemp -d)
trap 'localproxy_cleanup "$tmp"' EXIT
(
	localproxy_env "$tmp"
	for d in $dirs; do
		rm -rf "$tmp/proxy"
		( # the workspace's go, for the tool: the go.sum lines as the tree now is, and its proxy
			unset GOWORK GOFLAGS GOPROXY GONOSUMDB
			go run ./tools/release set "$version"
			go run ./tools/release proxy "$tmp/proxy"
		)
		localproxy_forget # the zips of the previous round
		echo "tidy: $d" >&2
		(cd "$d" && go mod tidy)
	done
)
go run ./tools/release set "$version"
