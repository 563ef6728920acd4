#!/bin/bash
# The seed experiment at CLI level: the VG, the origin and its two
# snapshots, then 40 MiB written into the origin: the 32 MiB snapshot
# overflows (swi-I-s--- 100.00), the 64 MiB one stays valid (~62.76%).
. "$(dirname "$0")/lib.sh"
: "${SEED_WRITER:?path of seed_writer}"

out=$(cs pvcreate --size 6625M "$WORK/pv0.img" 2>&1)
expect_eq "pvcreate" "  Physical volume \"$WORK/pv0.img\" successfully created." "$out"
out=$(cs vgcreate -s 32M vgsrv "$WORK/pv0.img" 2>&1)
expect_eq "vgcreate" '  Volume group "vgsrv" successfully created' "$out"
out=$(cs vgs -o vg_name,vg_extent_count,vg_size,vg_free_count 2>&1)
expect_eq "207 extents, <6.47g" "  VG    #Ext VSize  Free
  vgsrv  207 <6.47g  207" "$out"
out=$(cs lvcreate -L 64M -n b64m vgsrv 2>&1)
expect_eq "lvcreate b64m" '  Logical volume "b64m" created.' "$out"
out=$(cs lvcreate -L 32M -s -n sb64m vgsrv/b64m 2>&1)
expect_eq "lvcreate sb64m" '  Logical volume "sb64m" created.' "$out"
out=$(cs lvcreate -L 64M -s -n sb64m2 vgsrv/b64m 2>&1)
expect_eq "lvcreate sb64m2" '  Logical volume "sb64m2" created.' "$out"

out=$(cs lvs 2>&1)
expect_eq "lvs after the snapshots" "  LV     VG    Attr       LSize  Pool Origin Data%  Meta%  Move Log Cpy%Sync Convert
  b64m   vgsrv owi---s--- 64.00m                                                    
  sb64m  vgsrv swi---s--- 32.00m      b64m   0.00                                   
  sb64m2 vgsrv swi---s--- 64.00m      b64m   0.00                                   " "$out"

"$SEED_WRITER" "$ROOT" vgsrv b64m 40 || fail "seed_writer"

out=$(cs lvs 2>&1)
expect_eq "lvs after 40 MiB into the origin" "  LV     VG    Attr       LSize  Pool Origin Data%  Meta%  Move Log Cpy%Sync Convert
  b64m   vgsrv owi---s--- 64.00m                                                    
  sb64m  vgsrv swi-I-s--- 32.00m      b64m   100.00                                 
  sb64m2 vgsrv swi---s--- 64.00m      b64m   62.76                                  " "$out"
echo "$out"

out=$(cs lvs --noheadings -o lv_attr,snap_percent vgsrv/sb64m 2>&1)
expect_eq "Snap% alias" "  swi-I-s--- 100.00" "$out"
out=$(cs dmsetup status vgsrv-sb64m 2>&1)
expect_eq "dmsetup status of the invalid snapshot" "0 131072 snapshot Invalid" "$out"
# lvm2 2.03.16 leaves "Allocated to snapshot" out for an invalid snapshot.
out=$(cs lvdisplay vgsrv/sb64m 2>&1)
expect_eq "lvdisplay of the invalid snapshot" "  LV snapshot status     INACTIVE destination for b64m
  COW-table LE           1
  Snapshot chunk size    4.00 KiB" "$(grep -E 'snapshot status|COW-table LE|Allocated|chunk size' <<<"$out")"
out=$(cs lvdisplay vgsrv/sb64m2 2>&1)
expect_eq "lvdisplay of the valid one" "  Allocated to snapshot  62.76%" "$(grep Allocated <<<"$out")"
out=$(cs lvs --noheadings -o lv_name,snapshot_invalid,lv_active,lv_permissions vgsrv 2>&1)
expect_eq "snapshot_invalid" "  b64m   unknown                 writeable
  sb64m  snapshot invalid        writeable
  sb64m2                         writeable" "$out"
finish
