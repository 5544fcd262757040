# Sourced by tidy.sh and install-check.sh: a go command that sees this
# repository's published modules as a user's would once they are tagged,
# from a file-based module proxy built from a tree, outside the workspace.
#
#   localproxy_env TMPDIR
#
# exports GOWORK=off, a module cache of its own under TMPDIR (so that the
# unreleased versions never reach the real one), and a GOPROXY that serves
# this repository's modules from TMPDIR/proxy, then what the real module
# cache already holds, then the usual proxy. The checksum database does
# not know unreleased versions: GONOSUMDB leaves this repository's out.

localproxy_env() {
	local tmp=$1 cache proxy
	cache=$(go env GOMODCACHE)
	proxy=$(go env GOPROXY)
	export GOWORK=off GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod"
	export GOMODCACHE="$tmp/modcache"
	export GOPROXY="file://$tmp/proxy,file://$cache/cache/download,$proxy"
	export GONOSUMDB=github.com/stripewebhook/stripewebhook
}

# localproxy_cleanup TMPDIR removes TMPDIR, module cache included (its files
# are read-only).
localproxy_cleanup() {
	chmod -R u+w "$1" 2>/dev/null || true
	rm -rf "$1"
}
