# Sourced by tidy.sh and install-check.sh: a go command that sees this
# repository's published modules as a user's would once they are tagged,
# from a file-based module proxy built from a tree, outside the workspace.
#
#   localproxy_version=VERSION
#   localproxy_env TMPDIR
#
# exports GOWORK=off and a GOPROXY that serves this repository's modules
# from TMPDIR/proxy, then the usual proxy. The module cache is the real one,
# so that what the workspace compiled is reused; this repository's modules
# at VERSION are removed from it now and by localproxy_cleanup, so that
# neither an earlier check's zips nor these unreleased ones are ever used
# in their place. The checksum database does not know unreleased versions:
# GONOSUMDB leaves this repository's modules out.

localproxy_env() {
	local tmp=$1 proxy
	proxy=$(go env GOPROXY)
	localproxy_forget
	export GOWORK=off GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod"
	export GOPROXY="file://$tmp/proxy,$proxy"
	export GONOSUMDB=github.com/stripewebhook/stripewebhook
	# The go command indexes each module of the cache once, by path and
	# version, taking it as immutable: a later run's zip of the same version,
	# with files added, would be built from the earlier file list.
	export GODEBUG="${GODEBUG:+$GODEBUG,}goindex=0"
}

# localproxy_forget removes this repository's modules at the version from
# the module cache (its files are read-only).
localproxy_forget() {
	local cache d
	cache=$(go env GOMODCACHE)
	[ -n "${localproxy_version:-}" ] || return 0
	for d in "$cache/github.com/stripewebhook" "$cache/cache/download/github.com/stripewebhook"; do
		[ -d "$d" ] || continue
		find "$d" -depth \( -name "*@$localproxy_version" -o -name "$localproxy_version.*" -o -name list \) -exec chmod -R u+w {} \; -exec rm -rf {} \;
	done
}

# localproxy_cleanup TMPDIR removes TMPDIR and what localproxy_env let into
# the module cache.
localproxy_cleanup() {
	localproxy_forget
	chmod -R u+w "$1" 2>/dev/null || true
	rm -rf "$1"
}
