#!/usr/bin/env bash
# A private libvirtd (a test "host"): its own /etc/libvirt, /run, /var/lib/libvirt,
# /var/log/libvirt and /var/cache/libvirt under DIR, in its own mount and UTS namespaces, so that
# several run side by side on one machine, next to or without a system libvirtd, and without
# systemd, dbus or virtlogd.
#
#   libvirt_host.sh [--hook FILE] [--cache CACHEDIR] DIR NAME
#
# Runs in the foreground and becomes libvirtd itself (exec all the way down), so the caller's
# child process is the daemon: SIGTERM stops it and the caller reaps it.
# Client URI: qemu+unix:///system?socket=DIR/run/libvirt/libvirt-sock
# NAME: the daemon's host name (its UTS namespace).
# --hook: installed as DIR/etc/hooks/qemu; libvirtd looks for hooks only when it starts.
# --cache: use CACHEDIR as /var/cache/libvirt instead of DIR/cache. The QEMU capability probe
# cached there makes the first start of a daemon take ~10 s, later ones ~0.1 s.
# The host gets the empty mount points /var/lib/libvirt, /var/log/libvirt, /var/cache/libvirt
# if it lacks them; nothing else outside DIR (and CACHEDIR) is written.
set -euo pipefail

die() { echo "libvirt_host: $*" >&2; exit 1; }

hook='' cache=''
while (($#)); do
  case $1 in
    --hook) (($# >= 2)) || die "--hook needs a file"; hook=$2; shift 2 ;;
    --cache) (($# >= 2)) || die "--cache needs a directory"; cache=$2; shift 2 ;;
    -*) die "unknown option $1" ;;
    *) break ;;
  esac
done
(($# == 2)) || die "usage: $0 [--hook FILE] [--cache CACHEDIR] DIR NAME"
((EUID == 0)) || die "needs root (mount namespaces; libvirt's qemu:///system runs guests as root)"
name=$2
[[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9-]{0,62}$ ]] || die "NAME '$name' is not a host name"
[[ -z "$hook" || -f "$hook" ]] || die "hook $hook is not a file"
for tool in libvirtd unshare mount hostname; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install libvirt-daemon-driver-qemu)"
done
mkdir -p "$1"
dir=$(readlink -f "$1")
cache=${cache:-$dir/cache}
mkdir -p "$dir"/{etc,run,lib,log} "$cache"

# The etc dir persists across restarts of the same host (defined domains live in etc/qemu/).
if [[ ! -e "$dir/etc/.created" ]]; then
  if [[ -d /etc/libvirt ]]; then cp -a /etc/libvirt/. "$dir/etc/"; fi
  # A system default network (libvirt-daemon-system) would need dnsmasq and a bridge.
  rm -rf "$dir/etc/qemu/networks/autostart"
  # Migration between two such hosts fails with "same host" unless the UUIDs differ.
  cat /proc/sys/kernel/random/uuid >"$dir/etc/host-uuid"
  touch "$dir/etc/.created"
fi
mkdir -p "$dir/etc/hooks"
if [[ -n "$hook" ]]; then install -m 0755 "$hook" "$dir/etc/hooks/qemu"; fi

cat >"$dir/etc/libvirtd.conf" <<EOF
# Written by libvirt_host.sh; rewritten on every start.
host_uuid = "$(cat "$dir/etc/host-uuid")"
# Only root reaches the socket (it lives under DIR); no polkit, which would need dbus.
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
EOF
cat >"$dir/etc/qemu.conf" <<'EOF'
# Written by libvirt_host.sh; rewritten on every start. A test host in a container: guests run as
# root with no relabelling, cgroups, per-domain namespaces or virtlogd.
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
EOF

# libvirtd resolves its built-in default user and group (libvirt-qemu) before it reads qemu.conf,
# and fails when they are missing. libvirt-daemon-system creates them, but also pulls in systemd;
# without it, the daemon alone sees a passwd and group that have them.
accounts=()
for database in passwd group; do
  if ! getent "$database" libvirt-qemu >/dev/null; then
    cp "/etc/$database" "$dir/$database"
    if [[ $database == passwd ]]; then
      echo "libvirt-qemu:x:64055:64055:Libvirt Qemu (libvirt_host.sh):/var/lib/libvirt:/usr/sbin/nologin"
    else
      echo "libvirt-qemu:x:64055:"
    fi >>"$dir/$database"
    accounts+=("$database")
  fi
done

# unshare without --fork and sh's exec keep this PID: the caller's child becomes libvirtd.
# shellcheck disable=SC2016  # the inner script expands its own positional parameters
exec unshare --mount --uts --propagation private -- /bin/sh -ec '
  dir=$1 cache=$2 name=$3
  shift 3
  for database in "$@"; do mount --bind "$dir/$database" "/etc/$database"; done
  mkdir -p /var/lib/libvirt /var/log/libvirt /var/cache/libvirt /etc/libvirt
  mount --bind "$dir/etc" /etc/libvirt
  mount --bind "$dir/run" /run
  mount --bind "$dir/lib" /var/lib/libvirt
  mount --bind "$dir/log" /var/log/libvirt
  mount --bind "$cache" /var/cache/libvirt
  hostname "$name"
  exec libvirtd --pid-file /run/libvirtd.pid
' libvirt-host "$dir" "$cache" "$name" "${accounts[@]}"
