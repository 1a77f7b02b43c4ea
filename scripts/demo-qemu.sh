#!/usr/bin/env bash
# Builds a BOOTABLE demo image and boots it under QEMU + OVMF (docs/try-qemu.md).
#   bash scripts/demo-qemu.sh [--no-boot] [OUTDIR]      (OUTDIR default: demo-qemu/)
# The kernel is the newest Debian linux-image-*-cloud-amd64 .deb (apt-get download, unpacked with
# dpkg-deb, not installed), the initramfs a busybox-static one whose /init prints the kernel
# command line and the slot's version, then powers off; the ESP is a standalone GRUB. These come
# from test/fixtures/build.sh, the same recipe the boot tests use. Then: a key pair, signed OS and
# ESP tarballs, `diskimg create`, `diskimg show`, and (unless --no-boot) one boot with the serial
# console on this terminal. Needs: node 20, apt-get + dpkg-deb (Debian/Ubuntu), cpio, busybox-static,
# grub-efi-amd64-bin (grub-mkimage), qemu-system-x86, ovmf. No root.
set -euo pipefail
cd "$(dirname "$0")/.."
boot=1
if [ "${1:-}" = --no-boot ]; then boot=0; shift; fi
out=${1:-demo-qemu}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1764374400}
version=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d-%H%M%S)

missing=()
for t in apt-get dpkg-deb cpio busybox grub-mkimage qemu-system-x86_64; do
  command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
code=; vars=
for pair in /usr/share/OVMF/OVMF_CODE_4M.fd:/usr/share/OVMF/OVMF_VARS_4M.fd /usr/share/OVMF/OVMF_CODE.fd:/usr/share/OVMF/OVMF_VARS.fd; do
  if [ -e "${pair%%:*}" ] && [ -e "${pair##*:}" ]; then code=${pair%%:*}; vars=${pair##*:}; break; fi
done
[ -n "$code" ] || missing+=(OVMF)
if [ ${#missing[@]} -gt 0 ]; then
  echo "demo-qemu: missing ${missing[*]}; as root: apt-get install dpkg cpio busybox-static grub-efi-amd64-bin qemu-system-x86 ovmf" >&2
  exit 2
fi

[ -e packages/cli/dist/main.js ] || bash scripts/setup.sh
diskimg() { node packages/cli/bin/diskimg.js "$@"; }
mkdir -p "$out"

echo "demo-qemu: kernel, initramfs and GRUB (test/fixtures/build.sh; the kernel .deb is downloaded once)"
bash test/fixtures/build.sh "$out/parts"

rm -f "$out/demo.key" "$out/demo.pub"
diskimg keygen --out "$out/demo"
# The OS tarball of slot A, with the demo's small real SquashFS as /squashfs (show reads the OS from it).
rm -rf "$out/os" && mkdir "$out/os"
tar -C "$out/os" -xf "$out/parts/psyopsOS.A.tar"
cp fixtures/demo/os/squashfs "$out/os/squashfs"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" -C "$out/os" -cf "$out/psyopsOS.tar" .
cp "$out/parts/psyopsESP.tar" "$out/psyopsESP.tar"
diskimg sign "$out/psyopsOS.tar" --seckey "$out/demo.key" --force \
  --trusted type=psyopsOS filename=psyopsOS.x86_64.$version.tar version=$version architecture=x86_64
diskimg sign "$out/psyopsESP.tar" --seckey "$out/demo.key" --force \
  --trusted type=psyopsESP filename=psyopsESP.x86_64-uefi.$version.tar version=$version
rm -f "$out/demo.img"
diskimg create "$out/demo.img" --os-tar "$out/psyopsOS.tar" --esp-tar "$out/psyopsESP.tar" --pubkey "$out/demo.pub" \
  --esp-size 64M --secret-size 16M --slot-size 128M --seed demo --kernel-params 'console=tty0 console=ttyS0,115200'
diskimg show "$out/demo.img"

cp "$vars" "$out/OVMF_VARS.fd"
# TCG (software emulation) by default: it works everywhere, also in a VM; DEMO_QEMU_ACCEL=kvm with
# a usable /dev/kvm is faster (then -cpu host).
accel=${DEMO_QEMU_ACCEL:-tcg}
cpu=max; [ "$accel" = kvm ] && cpu=host
qemu=(qemu-system-x86_64 -machine q35 -accel "$accel" -cpu "$cpu" -m 512
  -drive "if=pflash,format=raw,readonly=on,file=$code" -drive "if=pflash,format=raw,file=$out/OVMF_VARS.fd"
  -drive "file=$out/demo.img,format=raw,if=none,id=d0" -device virtio-blk-pci,drive=d0,bootindex=0
  -nic none -display none -serial mon:stdio -no-reboot)
echo "demo-qemu: boot with: ${qemu[*]}"
if [ "$boot" = 1 ]; then
  echo "demo-qemu: booting (TCG takes about a minute; the init prints PSYOPS-TEST-INIT lines, then powers off; Ctrl-A X quits)"
  "${qemu[@]}"
fi
