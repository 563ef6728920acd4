#!/bin/bash
# cowsnap(8) covers what --help says: every verb `cowsnap --help` lists has
# its subsection in the built page (BUILD/cli/man/cowsnap.8), with every
# option and argument `cowsnap VERB --help` lists, and the global options
# are there. The page's COMMANDS are generated from that output
# (cli/man/cowsnap_man.py); this checks the result independently of the
# generator, on the roff itself.
. "$(dirname "$0")/lib.sh"
: "${MAN_PAGE:?path of the built cowsnap.8}"
[[ -s $MAN_PAGE ]] || { echo "FAIL: $MAN_PAGE missing or empty" >&2; exit 1; }

# The roff as text: font changes dropped, roff's escaped hyphens plain.
sed -e 's/\\f[BIRP]//g' -e 's/\\f([A-Z][A-Z]//g' -e 's/\\-/-/g' -e 's/\\&//g' -e 's/\\(aq/'"'"'/g' \
  -e 's/\\ / /g' -e 's/\\s[-+]\?[0-9]//g' "$MAN_PAGE" >"$WORK/page.txt"

# help_entries SECTION [VERB]: the first column of a --help section.
help_entries() {
  "$COWSNAP" ${2:+"$2"} --help | awk -v section="$1:" '
    $0 == section { inside = 1; next }
    /^[^ ]/ || /^$/ { inside = 0 }
    inside && /^  [^ ]/ { sub(/^  /, ""); sub(/   .*/, ""); print }'
}

# subsection VERB: the page's text from ".SS VERB" to the next heading.
subsection() {
  awk -v verb="$1" '
    /^\.S[HS] / { name = $2; gsub(/"/, "", name); inside = ($1 == ".SS" && name == verb); next }
    inside' "$WORK/page.txt"
}

verbs=$(help_entries Subcommands | sed 's/ .*//; s/,$//')
[[ $(wc -l <<<"$verbs") -ge 20 ]] || fail "cowsnap --help lists only: $verbs"
for verb in $verbs; do
  text=$(subsection "$verb")
  if [[ -z $text ]]; then
    fail "no subsection for the verb $verb"
    continue
  fi
  grep -qF "cowsnap $verb " <<<"$text" || fail "$verb: no synopsis line"
  summary=$("$COWSNAP" "$verb" --help | head -n 1)
  grep -qF "$summary" <<<"$(tr '\n' ' ' <<<"$text" | tr -s ' ')" || fail "$verb: description '$summary' missing"
  for section in Options Positionals; do
    while read -r spec; do
      [[ -n $spec ]] || continue
      for name in $(sed 's/ .*//' <<<"$spec" | tr ',' ' '); do
        grep -qE "(^|[ ,\"])$(sed 's/[.[\*^$]/\\&/g' <<<"$name")([ ,\"]|$)" <<<"$text" ||
          fail "$verb: $section entry $name is not in the page"
      done
    done <<<"$(help_entries "$section" "$verb")"
  done
done
echo "checked $(wc -w <<<"$verbs") verbs"

global=$(awk '/^\.SH "?GLOBAL OPTIONS/ { inside = 1; next } /^\.SH / { inside = 0 } inside' "$WORK/page.txt")
for name in $(help_entries Options | sed 's/ .*//' | tr ',' ' '); do
  grep -qE "(^|[ ,\"])$name([ ,\"]|$)" <<<"$global" || fail "global option $name is not in GLOBAL OPTIONS"
done
# The hand-written sections the page promises.
for heading in NAME SYNOPSIS DESCRIPTION "GLOBAL OPTIONS" COMMANDS EXAMPLES "EXIT STATUS" FILES ENVIRONMENT "SEE ALSO"; do
  grep -qE "^\.SH \"?$heading\"?\$" "$WORK/page.txt" || fail "no section $heading"
done
for file in ROOT/devices ROOT/lvm.conf ROOT/archive/ ROOT/backup/; do
  grep -qF "$file" "$WORK/page.txt" || fail "FILES does not name $file"
done
# Every variable the CLI reads (grep getenv cli/).
environment=$(awk '/^\.SH "?ENVIRONMENT/ { inside = 1; next } /^\.SH / { inside = 0 } inside' "$WORK/page.txt")
for var in COWSNAP_ROOT XDG_DATA_HOME HOME COWSNAP_NBDKIT_PLUGIN PATH; do
  grep -qE "^\.IP \"?$var\"?" <<<"$environment" || fail "ENVIRONMENT does not describe $var"
done
finish
