#!/usr/bin/env bash
# Build the disposable Debian 12 test host image from Debian packages only, once.
#
#   tests/testbed/build-image.sh [CACHE_DIR]
#
# The image lands in CACHE_DIR/<hash>/, where <hash> covers this script and the package
# list: a second call with nothing changed prints the path and returns at once. The
# directory holds disk.raw (MBR, ext4 root labelled "root", GRUB in the MBR gap so it boots
# without -kernel too), vmlinuz + initrd (for qemu's direct kernel boot), rootfs/ (the same
# tree, for systemd-nspawn containers), id_ed25519 (root's key) and host_key.pub (the
# guest's SSH host key, to pin in known_hosts).
# Needs: debootstrap e2fsprogs fdisk grub-pc-bin openssh-client (make system-deps).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${1:-${LABSMITH_TESTBED_CACHE:-/var/tmp/labsmith-testbed}}
# What the roles under test need besides a bootable system: GRUB (the iommu role edits its
# command line), pciutils (lspci), kmod (modprobe), initramfs-tools (the vfio role), dbus
# (the Ansible reboot module needs a bus for shutdown).
packages=linux-image-amd64,systemd,systemd-sysv,udev,dbus,openssh-server,python3,python3-apt
packages+=,iproute2,pciutils,kmod,initramfs-tools,zstd,grub-pc,sudo
hash=$( (cat "$0"; echo "$packages") | sha256sum | cut -c1-16)
image=$cache/$hash
if [ -f "$image/done" ]; then
    echo "$image"
    exit 0
fi

mirror=${DEBIAN_MIRROR:-$(apt-get indextargets --format '$(REPO_URI) $(CODENAME)' \
    | awk '$2 == "bookworm" { print $1; exit }')}
if [ -z "$mirror" ]; then
    echo "build-image.sh: apt knows no bookworm mirror; set DEBIAN_MIRROR" >&2
    exit 1
fi
work=$(mktemp -d "$cache.build.XXXXXX" 2>/dev/null || { mkdir -p "$cache"; mktemp -d "$cache.build.XXXXXX"; })
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
started=$SECONDS
say() { echo "[testbed $((SECONDS - started))s] $*" >&2; }

say "debootstrap bookworm (about 90 s)"
debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" \
    >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; exit 1; }

say "system settings"
echo testhost >"$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 testhost\n' >"$root/etc/hosts"
echo 'LABEL=root / ext4 errors=remount-ro 0 1' >"$root/etc/fstab"
ssh-keygen -q -t ed25519 -N '' -C labsmith-testbed -f "$work/id_ed25519"
install -d -m 700 "$root/root/.ssh"
install -m 600 "$work/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
printf 'PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n' \
    >"$root/etc/ssh/sshd_config.d/labsmith-testbed.conf"
rm -f "$root"/etc/ssh/ssh_host_*
ssh-keygen -q -t ed25519 -N '' -C testhost -f "$root/etc/ssh/ssh_host_ed25519_key"
cp "$root/etc/ssh/ssh_host_ed25519_key.pub" "$work/host_key.pub"
# The management NIC (its MAC is fixed by boot-vm.sh) takes DHCP from qemu's user network.
cat >"$root/etc/systemd/network/10-management.network" <<'UNIT'
[Match]
MACAddress=52:54:00:4c:53:01
[Network]
DHCP=ipv4
UNIT
chroot "$root" systemctl enable -q systemd-networkd ssh
# Nothing at boot may wait for the spare NIC or run housekeeping under emulation.
chroot "$root" systemctl mask -q systemd-networkd-wait-online.service apt-daily.timer \
    apt-daily-upgrade.timer man-db.timer e2scrub_all.timer fstrim.timer
# The ATI VGA stand-in hangs the radeon driver.
printf 'blacklist radeon\ninstall radeon /bin/false\n' >"$root/etc/modprobe.d/labsmith-testbed.conf"
chroot "$root" passwd -l root >/dev/null

say "initramfs"
# MODULES=dep in a chroot would look at this machine's disks: list what the VM boots from,
# then leave MODULES=dep for rebuilds inside the guest.
printf 'virtio_pci\nvirtio_blk\next4\nnvme\n' >>"$root/etc/initramfs-tools/modules"
sed -i 's/^MODULES=.*/MODULES=list/' "$root/etc/initramfs-tools/initramfs.conf"
kernel=$(find "$root/lib/modules" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -1)
chroot "$root" update-initramfs -u -k "$kernel" >"$work/initramfs.log" 2>&1
sed -i 's/^MODULES=.*/MODULES=dep/' "$root/etc/initramfs-tools/initramfs.conf"
cp "$root/boot/vmlinuz-$kernel" "$work/vmlinuz"
cp "$root/boot/initrd.img-$kernel" "$work/initrd"

say "GRUB on the serial console, no menu delay"
sed -i 's/^GRUB_TIMEOUT=.*/GRUB_TIMEOUT=0/; s/^GRUB_CMDLINE_LINUX_DEFAULT=.*/GRUB_CMDLINE_LINUX_DEFAULT="console=ttyS0"/' \
    "$root/etc/default/grub"
printf 'GRUB_TERMINAL=serial\nGRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"\nGRUB_DISABLE_OS_PROBER=true\n' \
    >>"$root/etc/default/grub"
install -d "$root/boot/grub/i386-pc"
cp "$root"/usr/lib/grub/i386-pc/*.mod "$root"/usr/lib/grub/i386-pc/*.lst "$root/boot/grub/i386-pc/"
# The first grub.cfg by hand (grub-mkconfig needs the real disk); update-grub in the
# guest replaces it.
cat >"$root/boot/grub/grub.cfg" <<CFG
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set timeout=0
menuentry debian {
  search --no-floppy --label --set=root root
  linux /boot/vmlinuz-$kernel root=LABEL=root ro console=ttyS0
  initrd /boot/initrd.img-$kernel
}
CFG
echo 'grub-pc grub-pc/install_devices multiselect /dev/vda' | chroot "$root" debconf-set-selections

say "disk image (ext4 written from the directory: no loop device, no mount)"
size_mib=3072
truncate -s "${size_mib}M" "$work/disk.raw"
echo 'start=2048, type=83, bootable' | sfdisk -q "$work/disk.raw"
mkfs.ext4 -q -F -L root -E offset=1048576 -d "$root" "$work/disk.raw" "$((size_mib - 1))M"
grub-mkimage -O i386-pc -d "$root/usr/lib/grub/i386-pc" -o "$work/core.img" \
    -p '(hd0,msdos1)/boot/grub' biosdisk part_msdos ext2 search search_label normal
dd if="$root/usr/lib/grub/i386-pc/boot.img" of="$work/disk.raw" bs=446 count=1 conv=notrunc status=none
dd if="$work/core.img" of="$work/disk.raw" bs=512 seek=1 conv=notrunc status=none

mkdir -p "$cache"
rm -rf "$image"
mv "$work" "$image"
trap - EXIT
touch "$image/done"
say "image ready: $image"
echo "$image"
