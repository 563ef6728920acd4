#!/usr/bin/env bash
# kernel_boot: the guest boots the prepared kernel, has the modules, the
# host's lvm2 and nbd-client, and its network; the guest script's exit
# code and output come back. (Checks the harness the other kernel tests
# stand on.)
source "$(dirname "$0")/../e2e/e2e_lib.sh"
source "$(dirname "$0")/kernel_lib.sh"
kernel_require_guest
e2e_init

cat >"$WORK/guest.sh" <<'GUEST'
#!/bin/bash
source "$1/guest_lib.sh"
echo "kernel $(uname -r)"
for m in nbd dm_mod dm_snapshot ext4 loop 9p virtio_blk virtio_net; do
  grep -q "^$m " /proc/modules || guest_fail "module $m is not loaded"
done
[[ -b /dev/nbd0 ]] || guest_fail "no /dev/nbd0"
[[ -c /dev/mapper/control ]] || guest_fail "no /dev/mapper/control"
dmsetup version | grep -q '^Driver version' || guest_fail "dmsetup cannot reach the kernel's device-mapper"
lvm version | head -1
dmsetup targets | sort
ip -4 addr show dev eth0 | grep -q 10.0.2.15 || guest_fail "eth0 has no 10.0.2.15"
echo "written in the guest" >"$GUEST_SCRATCH/from-guest"
exit 7
GUEST
chmod +x "$WORK/guest.sh"

set +e
out=$(in_guest --scratch "$WORK/scratch" "$WORK/guest.sh" "$KERNEL_TESTS_DIR" 2>&1)
rc=$?
set -e
echo "$out"
[[ $rc -ne 125 ]] || e2e_fail "the guest did not run the script"
[[ $rc -eq 7 ]] || e2e_fail "the guest script's exit code came back as $rc, not 7"
want=$(cat "$COWSNAP_GUEST_DIR/initramfs/kernel-version")
grep -qx "kernel $want" <<<"$out" || e2e_fail "the guest did not run kernel $want"
grep -q '^snapshot ' <<<"$out" || e2e_fail "the guest's device-mapper has no snapshot target"
[[ "$(cat "$WORK/scratch/from-guest")" == "written in the guest" ]] || e2e_fail "the scratch folder is not shared"
echo "PASS: kernel $want boots under qemu and runs the host's tools"
