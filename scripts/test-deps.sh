#!/usr/bin/env bash
# Installs the Debian tools the tests use as independent readers, when missing.
# Needs root (or sudo); without it, prints what is missing and the tests that
# need a tool skip with a printed reason.
set -euo pipefail
# command → Debian package
declare -A need=(
  [sgdisk]=gdisk [sfdisk]=fdisk [parted]=parted [fsck.fat]=dosfstools [mkfs.fat]=dosfstools
  [mcopy]=mtools [getfattr]=attr [setfattr]=attr [getfacl]=acl [setfacl]=acl [setcap]=libcap2-bin [getcap]=libcap2-bin [bsdtar]=libarchive-tools [e2fsck]=e2fsprogs [debugfs]=e2fsprogs [blkid]=util-linux [losetup]=mount
  [grub-script-check]=grub-common [grub-editenv]=grub-common [grub-mkstandalone]=grub-common
  [qemu-system-x86_64]=qemu-system-x86 [busybox]=busybox-static [cpio]=cpio
  [mksquashfs]=squashfs-tools [unsquashfs]=squashfs-tools [gensquashfs]=squashfs-tools-ng [sqfs2tar]=squashfs-tools-ng [xz]=xz-utils [python3]=python3-minimal
  [tar]=tar [script]=bsdutils [diff]=diffutils [minisign]=minisign [systemd-analyze]=systemd [genimage]=genimage [/usr/bin/time]=time
  [/usr/sbin/nginx]=nginx [openssl]=openssl [chromium]=chromium [curl]=curl [/usr/sbin/sshd]=openssh-server [ssh]=openssh-client [ssh-keygen]=openssh-client
)
# files → package (no command to probe)
declare -A files=(
  [/usr/lib/grub/x86_64-efi/linux.mod]=grub-efi-amd64-bin
  [/usr/share/OVMF/OVMF_CODE_4M.fd]=ovmf
)
missing=()
for c in "${!need[@]}"; do command -v "$c" >/dev/null 2>&1 || missing+=("${need[$c]}"); done
for f in "${!files[@]}"; do [ -e "$f" ] || missing+=("${files[$f]}"); done
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO=sudo
  else echo "test-deps: not root; missing Debian packages: ${missing[*]} (tests needing them will skip)" >&2; exit 0; fi
fi
echo "test-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
