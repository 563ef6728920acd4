#!/bin/bash
# The fault matrix, control operations: SIGKILL of the server during each
# online operation -- lvcreate -s, lvremove, lvextend of a snapshot,
# lvrename, lvchange -an, lvchange -ay, lvcreate of a plain LV -- while four
# NBD connections write to the origin (concurrent_model.py --op). Each
# operation is hit three ways: paused right before its handler, paused
# right after it and before the reply (COWSNAP_TEST_PAUSE_AT, see
# control_server.h), and at a random delay of 0-12 ms with no pause (inside
# it). After a restart:
#  - `cowsnap lvs` works and the VG's LVs are exactly those before the
#    operation or exactly those after it, never a mix;
#  - every acknowledged write to the origin is there (a block holds its
#    last acknowledged version or the one in flight at the kill);
#  - the snapshots taken before read exactly their pre-snapshot content,
#    and a snapshot the operation created, when it survived, holds only
#    versions from before or during the request.
# FAULT_ROUNDS=N: random-delay rounds per operation (default 2).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COWSNAP=${COWSNAP:-${1:-}}
PLUGIN=${PLUGIN:-${2:-}}
source "$here/e2e_lib.sh"
e2e_require_tools nbdkit nbdcopy
/usr/bin/python3 -c 'import nbd' 2>/dev/null || e2e_skip "python3-libnbd is not installed"
e2e_init
M=$((1024 * 1024))

# The starting point of every round: origin "data" (random content), its
# snapshots "keep" and "victim" taken online, a plain LV "plain".
csq pvcreate --size 96M "$WORK/pv0.img" >/dev/null
csq vgcreate -s 4M vgf "$WORK/pv0.img" >/dev/null
csq lvcreate -L 8M -n data vgf >/dev/null
csq lvcreate -L 4M -n plain vgf >/dev/null
e2e_server_start
head -c 8M /dev/urandom >"$WORK/data0.img"
nbdcopy "$WORK/data0.img" "$(uri vgf/data)"
# The writers write only the first half of the origin (WRITE_BLOCKS), so
# no store of 8 MiB or more ever fills. "victim" starts below the maximum
# COW size of an 8 MiB origin (12 MiB: 8 MiB and 9 chunks of metadata,
# rounded up to extents) so that lvextend has room to grow it.
WRITE_BLOCKS=1024
csq lvcreate -L 12M -s -n keep vgf/data >/dev/null
csq lvcreate -L 8M -s -n victim vgf/data >/dev/null
e2e_server_stop
cp --sparse=always "$WORK/pv0.img" "$WORK/template.img"
lv_set() { csq lvs --noheadings -o lv_name,lv_size vgf | awk '{print $1, $2}' | sort; }
BEFORE=$(lv_set)

# after_set OP: the LVs once OP has committed.
after_set() {
  case $1 in
    snapshot) printf '%s\nnew 8.00m\n' "$BEFORE" | sort ;;
    remove) grep -v '^victim ' <<<"$BEFORE" ;;
    extend) sed 's/^victim 8.00m$/victim 12.00m/' <<<"$BEFORE" ;;
    rename) sed 's/^victim /renamed /' <<<"$BEFORE" | sort ;;
    deactivate | activate) echo "$BEFORE" ;;
    create) printf '%s\nfresh 4.00m\n' "$BEFORE" | sort ;;
  esac
}

op_json() {
  case $1 in
    snapshot) echo "{\"op\": \"lvcreate_snapshot\", \"vg\": \"vgf\", \"origin\": \"data\", \"lv\": \"new\", \"size_bytes\": $((8 * M))}" ;;
    remove) echo '{"op": "lvremove", "vg": "vgf", "lv": "victim", "force": true}' ;;
    extend) echo "{\"op\": \"lvextend\", \"vg\": \"vgf\", \"lv\": \"victim\", \"size_bytes\": $((12 * M))}" ;;
    rename) echo '{"op": "lvrename", "vg": "vgf", "lv": "victim", "new_lv": "renamed"}' ;;
    deactivate) echo '{"op": "lvchange", "vg": "vgf", "lv": "plain", "active": false}' ;;
    activate) echo '{"op": "lvchange", "vg": "vgf", "lv": "plain", "active": true}' ;;
    create) echo "{\"op\": \"lvcreate\", \"vg\": \"vgf\", \"lv\": \"fresh\", \"size_bytes\": $((4 * M))}" ;;
  esac
}

