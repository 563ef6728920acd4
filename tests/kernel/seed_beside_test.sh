#!/usr/bin/env bash
# kernel_seed_beside: the seed's volumes on the kernel's LVM and on cowsnap,
# side by side, under the same block writes. In one guest run (Debian's 6.1
# kernel, the host's lvm2): a sparse PV file as /dev/vda gets vgsrv (32 MiB
# extents), b64m (64 MiB), a fixed 64 MiB pattern, the snapshots sb64m
# (32 MiB) and sb64m2 (64 MiB) with 4 KiB chunks; then the write sequence
# below goes onto them with dd oflag=direct. The same sequence, by the same
# dd in the same guest, goes through the kernel's nbd driver onto cowsnap's
# b64m and sb64m2 (the cowsnap server on the host, TCP 127.0.0.1:PORT; the
# VG, the pattern and the snapshots made on the host beforehand). Right
# after the snapshots are made and after the writes, lvm2's
# `lvs -o lv_name,lv_attr,origin,data_percent` and `dmsetup status` in the
# guest must equal cowsnap's (`cowsnap lvs`, `cowsnap dmsetup status` on
# the host); the devices' contents too (sha256 of b64m and sb64m2).
#
# The write sequence: 4 KiB at 0, 4 KiB, 60 MiB and 0 again on the origin;
# 40 MiB (bs=1M) at 8 MiB on the origin, which overflows sb64m; 4 KiB at
# 62 MiB and 10 MiB on the origin; 4 KiB at 30 MiB and 63 MiB on sb64m2.
source "$(dirname "$0")/../e2e/e2e_lib.sh"
source "$(dirname "$0")/kernel_lib.sh"
kernel_require_guest
e2e_require_tools nbdkit nbdinfo nbdcopy python3
e2e_init
SCRATCH=$WORK/scratch
mkdir -p "$SCRATCH"

# The data: a 64 MiB base, 40 MiB for the big write, small 4 KiB blocks.
python3 - "$SCRATCH" <<'PY'
import random, sys
rng = random.Random(4042)
d = sys.argv[1]
for name, size in (("base.img", 64 << 20), ("w40.img", 40 << 20), ("w4k.img", 8 * 4096)):
    with open(f"{d}/{name}", "wb") as f:
        f.write(rng.randbytes(size))
PY

kernel_seed_vg_on_tcp
nbdcopy "$SCRATCH/base.img" "nbd://127.0.0.1:$port/vgsrv/b64m" || e2e_fail "writing the base pattern into cowsnap's b64m"
csq lvcreate -L 32M -s -c 4k -n sb64m vgsrv/b64m >/dev/null
csq lvcreate -L 64M -s -c 4k -n sb64m2 vgsrv/b64m >/dev/null

# report DIR STAGE: cowsnap's lvs and dmsetup status into DIR/cowsnap-STAGE.*
cowsnap_report() {
  csq lvs --noheadings -o lv_name,lv_attr,origin,data_percent vgsrv >"$WORK/cowsnap-$1.lvs"
  csq dmsetup status >"$WORK/cowsnap-$1.status"
}
cowsnap_report created
echo "host: cowsnap server on 127.0.0.1:$port; vgsrv/b64m holds the base pattern; sb64m and sb64m2 taken"

truncate -s 512M "$WORK/kpv.img"
cat >"$WORK/guest.sh" <<'GUEST'
#!/bin/bash
source "$1/guest_lib.sh"
port=$2
S=$GUEST_SCRATCH
say() { echo "guest [$(cut -d" " -f1 /proc/uptime)s]: $*"; }
say "script started"
# w DEV OFFSET_KIB FILE SKIP_4K: one 4 KiB block of FILE onto DEV.
w() { dd if="$S/$3" of="$1" bs=4k count=1 skip="$4" seek=$(($2 / 4)) oflag=direct conv=notrunc status=none || guest_fail "dd onto $1 at $2 KiB"; }
# write_sequence ORIGIN SNAPSHOT2: the sequence both sides get.
write_sequence() {
  w "$1" 0 w4k.img 0
  w "$1" 4 w4k.img 1
  w "$1" $((60 * 1024)) w4k.img 2
  w "$1" 0 w4k.img 3
  dd if="$S/w40.img" of="$1" bs=1M seek=8 oflag=direct conv=notrunc status=none || guest_fail "40 MiB onto $1"
  w "$1" $((62 * 1024)) w4k.img 4
  w "$1" $((10 * 1024)) w4k.img 5
  w "$2" $((30 * 1024)) w4k.img 6
  w "$2" $((63 * 1024)) w4k.img 7
}
kernel_report() {
  lvs --noheadings -o lv_name,lv_attr,origin,data_percent vgsrv >"$S/kernel-$1.lvs" 2>"$S/lvs.err" ||
    guest_fail "lvs: $(cat "$S/lvs.err")"
  dmsetup status >"$S/kernel-$1.status"
}

