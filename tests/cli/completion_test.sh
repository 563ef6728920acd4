#!/bin/bash
# The bash completion (cli/completion/cowsnap.bash): sourced into this
# shell, its function called with COMP_WORDS/COMP_CWORD as bash sets them,
# COMPREPLY checked. Verbs and options come from the binary's --help, VG,
# LV and PV names from a scratch root named by --root or $COWSNAP_ROOT.
. "$(dirname "$0")/lib.sh"
: "${COMPLETION:?path of cli/completion/cowsnap.bash}"
# shellcheck source=/dev/null
. "$COMPLETION"
complete -p cowsnap | grep -q -- '-F _cowsnap' || fail "cowsnap is not registered: $(complete -p cowsnap)"

# complete WORD...: the replies for the last word (the one being typed),
# sorted, one line.
complete_line() {
  COMP_WORDS=("$COWSNAP" "$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMPREPLY=()
  _cowsnap
  printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}

expect_eq "verbs starting lvc" "lvchange lvconvert lvcreate" "$(complete_line lvc)"

all=$(complete_line "")
for verb in $("$COWSNAP" --help | awk '/^Subcommands:/ {s = 1; next} s && /^  [^ ]/ {print $1}' | tr -d ,); do
  grep -qw -- "$verb" <<<"$all" || fail "verb $verb is not offered"
done
expect_eq "global options" "--root" "$(complete_line --ro)"
expect_eq "lvcreate --s..." "--size --snapshot" "$(complete_line lvcreate --s)"
expect_eq "choices CLI11 lists" "basic json" "$(complete_line lvs --reportformat "")"
expect_eq "--opt=value" "default" "$(complete_line config --type = d)"
expect_eq "lvchange -a" "ay n y" "$(complete_line lvchange -a "")"
expect_eq "lvchange -p" "r rw" "$(complete_line lvchange -p "")"
expect_eq "serve -p is a port" "" "$(complete_line serve -p "")"
expect_eq "dmsetup" "status table" "$(complete_line dmsetup "")"

# Names, from a root with two VGs.
cs pvcreate --size 64M "$WORK/a.img" "$WORK/b.img" >/dev/null || fail "pvcreate"
cs vgcreate vga "$WORK/a.img" >/dev/null && cs vgcreate vgb "$WORK/b.img" >/dev/null || fail "vgcreate"
cs lvcreate -L 8M -n data vga >/dev/null && cs lvcreate -L 4M -s -n snap vga/data >/dev/null &&
  cs lvcreate -L 8M -n my-lv vgb >/dev/null || fail "lvcreate"
expect_eq "VGs after --root" "vga vgb" "$(complete_line --root "$ROOT" vgs "")"
expect_eq "--root=DIR" "vga vgb" "$(complete_line --root = "$ROOT" vgremove "")"
expect_eq "LVs for lvremove" "vga/data vga/snap vgb/my-lv" "$(complete_line --root "$ROOT" lvremove "")"
expect_eq "LVs of one VG" "vga/data vga/snap" "$(complete_line --root "$ROOT" lvextend -L +4M vga/)"
expect_eq "lvs takes both" "vga vga/data vga/snap vgb vgb/my-lv" "$(complete_line --root "$ROOT" lvs -o lv_name "")"
expect_eq "lvcreate: a VG" "vga vgb" "$(complete_line --root "$ROOT" lvcreate -L 4M "")"
expect_eq "lvcreate -s: an origin" "vga/data" "$(complete_line --root "$ROOT" lvcreate -s -L 4M vga/d)"
expect_eq "lvrename VG OLD" "data snap" "$(complete_line --root "$ROOT" lvrename vga "")"
expect_eq "lvrename VG/OLD NEW" "" "$(complete_line --root "$ROOT" lvrename vga/data "")"
expect_eq "vgextend VG" "vga vgb" "$(complete_line --root "$ROOT" vgextend "")"
expect_eq "dm names" "vga-data vga-snap vgb-my--lv" "$(complete_line --root "$ROOT" dmsetup table "")"
expect_eq "PVs" "$WORK/a.img $WORK/b.img" "$(complete_line --root "$ROOT" pvs "")"
expect_eq "COWSNAP_ROOT" "vga vgb" "$(COWSNAP_ROOT=$ROOT complete_line vgck "")"
expect_eq "config nodes" "activation/snapshot_autoextend_percent activation/snapshot_autoextend_threshold" \
  "$(complete_line --root "$ROOT" config activation/s)"

# A root that does not exist is not created by completing.
expect_eq "no names from a missing root" "" "$(complete_line --root "$WORK/none" lvs "")"
[[ ! -e $WORK/none ]] || fail "completing created the root $WORK/none"
finish
