#!/bin/bash
# Assemble the paws guest from already-downloaded Debian .debs, installing nothing on the host
# (dpkg-deb -x + the staged ld.so resolves shared libraries). Driven by ImageBuilder.ts, which
# resolves versions, downloads the .debs, hashes the inputs (this file included) and writes the
# manifest. Shell because this is file shuffling with coreutils, ld.so, mkfs and cpio.
#
#   DEBS    dir with the .debs (guest packages + one linux-image-*-cloud-amd64)
#   OUT     empty output dir: vmlinuz rootfs.ext4 initramfs-boot.cpio.gz host_key.pub kernel.version
#   WORK    scratch dir (deleted by the caller)
#   CLIENT_PUBKEY  file holding the node's ssh client public key (authorised for root)
set -euo pipefail
: "${DEBS:?}" "${OUT:?}" "${WORK:?}" "${CLIENT_PUBKEY:?}"
DEBS=$(realpath "$DEBS") OUT=$(realpath "$OUT") WORK=$(realpath "$WORK")
S=$WORK/staging R=$WORK/rootfs K=$WORK/kernel B=$WORK/bootrd
mkdir -p "$S" "$R" "$K" "$B"

# 1. extract (kernel separately: its modules are picked one by one) ------------
for d in "$DEBS"/*.deb; do
  case $(basename "$d") in linux-image-*) dpkg-deb -x "$d" "$K" ;; *) dpkg-deb -x "$d" "$S" ;; esac
done
KVER=$(ls "$K/lib/modules")
cp "$K/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
echo "$KVER" > "$OUT/kernel.version"

LDSO=$S/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 # $S/lib64/ld-linux* is an ABSOLUTE symlink to the host's
LIBPATH=$S/lib/x86_64-linux-gnu:$S/usr/lib/x86_64-linux-gnu
srun() { "$LDSO" --library-path "$LIBPATH" "$@"; }
is_elf() { [ -f "$1" ] && [ ! -L "$1" ] && [ "$(head -c 4 "$1" | tail -c 3)" = ELF ]; }

# Uncompressed kernel for PVH boot: QEMU loads the ELF itself and the guest skips decompressing
# (~2 s under TCG). Debian's cloud kernel is LZ4 (legacy frame, magic 02 21 4c 18), unpacked with
# the staged lz4; if that ever fails the image just keeps booting the bzImage.
off=$(LC_ALL=C grep -obUaP '\x02\x21\x4c\x18' "$OUT/vmlinuz" | head -1 | cut -d: -f1 || true)
if [ -n "$off" ]; then
  tail -c +$((off + 1)) "$OUT/vmlinuz" | srun "$S/usr/bin/lz4" -dc > "$OUT/vmlinux" 2> /dev/null || true
fi
if ! is_elf "$OUT/vmlinux" || [ "$(stat -c %s "$OUT/vmlinux")" -lt 4000000 ]; then rm -f "$OUT/vmlinux"; fi

# 2. rootfs tree ------------------------------------------------------------------
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,lib64,lib/x86_64-linux-gnu,lib/modules,etc/dropbear,etc/ssl/certs} \
  "$R"/{etc/profile.d,etc/paws,root/.ssh,proc,sys,dev,tmp,run,var/log,mnt,output,home,usr/lib/openssh}
chmod 1777 "$R/tmp" "$R/output"
chmod 700 "$R/root" "$R/root/.ssh"
ELFS=()
put() { mkdir -p "$(dirname "$R$1")" && cp -a "$S$1" "$R$1" && ELFS+=("$S$1"); }
cp "$S/bin/busybox" "$R/bin/busybox" # static
put /usr/sbin/dropbear
put /usr/bin/dropbearkey
put /usr/bin/curl
put /usr/lib/openssh/sftp-server
ln -s openssh/sftp-server "$R/usr/lib/sftp-server" # dropbear's compiled-in SFTP path
cp -a "$S/usr/lib/git-core" "$R/usr/lib/"
for f in "$R"/usr/lib/git-core/*; do # no perl/python in the guest
  if [ -f "$f" ] && head -c 64 "$f" | grep -qE '^#!.*(perl|python)'; then rm -f "$f"; fi
done
(cd "$R/usr/lib/git-core" && rm -f git-daemon git-http-backend git-http-fetch git-http-push \
  git-imap-send git-shell scalar git-sh-i18n--envsubst)
ln -s ../lib/git-core/git "$R/usr/bin/git"
for f in "$R"/usr/lib/git-core/*; do is_elf "$f" && ELFS+=("$f"); done
mkdir -p "$R/usr/share/git-core" && cp -a "$S/usr/share/git-core/templates" "$R/usr/share/git-core/"

# 3. shared libraries, resolved with the staged loader; anything outside staging is an error
declare -A SEEN
for e in "${ELFS[@]}"; do
  out=$(srun --list "$e")
  if grep -q 'not found' <<<"$out"; then echo "missing library for $e: $out" >&2; exit 1; fi
  while read -r lib; do [ -n "$lib" ] && SEEN[$lib]=1; done < <(awk '/=>/ && $3 ~ /^\// {print $3}' <<<"$out")
done
for lib in "${!SEEN[@]}"; do
  case $lib in "$S"/*) ;; *) echo "library resolved outside staging (add its .deb): $lib" >&2; exit 1 ;; esac
  cp -L "$lib" "$R/lib/x86_64-linux-gnu/$(basename "$lib")"
done
cp -L "$LDSO" "$R/lib64/ld-linux-x86-64.so.2"
ln -s ../../lib/x86_64-linux-gnu "$R/usr/lib/x86_64-linux-gnu" # merged /usr

# 4. CA bundle (the node appends the per-VM CA to it and writes /etc/paws/ca.pem) --
cat "$S"/usr/share/ca-certificates/mozilla/*.crt > "$R/etc/ssl/certs/ca-certificates.crt"
mkdir -p "$R/usr/lib/ssl" && ln -s /etc/ssl/certs "$R/usr/lib/ssl/certs"

# 5. users, keys, config --------------------------------------------------------------
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$R/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$R/etc/group"
echo 'root:*:19000:0:99999:7:::' > "$R/etc/shadow" && chmod 600 "$R/etc/shadow"
printf '/bin/sh\n/bin/ash\n' > "$R/etc/shells"
echo vm > "$R/etc/hostname"
printf '127.0.0.1 localhost\n' > "$R/etc/hosts"
printf 'hosts: files dns\npasswd: files\ngroup: files\nshadow: files\n' > "$R/etc/nsswitch.conf"
cat > "$R/etc/profile" <<'EOP'
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=${HOME:-/root} GIT_PAGER=cat PAGER=cat
for f in /etc/profile.d/*.sh; do [ -r "$f" ] && . "$f"; done
unset f
EOP
srun "$S/usr/bin/dropbearkey" -t ed25519 -f "$R/etc/dropbear/dropbear_ed25519_host_key" > /dev/null
srun "$S/usr/bin/dropbearkey" -y -f "$R/etc/dropbear/dropbear_ed25519_host_key" | grep '^ssh-ed25519 ' \
  | awk '{print $1" "$2}' > "$OUT/host_key.pub"
cp "$CLIENT_PUBKEY" "$R/root/.ssh/authorized_keys" && chmod 600 "$R/root/.ssh/authorized_keys"
for a in $("$R/bin/busybox" --list-full); do [ -e "$R/$a" ] || ln -s /bin/busybox "$R/$a"; done

M=$K/lib/modules/$KVER/kernel
for m in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_mmio \
  net/core/failover drivers/net/net_failover drivers/net/virtio_net drivers/block/virtio_blk \
  drivers/char/hw_random/virtio-rng drivers/char/virtio_console; do
  cp "$M/$m.ko" "$R/lib/modules/"
done

# 6. init: busybox init runs /etc/rcS -------------------------------------------------
printf '::sysinit:/etc/rcS\n::shutdown:/bin/umount -a -r\n' > "$R/etc/inittab"
cat > "$R/etc/rcS" <<'EOP'
#!/bin/sh
# paws guest boot: mounts, virtio modules, static network from vm.ip= vm.gw= vm.dns=, dropbear.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
grep -q " /proc " /proc/mounts 2>/dev/null || mount -t proc proc /proc
grep -q " /sys " /proc/mounts || mount -t sysfs sys /sys
grep -q " /dev " /proc/mounts || mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm /output /etc/paws /etc/profile.d
mount -t devpts -o gid=5,mode=620 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /run
for m in virtio_ring virtio virtio_mmio failover net_failover virtio_net virtio_blk; do
  [ -d /sys/module/$m ] || insmod /lib/modules/$m.ko
done
IP= GW= DNS=
for x in $(cat /proc/cmdline); do
  case $x in vm.ip=*) IP=${x#vm.ip=} ;; vm.gw=*) GW=${x#vm.gw=} ;; vm.dns=*) DNS=${x#vm.dns=} ;; esac
done
hostname -F /etc/hostname
ip link set lo up
if [ -n "$IP" ]; then ip addr add "$IP" dev eth0; fi
ip link set eth0 up
if [ -n "$GW" ]; then ip route add default via "$GW"; fi
if [ -n "$DNS" ]; then echo "nameserver $DNS" > /etc/resolv.conf; else : > /etc/resolv.conf; fi
dropbear -r /etc/dropbear/dropbear_ed25519_host_key -s -p 22 -P /run/dropbear.pid
echo "PAWS-VM-READY uptime=$(cut -d' ' -f1 /proc/uptime)" > /dev/ttyS0
exit 0
EOP
chmod +x "$R/etc/rcS"
ln -sf /bin/busybox "$R/sbin/init"

# 7. ext4 root (sparse, no journal) + tiny initramfs that mounts it and switch_roots --
SZ_MB=$(($(du -sm "$R" | cut -f1) + 64))
mkfs.ext4 -q -F -L pawsroot -d "$R" -b 4096 -O ^has_journal -m 0 -E root_owner=0:0 "$OUT/rootfs.ext4" "${SZ_MB}M"
mkdir -p "$B"/{bin,dev,proc,sys,newroot,mods}
cp "$S/bin/busybox" "$B/bin/busybox"
for m in virtio_ring virtio virtio_mmio virtio_blk; do cp "$R/lib/modules/$m.ko" "$B/mods/"; done
cat > "$B/init" <<'EOP'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc; /bin/busybox mount -t sysfs sys /sys; /bin/busybox mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_mmio virtio_blk; do /bin/busybox insmod /mods/$m.ko; done
/bin/busybox mount -t ext4 -o rw,noatime /dev/vda /newroot || { echo "paws: mount /dev/vda failed"; /bin/busybox poweroff -f; }
/bin/busybox umount /proc /sys; /bin/busybox mount --move /dev /newroot/dev
exec /bin/busybox switch_root /newroot /sbin/init
EOP
chmod +x "$B/init"
(cd "$B" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0) | gzip -6 -n > "$OUT/initramfs-boot.cpio.gz"
