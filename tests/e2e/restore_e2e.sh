#!/bin/bash
# vgcfgrestore with a server running: refused while the VG has active LVs
# (the server's devices would no longer match the metadata), disks
# untouched; online changes are archived by the server like offline ones;
# once the server is stopped the restore goes through. No root needed.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COWSNAP=${COWSNAP:-${1:-}}
PLUGIN=${PLUGIN:-${2:-}}
source "$here/e2e_lib.sh"
e2e_require_tools nbdkit
e2e_init

csq pvcreate --size 256M "$WORK/pv0.img" >/dev/null
csq vgcreate vgr "$WORK/pv0.img" >/dev/null
csq lvcreate -L 16M -n orig vgr >/dev/null
e2e_server_start
csq lvcreate -L 8M -s -n snap vgr/orig >/dev/null || e2e_fail "online snapshot"
ls "$ROOT"/archive/vgr_00001-*.vg >/dev/null 2>&1 || e2e_fail "the server did not archive the online change"
before=$(md5sum <"$WORK/pv0.img")
rc=0
out=$(csq vgcfgrestore vgr 2>&1) || rc=$?
e2e_expect_eq "$rc" 5 "vgcfgrestore with active LVs: exit code"
e2e_expect_eq "$out" '  WARNING: Found 2 active volume(s) in volume group "vgr".
  Restoring VG with active LVs, may cause mismatch with its metadata.
  Restore aborted.' "vgcfgrestore with active LVs: messages"
e2e_expect_eq "$(md5sum <"$WORK/pv0.img")" "$before" "the PV after a refused restore"
echo "vgcfgrestore refused while a server has the VG's LVs active"
e2e_server_stop
first=$(ls "$ROOT"/archive/vgr_00001-*.vg)  # before the snapshot
out=$(csq vgcfgrestore -f "$first" vgr 2>&1) || e2e_fail "vgcfgrestore after the server stopped: $out"
e2e_expect_eq "$(csq lvs --noheadings -o lv_name vgr | tr -d ' ')" "orig" "the restored VG (before the snapshot)"
echo "vgcfgrestore once the server is stopped"
echo PASS
