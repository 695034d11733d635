#!/usr/bin/env bash
# Builds the e2e test guest into OUTDIR, from Debian packages only:
#   vmlinuz            the Debian cloud kernel (linux-image-cloud-amd64's versioned dependency)
#   initramfs.cpio.gz  busybox-static, the host's qemu-ga and its libraries, the virtio modules,
#                      /init, and a fixture tree to measure (/etc, /opt/blob.bin, /var/log)
#   manifest.txt       ground truth for the fixture tree: path, type, mode, owner, size, sha256
# Skips the work when those are newer than this script and the host's qemu-ga and busybox.
# The kernel .deb and what is taken from it are cached in $MCHAIN_GUEST_CACHE
# (default ${XDG_CACHE_HOME:-$HOME/.cache}/mchain-guest).
#
# Ownership: the archive is written by GNU cpio, which sets one owner for a whole archive (-R),
# and a non-root build cannot chown. So the initramfs is a concatenation of newc archives: the
# whole tree as root:root first, then one small archive per other owner that repeats its paths.
# The kernel unpacks them in order, and a repeated entry re-applies owner and mode (a directory)
# or replaces the file; nothing is changed at boot. Running as root is needed only when the
# apt package lists must be fetched first.
set -euo pipefail
umask 022

die() { echo "build-guest: $*" >&2; exit 1; }
# set -e alone exits silently; say where.
trap 'die "failed at line $LINENO: $BASH_COMMAND"' ERR

