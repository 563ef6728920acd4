#!/bin/bash
# `cowsnap serve` finds its plugin (cli/serve_command.cc, find_plugin):
# --plugin, then $COWSNAP_NBDKIT_PLUGIN, then the one of a build tree, then
# the installed one, in nbdkit's plugindir seen from the binary
# (BIN/$PLUGINDIR_FROM_BINDIR: a copy of cowsnap in a scratch prefix). The
# nbdkit it runs is /bin/echo, which prints the command line it was given.
. "$(dirname "$0")/lib.sh"
: "${PLUGIN:?path of the built nbdkit-cowsnap-plugin.so}"
: "${PLUGINDIR_FROM_BINDIR:?the plugin directory relative to the bin directory}"
: "${INSTALLED_PLUGIN:?nbdkit-cowsnap-plugin.so in nbdkit plugindir (compiled in)}"
mkdir -p "$ROOT"

# plugin_of COWSNAP [ARGS]: the plugin path serve hands to nbdkit.
plugin_of() {
  local bin=$1
  shift
  "$bin" --root "$ROOT" serve --nbdkit /bin/echo "$@" 2>"$WORK/serve.err" | tr ' ' '\n' | grep -- '-plugin\|\.so$' | head -n 1
}

expect_eq "a build tree's plugin" "$PLUGIN" "$(plugin_of "$COWSNAP")"
expect_eq "--plugin first" "/x/p.so" "$(COWSNAP_NBDKIT_PLUGIN=/y/e.so plugin_of "$COWSNAP" --plugin /x/p.so)"
expect_eq "then COWSNAP_NBDKIT_PLUGIN" "/y/e.so" "$(COWSNAP_NBDKIT_PLUGIN=/y/e.so plugin_of "$COWSNAP")"

# An installed layout under a scratch prefix.
prefix=$WORK/prefix
mkdir -p "$prefix/bin" "$prefix/bin/$PLUGINDIR_FROM_BINDIR"
ln "$COWSNAP" "$prefix/bin/cowsnap" 2>/dev/null || cp "$COWSNAP" "$prefix/bin/cowsnap"
plugindir=$(cd "$prefix/bin/$PLUGINDIR_FROM_BINDIR" && pwd)
if [[ ! -e $INSTALLED_PLUGIN ]]; then
  out=$("$prefix/bin/cowsnap" --root "$ROOT" serve --nbdkit /bin/echo 2>&1)
  expect_eq "exit status with no plugin anywhere" 5 "$?"
  grep -q "cannot find nbdkit-cowsnap-plugin.so (use --plugin PATH or COWSNAP_NBDKIT_PLUGIN); tried:" <<<"$out" ||
    fail "no plugin: $out"
  grep -qF "    $plugindir/nbdkit-cowsnap-plugin.so" <<<"$out" || fail "the install layout was not tried: $out"
  grep -qF "    $INSTALLED_PLUGIN" <<<"$out" || fail "nbdkit's plugindir was not tried: $out"
  expect_eq "each place tried once" "" "$(grep '^    /' <<<"$out" | sort | uniq -d)"
fi
: >"$plugindir/nbdkit-cowsnap-plugin.so"
expect_eq "the installed plugin, seen from the binary" "$plugindir/nbdkit-cowsnap-plugin.so" \
  "$(plugin_of "$prefix/bin/cowsnap")"
# Beside the binary wins over the install layout.
: >"$prefix/bin/nbdkit-cowsnap-plugin.so"
expect_eq "a plugin beside the binary" "$prefix/bin/nbdkit-cowsnap-plugin.so" "$(plugin_of "$prefix/bin/cowsnap")"
finish