# lvm2 looks at /dev/vda only: probing the 16 idle /dev/nbd* is slow here.
cat >>"$LVM_SYSTEM_DIR/lvm.conf" <<'CONF'
devices {
  global_filter = [ "a|^/dev/vda$|", "r|.*|" ]
}
CONF
pvcreate -q /dev/vda
vgcreate -q -s 32M vgsrv /dev/vda
lvcreate -q -y -L 64M -n b64m vgsrv
say "lvm2: b64m created"
dd if="$S/base.img" of=/dev/mapper/vgsrv-b64m bs=1M oflag=direct status=none
say "the base pattern written"
lvcreate -q -y -L 32M -s -c 4k -n sb64m vgsrv/b64m
lvcreate -q -y -L 64M -s -c 4k -n sb64m2 vgsrv/b64m
kernel_report created
say "lvm2 $(lvm version | sed -n 's/^ *LVM version: *\([^ ]*\).*/\1/p'): vgsrv on /dev/vda, b64m with the base pattern, sb64m and sb64m2 (4 KiB chunks)"
t0=$(date +%s.%N)
write_sequence /dev/mapper/vgsrv-b64m /dev/mapper/vgsrv-sb64m2
say "the write sequence on lvm2's volumes: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')s"
kernel_report written
if dd if=/dev/mapper/vgsrv-sb64m of=/dev/null bs=4k count=1 iflag=direct status=none 2>"$S/k-sb64m.err"; then
  guest_fail "reading lvm2's invalid sb64m succeeded"
fi
say "reading lvm2's sb64m: $(grep -m1 -o 'Input/output error' "$S/k-sb64m.err" || cat "$S/k-sb64m.err")"
sha256sum /dev/mapper/vgsrv-b64m /dev/mapper/vgsrv-sb64m2 | cut -d' ' -f1 >"$S/kernel.sha256"

nbd-client 10.0.2.2 "$port" /dev/nbd0 -N vgsrv/b64m >"$S/nbd0.log" 2>&1 || guest_fail "nbd-client b64m: $(cat "$S/nbd0.log")"
nbd-client 10.0.2.2 "$port" /dev/nbd1 -N vgsrv/sb64m2 >"$S/nbd1.log" 2>&1 || guest_fail "nbd-client sb64m2: $(cat "$S/nbd1.log")"
t0=$(date +%s.%N)
write_sequence /dev/nbd0 /dev/nbd1
say "the write sequence on cowsnap's volumes through /dev/nbd0, /dev/nbd1: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')s"
blockdev --flushbufs /dev/nbd0
blockdev --flushbufs /dev/nbd1
sha256sum /dev/nbd0 /dev/nbd1 | cut -d' ' -f1 >"$S/cowsnap.sha256"
nbd-client -d /dev/nbd0 >/dev/null 2>&1 || guest_fail "nbd-client -d /dev/nbd0"
nbd-client -d /dev/nbd1 >/dev/null 2>&1 || guest_fail "nbd-client -d /dev/nbd1"
GUEST
chmod +x "$WORK/guest.sh"

t0=$(e2e_now)
rc=0
in_guest --disk "$WORK/kpv.img" --scratch "$SCRATCH" --timeout 400 "$WORK/guest.sh" "$KERNEL_TESTS_DIR" "$port" || rc=$?
echo "host: the guest run took $(e2e_elapsed "$t0")s"
[[ $rc -eq 0 ]] || e2e_fail "the guest script failed (exit $rc)"
e2e_wait_unused vgsrv
cowsnap_report written

# compare STAGE: prints lvm2's and cowsnap's values side by side; counts
# the rows that differ in MISMATCHES.
MISMATCHES=0
row() {
  local mark="same"
  [[ "$2" == "$3" ]] || { mark="DIFFERS"; MISMATCHES=$((MISMATCHES + 1)); }
  printf '  %-22s %-36s %-36s %s\n' "$1" "$2" "$3" "$mark"
}
compare() {
  local stage=$1 lv k c name
  printf '\n%s\n' "$2"
  printf '  %-22s %-36s %-36s\n' "" "kernel 6.1, lvm2 2.03.16" "cowsnap"
  for lv in b64m sb64m sb64m2; do
    k=$(awk -v n="$lv" '$1 == n {print $2, $3, $4}' "$SCRATCH/kernel-$stage.lvs")
    c=$(awk -v n="$lv" '$1 == n {print $2, $3, $4}' "$WORK/cowsnap-$stage.lvs")
    row "lvs $lv" "$k" "$c"
  done
  for name in $(cut -d: -f1 "$SCRATCH/kernel-$stage.status" "$WORK/cowsnap-$stage.status" | sort -u); do
    k=$(sed -n "s/^$name: *//p" "$SCRATCH/kernel-$stage.status" | sed 's/ *$//')
    c=$(sed -n "s/^$name: *//p" "$WORK/cowsnap-$stage.status" | sed 's/ *$//')
    row "$name" "$k" "$c"
  done
}
compare created "after lvcreate -s (lvs: attr origin Data%; dmsetup status):"
compare written "after the write sequence:"
k=$(tr '\n' ' ' <"$SCRATCH/kernel.sha256")
c=$(tr '\n' ' ' <"$SCRATCH/cowsnap.sha256")
printf '\ncontents (sha256 of b64m, sb64m2):\n'
row "sha256 b64m" "$(cut -c1-16 <<<"${k%% *}")" "$(cut -c1-16 <<<"${c%% *}")"
row "sha256 sb64m2" "$(awk '{print substr($2, 1, 16)}' <<<"$k")" "$(awk '{print substr($2, 1, 16)}' <<<"$c")"
[[ $MISMATCHES -eq 0 ]] || e2e_fail "$MISMATCHES values differ between the kernel's LVM and cowsnap (table above)"
echo "PASS: lvm2 on the kernel and cowsnap agree on every value"
