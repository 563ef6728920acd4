#!/usr/bin/env bash
# kernel_reports: cowsnap's lvs, vgs and pvs print byte for byte what
# lvm2 prints for the same VG, live on both sides. On the host: a cowsnap
# VG on one PV file (an origin, two snapshots with Data% well above zero
# from writes through `cowsnap serve`, a plain LV), reported by cowsnap
# while the server has every LV active and none open. Then the server
# stops, the PV file becomes the guest's /dev/vda, lvm2 activates the VG
# (`vgchange -ay`: the kernel's dm-snapshot loads the stores cowsnap
# wrote) and runs the same report commands. The only thing normalised is
# the PV's name: the PV file's path is 8 characters long, as /dev/vda is,
# so replacing one by the other keeps every column's width.
source "$(dirname "$0")/../e2e/e2e_lib.sh"
source "$(dirname "$0")/kernel_lib.sh"
kernel_require_guest
e2e_require_tools nbdkit
/usr/bin/python3 -c "import nbd" 2>/dev/null || e2e_skip "no libnbd Python binding (python3-libnbd) for /usr/bin/python3"
e2e_init

# The PV file: /tmp/XXX, as long as the guest's /dev/vda.
PV=$(mktemp /tmp/XXX)
pv_cleanup() {
  local rc=$?
  set +e
  rm -f "$PV"
  (exit "$rc")
  e2e_cleanup # exits with $?
}
trap pv_cleanup EXIT
[[ ${#PV} -eq 8 ]] || e2e_fail "PV path $PV is not 8 characters long"
GUEST_DEV=/dev/vda

# The report commands compared: a tag (the output's file name), then the
# command's words, the same for cowsnap and lvm2.
COMMANDS=$WORK/scratch/commands
mkdir -p "$WORK/scratch" "$WORK/cowsnap"
cat >"$COMMANDS" <<'LIST'
lvs lvs
lvs_a lvs -a
lvs_devices_chunk lvs -o +devices,chunk_size
lvs_a_devices_chunk lvs -a -o +devices,chunk_size
lvs_units_k lvs --units k
lvs_units_b lvs --units b
lvs_units_h lvs --units h
lvs_json lvs --reportformat json
lvs_json_a_devices_chunk lvs -a -o +devices,chunk_size --reportformat json
lvs_sep lvs -o lv_name,lv_attr,origin,data_percent,lv_size --noheadings --separator ,
lvs_noheadings lvs -a --noheadings
lvs_sep_units_k lvs -o lv_name,lv_attr,origin,snap_percent,lv_size,chunk_size --noheadings --separator , --units k --nosuffix
vgs vgs
vgs_a vgs -a
vgs_noheadings vgs --noheadings -o +vg_extent_size,vg_extent_count,vg_free_count
vgs_units_k vgs --units k
vgs_units_b vgs --units b
vgs_units_h vgs --units h
vgs_json vgs --reportformat json
pvs pvs
pvs_a pvs -a
pvs_noheadings pvs --noheadings -o +dev_size,pe_start,pv_pe_count,pv_pe_alloc_count
pvs_units_k pvs --units k
pvs_units_b pvs --units b
pvs_units_h pvs --units h
pvs_json pvs --reportformat json
LIST

# ---- the host: a cowsnap VG, live under `cowsnap serve` ----
truncate -s 256M "$PV"
csq pvcreate "$PV" >/dev/null
csq vgcreate -s 4M vgk "$PV" >/dev/null
csq lvcreate -L 32M -n origin vgk >/dev/null
csq lvcreate -L 16M -s -n snap1 vgk/origin >/dev/null
csq lvcreate -L 12M -n plain vgk >/dev/null

serve_start() {
  "$COWSNAP" --root "$ROOT" serve --socket "$SOCK" 2>>"$WORK/serve.log" &
  SERVER_PID=$!
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -S "$ROOT/control.sock" && -S "$SOCK" ]] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || e2e_fail "cowsnap serve exited at start-up: $(tail -n 3 "$WORK/serve.log")"
    sleep 0.1
  done
  e2e_fail "cowsnap serve did not create its sockets"
}

# nbd_write LV OFFSET_MIB MIB: MIB MiB of a repeating pattern at OFFSET_MIB
# (libnbd's Python binding, of the system's python3).
nbd_write() {
  /usr/bin/python3 - "$(uri "vgk/$1")" "$2" "$3" <<'PY' || e2e_fail "writing $3 MiB into vgk/$1 through the server"
import sys
import nbd

h = nbd.NBD()
h.connect_uri(sys.argv[1])
mib = 1 << 20
first, count = int(sys.argv[2]), int(sys.argv[3])
for i in range(first, first + count):
    h.pwrite(bytes([i % 251 + 1]) * mib, i * mib)
h.flush()
h.shutdown()
PY
}

serve_start
nbd_write origin 0 4
# The second snapshot (16 KiB chunks) is taken online, after those writes,
# then gets its own share of a second write.
csq lvcreate -L 8M -s -c 16K -n snap2 vgk/origin >/dev/null || e2e_fail "online lvcreate -s of snap2"
nbd_write origin 8 1
nbd_write plain 0 1
e2e_wait_unused vgk
attrs=$(csq lvs --noheadings -o lv_name,lv_attr vgk | tr -s ' ')
e2e_expect_eq "$attrs" " origin owi-a-s---
 plain -wi-a-----
 snap1 swi-a-s---
 snap2 swi-a-s---" "cowsnap's live LV states (all active, none open)"

# Each command's output (PV name normalised) and exit code (must be 0).
while read -r tag args; do
  rc=0
  # shellcheck disable=SC2086 # the command's words
  csq $args >"$WORK/cowsnap/$tag.out" 2>"$WORK/cowsnap/$tag.err" || rc=$?
  echo "$rc" >"$WORK/cowsnap/$tag.rc"
  sed -i "s#$PV#$GUEST_DEV#g" "$WORK/cowsnap/$tag.out"
done <"$COMMANDS"
e2e_server_stop

# ---- the guest: lvm2 activates the same VG and reports it ----
cat >"$WORK/guest.sh" <<'GUEST'
#!/bin/bash
source "$1/guest_lib.sh"
# lvm2 looks at the one PV only (pvs -a lists every device it scans).
sed -i 's#^devices {#devices {\n  filter = [ "a|^/dev/vda$|", "r|.*|" ]#' "$LVM_SYSTEM_DIR/lvm.conf"
out=$GUEST_SCRATCH/lvm2
mkdir -p "$out"
lvm version | head -n 1
vgchange -ay vgk >"$GUEST_SCRATCH/vgchange.log" 2>&1 || guest_fail "vgchange -ay vgk: $(cat "$GUEST_SCRATCH/vgchange.log")"
dmsetup status | sort
# One lvm process for all the reports (each new process costs seconds
# under TCG): lvm's shell reads the commands from stdin, each after a
# `version`, whose lines (up to "Configuration:") mark where one report
# ends and the next begins. A last `version` takes the shell's own
# closing newline. The shell prints every report in the basic format
# whatever --reportformat says, so the JSON reports run on their own.
grep -v -- '--reportformat json' "$GUEST_SCRATCH/commands" >"$GUEST_SCRATCH/shell.list"
grep -- '--reportformat json' "$GUEST_SCRATCH/commands" >"$GUEST_SCRATCH/json.list"
while read -r tag args; do
  # shellcheck disable=SC2086
  $args >"$out/$tag.out" 2>"$out/$tag.err" || guest_fail "lvm2 $args: $(cat "$out/$tag.err")"
done <"$GUEST_SCRATCH/json.list"
awk '{print "version"; sub(/^[^ ]+ /, ""); print} END {print "version"}' "$GUEST_SCRATCH/shell.list" >"$GUEST_SCRATCH/shell.in"
lvm <"$GUEST_SCRATCH/shell.in" >"$GUEST_SCRATCH/shell.out" 2>"$GUEST_SCRATCH/shell.err" ||
  guest_fail "lvm shell: $(cat "$GUEST_SCRATCH/shell.err")"
awk -v dir="$out" -v list="$GUEST_SCRATCH/shell.list" '
  BEGIN { n = 0; while ((getline line < list) > 0) { split(line, w, " "); tag[++n] = w[1] } i = 0; skip = 0 }
  /^  LVM version:/ { i++; skip = 1; if (i <= n) printf "" > (dir "/" tag[i] ".out"); next }
  skip && /^  Configuration:/ { skip = 0; next }
  skip { next }
  i >= 1 && i <= n { print > (dir "/" tag[i] ".out") }' "$GUEST_SCRATCH/shell.out"
if [[ -s "$GUEST_SCRATCH/shell.err" ]]; then
  echo "lvm shell's stderr:"
  cat "$GUEST_SCRATCH/shell.err"
fi
vgchange -an vgk >>"$GUEST_SCRATCH/vgchange.log" 2>&1 || guest_fail "vgchange -an vgk: $(cat "$GUEST_SCRATCH/vgchange.log")"
GUEST
chmod +x "$WORK/guest.sh"

guest_start=$(e2e_now)
set +e
in_guest --disk "$PV" --scratch "$WORK/scratch" --timeout 240 "$WORK/guest.sh" "$KERNEL_TESTS_DIR"
rc=$?
set -e
[[ $rc -ne 125 ]] || e2e_fail "the guest did not run the script"
[[ $rc -eq 0 ]] || e2e_fail "the guest script failed (exit $rc)"
echo "guest run (boot, vgchange -ay, the reports, vgchange -an): $(e2e_elapsed "$guest_start")s"

# ---- compare ----
mismatches=0
n=0
while read -r tag args; do
  n=$((n + 1))
  theirs=$WORK/scratch/lvm2/$tag.out
  ours=$WORK/cowsnap/$tag.out
  [[ -s "$theirs" ]] || e2e_fail "lvm2 printed nothing for: $args"
  our_rc=$(cat "$WORK/cowsnap/$tag.rc")
  if [[ $our_rc -ne 0 ]]; then
    echo "DIFFERENT: $args: cowsnap exits $our_rc: $(cat "$WORK/cowsnap/$tag.err")"
    mismatches=$((mismatches + 1))
  elif cmp -s "$theirs" "$ours"; then
    echo "same: $args"
  else
    echo "DIFFERENT: $args (--- lvm2 2.03 in the guest, +++ cowsnap on the host)"
    diff -u --label "lvm2: $args" --label "cowsnap: $args" "$theirs" "$ours" || true
    mismatches=$((mismatches + 1))
  fi
done <"$COMMANDS"
[[ $mismatches -eq 0 ]] || e2e_fail "$mismatches of $n reports differ from lvm2's"
echo "lvm2's view, the same as cowsnap's:"
cat "$WORK/scratch/lvm2/lvs_a_devices_chunk.out"
echo "PASS: $n lvs/vgs/pvs reports byte-identical to lvm2's (PV name $PV shown as $GUEST_DEV)"
