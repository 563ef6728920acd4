# Shared by store_read_test.sh and store_write_test.sh (sourced after
# ../e2e/e2e_lib.sh and kernel_lib.sh): a cowsnap server on $SOCK, the
# deterministic writer and reader (store_tool.py), what cowsnap shows of a
# VG, and the comparisons with what the guest's kernel showed
# (store_guest_lib.sh's store_record, in the same layout).

STORE_TOOL=$KERNEL_TESTS_DIR/store_tool.py

store_require_tools() {
  e2e_require_tools nbdkit /usr/bin/python3
  /usr/bin/python3 -c 'import nbd' 2>/dev/null || e2e_skip "python3-libnbd is not installed"
}

# store_serve_start: `cowsnap serve` on the Unix socket $SOCK; returns once
# the NBD and control sockets are there.
store_serve_start() {
  rm -f "$SOCK"
  "$COWSNAP" --root "$ROOT" serve --plugin "$PLUGIN" --socket "$SOCK" 2>>"$WORK/nbdkit.log" &
  SERVER_PID=$!
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -S "$SOCK" && -S "$ROOT/control.sock" ]] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || e2e_fail "cowsnap serve exited at start-up (see $WORK/nbdkit.log)"
    sleep 0.1
  done
  e2e_fail "cowsnap serve did not create $SOCK"
}

# store_serve_stop: SIGTERM, and the server must exit cleanly (its stores
# flushed and closed).
store_serve_stop() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || e2e_fail "cowsnap serve did not exit cleanly on SIGTERM"
  SERVER_PID=""
}

# store_write EXPORT:OFFSET:LENGTH:SEED...: pattern writes over NBD, each
# export flushed afterwards.
store_write() { /usr/bin/python3 "$STORE_TOOL" write "$SOCK" "$@"; }

# store_lvs VG: its LV names, sorted.
store_lvs() { csq lvs --noheadings -o lv_name "$1" | tr -d ' ' | LC_ALL=C sort; }

# store_cowsnap_sums VG: "VG/LV SHA256|EIO" for every LV, as served.
store_cowsnap_sums() {
  local vg=$1 lv exports=()
  for lv in $(store_lvs "$vg"); do exports+=("$vg/$lv"); done
  /usr/bin/python3 "$STORE_TOOL" sums "$SOCK" "${exports[@]}"
}

# store_compare WHAT EXPECTED_FILE ACTUAL_FILE: byte for byte, a diff
# (with line ends shown) when they differ.
store_compare() {
  local what=$1 want=$2 got=$3
  if ! cmp -s "$want" "$got"; then
    echo "---- $what: cowsnap (-) against the kernel (+), line ends shown as \$ ----" >&2
    diff -u <(cat -A "$want") <(cat -A "$got") >&2 || true
    e2e_fail "$what differ"
  fi
  echo "same $what: $(wc -l <"$got") lines"
}

# store_map_table COWSNAP_TABLE GUEST_DIR: cowsnap's table with the devices
# in target parameters written as the guest's major:minor (the PV file as
# /dev/vda's). This is the only normalisation: cowsnap names the PV file
# and the dm devices where the kernel prints major:minor.
store_map_table() {
  /usr/bin/python3 "$STORE_TOOL" map-table "$2/devs" "$PV=$(cat "$2/vda")" <"$1"
}

# store_check_sums SUMS_FILE: every line is "VG/LV SHA256" or "VG/LV EIO".
store_check_sums() {
  grep -qvE '^[^ ]+ ([0-9a-f]{64}|EIO)$' "$1" && e2e_fail "malformed checksum lines in $1: $(cat "$1")"
  return 0
}

# store_expect_status GUEST_DIR DM_NAME PATTERN: the kernel's status of one
# device matches PATTERN (grep -E, after "NAME: ").
store_expect_status() {
  grep -qE "^$2: $3\$" "$1/status" || e2e_fail "the kernel's status of $2 is not /$3/: $(grep "^$2: " "$1/status")"
}

# store_make_vg VG: VG on a 200 MiB PV file ($PV) with 1 MiB extents, a
# 16 MiB origin and a 4 MiB plain LV, both filled with their patterns
# (1 and 9) through a server, which is left running.
store_make_vg() {
  csq pvcreate --size 200M "$PV" >/dev/null
  csq vgcreate -s 1M "$1" "$PV" >/dev/null
  csq lvcreate -L 16M -n origin "$1" >/dev/null
  csq lvcreate -L 4M -n plain "$1" >/dev/null
  store_serve_start
  store_write "$1/origin:0:$((16 << 20)):1" "$1/plain:0:$((4 << 20)):9"
}