op_name() { op_json "$1" | sed 's/.*"op": "\([a-z_]*\)".*/\1/'; }

# round OP MODE: MODE before|after (paused there) or a delay in seconds.
ROUNDS=0
round() {
  local op=$1 mode=$2 delay pause="" got snap wait_pause=()
  cp --sparse=always "$WORK/template.img" "$WORK/pv0.img"
  case $mode in
    before | after)
      pause="$(op_name "$op"):$mode" delay=0.2 wait_pause=(--kill-on-log "$WORK/nbdkit.log")
      # activate: the lvchange -an that prepares it is the first lvchange.
      if [[ $op == activate ]]; then pause+=":2"; fi
      ;;
    *) delay=$mode ;;
  esac
  COWSNAP_TEST_PAUSE_AT=$pause e2e_server_start
  if [[ $op == activate ]]; then csq lvchange -a n vgf/plain || e2e_fail "$op/$mode: lvchange -an first"; fi
  /usr/bin/python3 "$here/concurrent_model.py" "$SOCK" "$ROOT/control.sock" vgf data $((8 * M)) \
    --crash "$SERVER_PID" --write-blocks "$WRITE_BLOCKS" --op "$(op_json "$op")" --kill-after "$delay" "${wait_pause[@]}" --state "$WORK/model.json" \
    >"$WORK/model.log" 2>&1 || e2e_fail "$op/$mode: the writers failed: $(cat "$WORK/model.log")"
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  e2e_server_start
  got=$(lv_set) || e2e_fail "$op/$mode: cowsnap lvs failed after the restart"
  local outcome
  if [[ "$got" == "$BEFORE" && "$got" == "$(after_set "$op")" ]]; then
    outcome="no metadata change"
  elif [[ "$got" == "$BEFORE" ]]; then
    outcome="before"
  elif [[ "$got" == "$(after_set "$op")" ]]; then
    outcome="after"
  else
    e2e_fail "$op/$mode: the LVs are neither those before nor those after the operation: $(echo "$got" | tr '\n' ' ')"
  fi
  # Paused before the handler nothing was committed; paused after it,
  # everything was (the reply alone was lost).
  case $mode/$outcome in
    before/after | after/before) e2e_fail "$op/$mode: the outcome is \"$outcome\"" ;;
  esac
  csq vgs vgf >/dev/null || e2e_fail "$op/$mode: cowsnap vgs failed"
  /usr/bin/python3 "$here/concurrent_model.py" "$SOCK" "$ROOT/control.sock" vgf data $((8 * M)) \
    --check "$WORK/model.json" >"$WORK/check.log" 2>&1 ||
    e2e_fail "$op/$mode: origin or new snapshot wrong after the restart: $(cat "$WORK/check.log")"
  for snap in keep victim renamed; do
    grep -q "^$snap " <<<"$got" || continue
    e2e_expect_eq "$(e2e_lv_field "vgf/$snap" lv_attr | cut -c 1-5)" "swi-a" "$op/$mode: $snap's state"
    nbdcopy "$(uri "vgf/$snap")" "$WORK/snap.img"
    cmp -s "$WORK/snap.img" "$WORK/data0.img" || e2e_fail "$op/$mode: $snap does not read its pre-snapshot content"
  done
  e2e_server_kill
  ROUNDS=$((ROUNDS + 1))
  printf 'ok %-10s %-6s -> %s (%s)\n' "$op" "$mode" "$outcome" "$(grep -o 'killed [^,]*, [0-9]* writes in flight' "$WORK/model.log")"
}

start=$(e2e_now)
for op in snapshot remove extend rename deactivate activate create; do
  round "$op" before
  round "$op" after
  for ((r = 0; r < ${FAULT_ROUNDS:-2}; r++)); do
    round "$op" "$(awk -v s="$RANDOM" 'BEGIN {srand(s); printf "%.3f", rand() * 0.012}')"
  done
done
echo "$ROUNDS rounds in $(e2e_elapsed "$start") s"
echo PASS
