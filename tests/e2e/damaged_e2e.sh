#!/bin/bash
# One damaged snapshot store does not take its VG offline: the server
# serves the origin and the healthy snapshot (which still copies out), the
# damaged snapshot's export fails every request with EIO (the server's log
# names the reason), lvs shows it as a device without a table (state d) and
# warns, offline too; the damaged store is never written, so it stays
# refused after a restart.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COWSNAP=${COWSNAP:-${1:-}}
PLUGIN=${PLUGIN:-${2:-}}
source "$here/e2e_lib.sh"
e2e_require_tools nbdkit nbdinfo nbdcopy
e2e_init

PV=$WORK/pv0.img
pattern() { head -c 8M /dev/zero | tr '\0' "$1" >"$WORK/$2"; }
pattern A a.img
pattern C c.img
csq pvcreate --size 64M "$PV" >/dev/null
csq vgcreate -s 4M vgd "$PV" >/dev/null
csq lvcreate -L 8M -n data vgd >/dev/null
e2e_server_start
nbdcopy "$WORK/a.img" "$(uri vgd/data)"
csq lvcreate -L 12M -s -n good vgd/data >/dev/null
csq lvcreate -L 12M -s -n bad vgd/data >/dev/null
e2e_server_stop

# Bad magic in the damaged store's header (its first sector on the PV).
read -r _ _ _ _ sector < <(csq dmsetup table vgd-bad-cow | sed 's/^vgd-bad-cow: //')
printf '\xef\xbe\xad\xde' | dd of="$PV" bs=1 seek=$((sector * 512)) conv=notrunc status=none
cow_sum=$(dd if="$PV" bs=512 skip="$sector" count=24576 status=none | md5sum)
reason="Failed to read snapshot metadata: .*bad magic 0xdeadbeef"

csq lvs vgd >"$WORK/lvs.out" 2>"$WORK/lvs.err" || e2e_fail "offline lvs failed: $(cat "$WORK/lvs.err")"
grep -q "WARNING: Snapshot vgd/bad cannot be used: $reason" "$WORK/lvs.err" ||
  e2e_fail "offline lvs did not warn: $(cat "$WORK/lvs.err")"
e2e_expect_eq "$(e2e_lv_field vgd/bad lv_attr 2>/dev/null)" "swi---s---" "offline attr of the damaged snapshot"
echo "offline lvs warns about the damaged store"

for run in 1 2; do
  e2e_server_start
  grep -q "snapshot vgd/bad not activated: $reason" "$WORK/nbdkit.log" ||
    e2e_fail "the server did not log the damaged snapshot: $(cat "$WORK/nbdkit.log")"
  nbdinfo --list "nbd+unix://?socket=$SOCK" >"$WORK/list" 2>&1
  for lv in data good bad; do grep -q "^export=\"vgd/$lv\":" "$WORK/list" || e2e_fail "vgd/$lv not exported"; done
  e2e_expect_eq "$(e2e_lv_field vgd/bad lv_attr 2>/dev/null)" "swi-d-s---" "online attr of the damaged snapshot"
  csq lvs vgd 2>&1 >/dev/null | grep -q "WARNING: Snapshot vgd/bad cannot be used: $reason" ||
    e2e_fail "online lvs did not warn"
  if nbdcopy "$(uri vgd/bad)" "$WORK/bad.img" 2>"$WORK/bad.err"; then e2e_fail "vgd/bad was readable"; fi
  grep -qi "input/output error" "$WORK/bad.err" || e2e_fail "reading vgd/bad: $(cat "$WORK/bad.err")"
  grep -q "snapshot vgd/bad is not active: $reason" "$WORK/nbdkit.log" || e2e_fail "EIO reason not logged"
  nbdcopy "$WORK/c.img" "$(uri vgd/data)"
  nbdcopy "$(uri vgd/good)" "$WORK/good.img"
  cmp -s "$WORK/good.img" "$WORK/a.img" || e2e_fail "vgd/good does not read the data before the writes"
  nbdcopy "$(uri vgd/data)" "$WORK/data.img"
  cmp -s "$WORK/data.img" "$WORK/c.img" || e2e_fail "vgd/data does not read what was written"
  e2e_server_stop
  echo "run $run: origin and healthy snapshot served (copy-out works); the damaged one fails with EIO"
done
e2e_expect_eq "$(dd if="$PV" bs=512 skip="$sector" count=24576 status=none | md5sum)" "$cow_sum" \
  "the damaged store was written"
echo "the damaged store was never written"
echo PASS