(($# == 1)) || die "usage: $0 OUTDIR"
outdir=$1
script=$(readlink -f "$0")
qemu_ga=/usr/sbin/qemu-ga
busybox=/bin/busybox
# Load order matters: each module needs the ones before it (there is no modules.dep in the .deb).
modules=(drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_modern_dev
         drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci drivers/char/virtio_console)
blob_size=$((24 * 1024 * 1024))
# The blob must be the same bytes on every build and machine; a different openssl would show here.
blob_sha256=e318d5fad3df1c796317b2ae8b3e06e32427c1396e57b30b414722e12843698e

up_to_date() {
  local output
  for output in vmlinuz initramfs.cpio.gz manifest.txt; do
    [[ -f "$outdir/$output" && "$outdir/$output" -nt "$script" && "$outdir/$output" -nt "$qemu_ga" &&
       "$outdir/$output" -nt "$busybox" ]] || return 1
  done
}
if up_to_date; then
  echo "build-guest: $outdir is up to date"
  exit 0
fi

for tool in apt-get apt-cache dpkg dpkg-deb cpio gzip openssl sha256sum ldd flock stat find; do
  command -v "$tool" >/dev/null || die "$tool not found (Debian 12 is expected)"
done
[[ -x "$qemu_ga" ]] || die "$qemu_ga not found: apt-get install qemu-guest-agent"
[[ -x "$busybox" ]] || die "$busybox not found: apt-get install busybox-static"
# The guest has no libraries for busybox; the dynamic build from the 'busybox' package fails there.
if ldd "$busybox" >/dev/null 2>&1; then
  die "$busybox is dynamically linked: apt-get install busybox-static"
fi

started=$SECONDS
cache=${MCHAIN_GUEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mchain-guest}
mkdir -p "$cache" "$outdir"
# Builds for several presets may run at once and share the cache.
exec {lock}>"$cache/.lock"
flock "$lock"

# --- The kernel: the versioned package the metapackage currently depends on. ---
resolve_kernel() {
  apt-cache depends --no-recommends --no-suggests linux-image-cloud-amd64 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-cloud-amd64$/ { print $2; exit }'
}
kernel_pkg=$(resolve_kernel || true)
if [[ -z "$kernel_pkg" ]]; then
  # A fresh container has no package lists; fetch them once if we may.
  ((EUID == 0)) || die "linux-image-cloud-amd64 unknown to apt: run 'apt-get update' as root"
  echo "build-guest: linux-image-cloud-amd64 unknown to apt, running apt-get update"
  apt-get update -qq || die "apt-get update failed"
  kernel_pkg=$(resolve_kernel || true)
  [[ -n "$kernel_pkg" ]] || die "cannot resolve linux-image-cloud-amd64 to a versioned kernel package"
fi
deb_path=$(apt-cache show --no-all-versions "$kernel_pkg" | awk '$1 == "Filename:" { print $2; exit }')
[[ -n "$deb_path" ]] || die "apt-cache show $kernel_pkg gives no Filename"
deb=$cache/${deb_path##*/}
if [[ ! -f "$deb" ]]; then
  echo "build-guest: downloading $kernel_pkg"
  # As root, apt drops to the _apt user, which usually cannot write to a home cache directory.
  sandbox=()
  if ((EUID == 0)); then sandbox=(-o APT::Sandbox::User=root); fi
  (cd "$cache" && apt-get download -qq "${sandbox[@]}" "$kernel_pkg") ||
    die "apt-get download $kernel_pkg failed"
  [[ -f "$deb" ]] || die "apt-get download did not produce $deb"
  # The metapackage moved on: what was cached for older kernels is of no further use.
  for old in "$cache"/linux-image-*.deb; do
    if [[ "$old" != "$deb" ]]; then rm -rf "$old" "${old%.deb}"; fi
  done
fi

# Only vmlinuz and six modules are needed out of a ~110 MB tree; keep just those, per .deb.
kernel_dir=${deb%.deb}
if [[ ! -f "$kernel_dir/.complete" ]]; then
  rm -rf "$kernel_dir" "$kernel_dir.x"
  dpkg -x "$deb" "$kernel_dir.x" || die "dpkg -x $deb failed"
  vmlinuz=("$kernel_dir.x"/boot/vmlinuz-*)
  [[ -f "${vmlinuz[0]}" ]] || die "no boot/vmlinuz-* in $deb"
  kver=${vmlinuz[0]##*/vmlinuz-}
  mkdir -p "$kernel_dir"
  cp "${vmlinuz[0]}" "$kernel_dir/vmlinuz"
  for module in "${modules[@]}"; do
    source_ko="$kernel_dir.x/lib/modules/$kver/kernel/$module.ko"
    [[ -f "$source_ko" ]] || die "$module.ko not in $deb (compressed modules are not supported)"
    install -D -m 0644 "$source_ko" "$kernel_dir/modules/$kver/kernel/$module.ko"
  done
  rm -rf "$kernel_dir.x"
  touch "$kernel_dir/.complete"
fi
kver=$(ls "$kernel_dir/modules")

# --- The staging tree, laid out like Debian 12 (merged /usr). ---
work=$outdir/.work
rm -rf "$work"
root=$work/root
mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib,usr/lib64,dev,proc,sys,run,tmp,root,etc,opt,var/log}
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
ln -s usr/bin "$root/bin"
ln -s usr/sbin "$root/sbin"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"

cp "$busybox" "$root/usr/bin/busybox"
# One link per applet; a link named 'busybox' would replace the binary with a loop to itself.
while read -r applet; do
  applet=${applet#/}
  applet=${applet#usr/}
  [[ "${applet##*/}" == busybox || -e "$root/usr/$applet" ]] && continue
  ln -s /usr/bin/busybox "$root/usr/$applet"
done < <("$busybox" --list-full)

# qemu-ga and every library ldd names (plus the loader), at their paths below /usr.
install -m 0755 "$qemu_ga" "$root/usr/sbin/qemu-ga"
while read -r library; do
  relative=${library#/}
  relative=${relative#usr/}
  install -D -m 0755 "$(readlink -f "$library")" "$root/usr/$relative"
done < <(ldd "$qemu_ga" | grep -o '/[^ ]*' | sort -u)
[[ -f "$root/usr/lib64/ld-linux-x86-64.so.2" ]] || die "ldd $qemu_ga names no /lib64 dynamic loader"

mkdir -p "$root/usr/lib/modules"
cp -r "$kernel_dir/modules/$kver" "$root/usr/lib/modules/"

cat >"$root/usr/lib/os-release" <<'EOF'
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
VARIANT="mchain test guest"
VARIANT_ID=mchain-test-guest
EOF

cat >"$root/init" <<'EOF'
#!/bin/sh
# PID 1 of the mchain test guest. There is no udev and no init system: mount the API
# filesystems, load the virtio modules, name the virtio-serial ports, keep qemu-ga running.
export PATH=/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
# The archive has no /dev/console (making the node needs root), so the kernel could not give
# us one; attach to it now that devtmpfs is there.
exec </dev/console >/dev/console 2>&1
hostname -F /etc/hostname
kver=$(uname -r)
for module in @MODULES@; do
  insmod "/lib/modules/$kver/kernel/$module.ko" || echo "init: insmod $module failed"
done
# udev would create /dev/virtio-ports/NAME; the ports appear in sysfs shortly after the module.
mkdir -p /dev/virtio-ports
tries=0
while :; do
  for port in /sys/class/virtio-ports/*; do
    [ -r "$port/name" ] || continue
    name=$(cat "$port/name")
    [ -n "$name" ] && ln -sfn "../${port##*/}" "/dev/virtio-ports/$name"
  done
  [ -e /dev/virtio-ports/org.qemu.guest_agent.0 ] && break
  tries=$((tries + 1))
  [ $((tries % 50)) -eq 0 ] && echo "init: still no virtio port org.qemu.guest_agent.0"
  sleep 0.1
done
echo "init: starting qemu-ga"
# PID 1 must never exit (the kernel would panic). The shell also reaps orphaned processes
# while it waits for qemu-ga.
while :; do
  qemu-ga -m virtio-serial -p /dev/virtio-ports/org.qemu.guest_agent.0 -t /run
  echo "init: qemu-ga exited with status $?, restarting it"
  sleep 1
done
EOF
sed -i "s|@MODULES@|${modules[*]}|" "$root/init"
chmod 0755 "$root/init"

cat >"$root/usr/sbin/shutdown" <<'EOF'
#!/bin/sh
# qemu-ga's guest-shutdown runs "/sbin/shutdown -P|-H|-r +0 MESSAGE". There is no init system to
# hand the request to, so sync and act at once.
sync
case "$1" in
  -r) exec reboot -f ;;
  -H) exec halt -f ;;
  *) exec poweroff -f ;;
esac
EOF
chmod 0755 "$root/usr/sbin/shutdown"

# --- The fixture tree to measure. Contents are fixed text: every build gives the same bytes. ---
etc=$root/etc
mkdir -p "$etc"/{ssh/sshd_config.d,sysctl.d,security,sudoers.d,cron.d,cron.daily,default,app,skel}

cat >"$etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
sys:x:3:3:sys:/dev:/usr/sbin/nologin
sync:x:4:65534:sync:/bin:/bin/sync
man:x:6:12:man:/var/cache/man:/usr/sbin/nologin
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
sshd:x:100:65534::/run/sshd:/usr/sbin/nologin
app:x:1000:1000:Application service,,,:/srv/app:/bin/sh
EOF
cat >"$etc/group" <<'EOF'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:app
tty:x:5:
man:x:12:
sudo:x:27:app
www-data:x:33:
shadow:x:42:
staff:x:50:
nogroup:x:65534:
app:x:1000:
EOF
cat >"$etc/shadow" <<'EOF'
root:*:19700:0:99999:7:::
daemon:*:19700:0:99999:7:::
bin:*:19700:0:99999:7:::
sys:*:19700:0:99999:7:::
sync:*:19700:0:99999:7:::
man:*:19700:0:99999:7:::
www-data:*:19700:0:99999:7:::
nobody:*:19700:0:99999:7:::
sshd:!:19700::::::
app:!:19700:0:99999:7:::
EOF
cat >"$etc/gshadow" <<'EOF'
root:*::
daemon:*::
bin:*::
sys:*::
adm:*::app
tty:*::
man:*::
sudo:*::app
www-data:*::
shadow:*::
staff:*::
nogroup:*::
app:!::
EOF
echo "mchain-guest" >"$etc/hostname"
cat >"$etc/hosts" <<'EOF'
127.0.0.1	localhost
127.0.1.1	mchain-guest
::1		localhost ip6-localhost ip6-loopback
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters
EOF
cat >"$etc/fstab" <<'EOF'
# /etc/fstab: static file system information.
# <file system>                            <mount point>  <type>  <options>          <dump> <pass>
UUID=2f6c3a4e-8d1b-4c1e-9a57-0b6f3d2e1c90  /              ext4    errors=remount-ro  0      1
UUID=7A3C-19E2                             /boot/efi      vfat    umask=0077         0      1
tmpfs                                      /tmp           tmpfs   nosuid,nodev       0      0
EOF
cat >"$etc/resolv.conf" <<'EOF'
domain example.internal
search example.internal
nameserver 192.0.2.53
nameserver 192.0.2.54
options edns0 trust-ad
EOF
cat >"$etc/nsswitch.conf" <<'EOF'
passwd:         files
group:          files
shadow:         files
gshadow:        files
hosts:          files dns
networks:       files
protocols:      db files
services:       db files
ethers:         db files
rpc:            db files
netgroup:       nis
EOF
echo "Etc/UTC" >"$etc/timezone"
echo "3f1e8c2a9b7d4e6f8a0b1c2d3e4f5a6b" >"$etc/machine-id"
printf 'Debian GNU/Linux 12 \\n \\l\n\n' >"$etc/issue"
echo "Debian GNU/Linux 12" >"$etc/issue.net"
cat >"$etc/motd" <<'EOF'

This is the mchain test guest. Its files are fixtures: they are measured, never used.
EOF
cat >"$etc/profile" <<'EOF'
# /etc/profile: system-wide .profile file for the Bourne shell (sh(1))
if [ "$(id -u)" -eq 0 ]; then
  PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
else
  PATH="/usr/local/bin:/usr/bin:/bin"
fi
export PATH
if [ -d /etc/profile.d ]; then
  for i in /etc/profile.d/*.sh; do
    [ -r "$i" ] && . "$i"
  done
  unset i
fi
EOF
cat >"$etc/shells" <<'EOF'
# /etc/shells: valid login shells
/bin/sh
/usr/bin/sh
/bin/ash
EOF
cat >"$etc/login.defs" <<'EOF'
MAIL_DIR        /var/mail
FAILLOG_ENAB    yes
LOG_UNKFAIL_ENAB no
LOG_OK_LOGINS   no
SYSLOG_SU_ENAB  yes
FTMP_FILE       /var/log/btmp
SU_NAME         su
HUSHLOGIN_FILE  .hushlogin
ENV_SUPATH      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ENV_PATH        PATH=/usr/local/bin:/usr/bin:/bin
TTYGROUP        tty
TTYPERM         0600
ERASECHAR       0177
KILLCHAR        025
UMASK           022
PASS_MAX_DAYS   99999
PASS_MIN_DAYS   0
PASS_WARN_AGE   7
UID_MIN         1000
UID_MAX         60000
GID_MIN         1000
GID_MAX         60000
ENCRYPT_METHOD  SHA512
EOF
echo 'PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"' >"$etc/environment"
cat >"$etc/sysctl.conf" <<'EOF'
# /etc/sysctl.conf - Configuration file for setting system variables
# See /etc/sysctl.d/ for additional system variables.
#net.ipv4.ip_forward=1
kernel.printk = 3 4 1 3
EOF
cat >"$etc/sysctl.d/99-mchain.conf" <<'EOF'
# Hardening for the application host.
kernel.kptr_restrict = 2
kernel.dmesg_restrict = 1
net.ipv4.conf.all.rp_filter = 1
net.ipv4.tcp_syncookies = 1
EOF
cat >"$etc/security/limits.conf" <<'EOF'
# /etc/security/limits.conf
#<domain>      <type>  <item>         <value>
app            soft    nofile         65536
app            hard    nofile         65536
*              hard    core           0
EOF
cat >"$etc/sudoers" <<'EOF'
Defaults	env_reset
Defaults	mail_badpass
Defaults	secure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
Defaults	use_pty
root	ALL=(ALL:ALL) ALL
%sudo	ALL=(ALL:ALL) ALL
@includedir /etc/sudoers.d
EOF
cat >"$etc/sudoers.d/app" <<'EOF'
app ALL=(root) NOPASSWD: /usr/bin/systemctl restart app.service
EOF
cat >"$etc/ssh/ssh_config" <<'EOF'
Include /etc/ssh/ssh_config.d/*.conf
Host *
    SendEnv LANG LC_*
    HashKnownHosts yes
    GSSAPIAuthentication yes
EOF
cat >"$etc/ssh/sshd_config" <<'EOF'
Include /etc/ssh/sshd_config.d/*.conf
Port 22
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM yes
X11Forwarding no
PrintMotd no
AcceptEnv LANG LC_*
Subsystem	sftp	/usr/lib/openssh/sftp-server
EOF
cat >"$etc/ssh/sshd_config.d/hardening.conf" <<'EOF'
KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256
Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com
MaxAuthTries 3
LoginGraceTime 20
EOF
# Placeholders in the shape of host keys, not keys: nothing in the guest runs sshd.
cat >"$etc/ssh/ssh_host_ed25519_key" <<'EOF'
-----BEGIN MCHAIN TEST FIXTURE-----
This stands in for an OpenSSH private host key (mode 0600). It is not a key.
-----END MCHAIN TEST FIXTURE-----
EOF
echo "ssh-ed25519 TUNIQUlOLVRFU1QtRklYVFVSRS1OT1QtQS1LRVk= root@mchain-guest" \
  >"$etc/ssh/ssh_host_ed25519_key.pub"
cat >"$etc/crontab" <<'EOF'
SHELL=/bin/sh
PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin
# m h dom mon dow user	command
17 *	* * *	root	cd / && run-parts --report /etc/cron.hourly
25 6	* * *	root	test -x /usr/sbin/anacron || run-parts --report /etc/cron.daily
EOF
cat >"$etc/cron.d/app" <<'EOF'
*/5 * * * * app /srv/app/bin/healthcheck >/dev/null 2>&1
EOF
cat >"$etc/cron.daily/app-rotate" <<'EOF'
#!/bin/sh
# Rotate the application log once a day.
set -e
[ -f /var/log/app.log ] || exit 0
mv /var/log/app.log /var/log/app.log.1
install -m 0640 -o app -g adm /dev/null /var/log/app.log
EOF
chmod 0755 "$etc/cron.daily/app-rotate"
echo 'LANG=C.UTF-8' >"$etc/default/locale"
cat >"$etc/app/app.conf" <<'EOF'
# Application service configuration.
[server]
listen = 0.0.0.0:8443
workers = 4
tls_cert = /etc/app/tls.crt
[storage]
path = /srv/app/data
max_size_mb = 512
[log]
file = /var/log/app.log
level = info
EOF
echo "fixture-secret-0123456789abcdef0123456789abcdef" >"$etc/app/secret.key"
cat >"$etc/skel/.profile" <<'EOF'
# ~/.profile: executed by the command interpreter for login shells.
if [ -d "$HOME/bin" ]; then
  PATH="$HOME/bin:$PATH"
fi
EOF
: >"$etc/subuid"
: >"$etc/subgid"
ln -s ../usr/lib/os-release "$etc/os-release"
ln -s ../proc/self/mounts "$etc/mtab"
# Dangling on purpose, as in many minimal images: there is no zoneinfo in the guest.
ln -s /usr/share/zoneinfo/Etc/UTC "$etc/localtime"

chmod 0640 "$etc/shadow" "$etc/gshadow"
chmod 0440 "$etc/sudoers" "$etc/sudoers.d/app"
chmod 0750 "$etc/sudoers.d" "$etc/app"
chmod 0600 "$etc/ssh/ssh_host_ed25519_key" "$etc/app/secret.key"
chmod 0640 "$etc/app/app.conf"

for i in $(seq 1 400); do
  printf '2026-01-%02d %02d:%02d:%02d app[1042]: request %d served in %d ms\n' \
    $((i % 28 + 1)) $((i % 24)) $((i * 7 % 60)) $((i * 13 % 60)) "$i" $((i * 37 % 250))
done >"$root/var/log/app.log"
chmod 0640 "$root/var/log/app.log"

# AES-256-CTR over zeros with a fixed key: deterministic, incompressible bytes.
head -c "$blob_size" /dev/zero |
  openssl enc -aes-256-ctr -nosalt -K 6d636861696e2d746573742d67756573742d626c6f622d76312d6b65792d3031 \
    -iv 00000000000000000000000000000000 -out "$root/opt/blob.bin"
actual=$(sha256sum "$root/opt/blob.bin" | cut -d' ' -f1)
[[ "$actual" == "$blob_sha256" ]] ||
  die "/opt/blob.bin has sha256 $actual, expected $blob_sha256 (openssl changed?)"

# Owners other than root:root. The archive repeats these paths with these owners.
owners=(
  "/etc/shadow 0 42"
  "/etc/gshadow 0 42"
  "/etc/app 1000 1000"
  "/etc/app/app.conf 1000 1000"
  "/etc/app/secret.key 1000 1000"
  "/var/log/app.log 1000 4"
)
declare -A owner_of=()
for entry in "${owners[@]}"; do
  read -r path uid gid <<<"$entry"
  [[ -e "$root$path" ]] || die "owner table names $path, which is not in the tree"
  owner_of[$path]="$uid $gid"
done

# --- The manifest, from the staging tree (and the owner table above). ---
manifest=$work/manifest.txt
{
  echo "# mchain test guest fixture tree: path type(f|d|l) mode uid gid size sha256|symlink-target"
  (cd "$root" && find etc opt var/log | LC_ALL=C sort) | while read -r relative; do
    path=/$relative
    read -r uid gid <<<"${owner_of[$path]:-0 0}"
    mode=$(stat -c '%a' "$root$path")
    if [[ -L "$root$path" ]]; then
      echo "$path l 0777 $uid $gid - $(readlink "$root$path")"
    elif [[ -d "$root$path" ]]; then
      printf '%s d %04o %s %s - -\n' "$path" "0$mode" "$uid" "$gid"
    else
      printf '%s f %04o %s %s %s %s\n' "$path" "0$mode" "$uid" "$gid" "$(stat -c '%s' "$root$path")" \
        "$(sha256sum "$root$path" | cut -d' ' -f1)"
    fi
  done
} >"$manifest"

# --- The archive: everything as root, then one archive per other owner (see the top). ---
archive=$work/initramfs.cpio
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) >"$archive"
for owner in $(printf '%s\n' "${owner_of[@]}" | tr ' ' ':' | sort -u); do
  for path in "${!owner_of[@]}"; do
    if [[ "${owner_of[$path]}" == "${owner/:/ }" ]]; then echo ".$path"; fi
  done | LC_ALL=C sort | (cd "$root" && cpio --quiet -o -H newc -R "$owner") >>"$archive"
done
gzip -n -6 "$archive"

cp "$kernel_dir/vmlinuz" "$work/vmlinuz"
# Replace the outputs only when all are ready; the manifest last, as up_to_date checks all three.
mv "$work/vmlinuz" "$outdir/vmlinuz"
mv "$archive.gz" "$outdir/initramfs.cpio.gz"
mv "$manifest" "$outdir/manifest.txt"
rm -rf "$work"
echo "build-guest: built $outdir (kernel $kver, initramfs $(stat -c %s "$outdir/initramfs.cpio.gz") bytes)" \
  "in $((SECONDS - started)) s"
