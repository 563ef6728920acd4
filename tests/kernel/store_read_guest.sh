#!/bin/bash
# The guest's half of kernel_store_read (store_read_test.sh): lvm2
# activates VG $1 from the PV on /dev/vda that cowsnap wrote; what the
# kernel then shows goes to $2 (store_record); then the VG is deactivated.
source "$(dirname "$0")/guest_lib.sh"
source "$(dirname "$0")/store_guest_lib.sh"
vg=${1:?usage: store_read_guest.sh VG OUTDIR}
out=${2:?usage: store_read_guest.sh VG OUTDIR}

vgchange -ay "$vg"
store_record "$vg" "$out"
cat "$out/lvs"
vgchange -an "$vg"
[[ -z "$(dmsetup ls | grep -v '^No devices found')" ]] || guest_fail "dm devices left after vgchange -an: $(dmsetup ls)"
echo "guest: $vg activated, recorded, deactivated"
