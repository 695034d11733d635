#!/usr/bin/env bash
# The cluster demo (scripts/demo.sh runs it after the build): three mchaind on this machine, one
# of them following a private libvirtd that runs a real guest (Linux + qemu-ga under QEMU, TCG
# unless KVM really works). The guest is bound to its owner on the chain, measured when its agent
# connects, the report confirmed and then mined; a file is changed inside the guest and measured
# again; `mchainctl history` shows both reports with their Merkle proofs verified. An ABE
# authority seals each data key for verifiers: an auditor reads the history with its own key,
# is revoked, and is refused what is written afterwards; then the same under the versioned
# CP-ABE, where a verifier is revoked by re-keying the authority.
#
#   cluster_demo.sh [--build DIR] [--keep]
#
# --build: the CMake build directory (default build/default). --keep: leave the work directory
# (keys, configs, stores, logs) behind; the daemons and the guest are stopped either way.
# Needs root: the private libvirtd runs in its own mount and UTS namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

build=build/default keep=0
while (($#)); do
  case $1 in
    --build) build=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "usage: $0 [--build DIR] [--keep]" >&2; exit 2 ;;
  esac
done
build=$(readlink -f "$build")
ctl=$build/agent/mchainctl
daemon=$build/agent/mchaind
guest=$build/guest
for f in "$ctl" "$daemon" "$guest/vmlinuz" "$guest/initramfs.cpio.gz"; do
  [[ -e $f ]] || { echo "demo: $f is missing: build first (scripts/setup.sh)" >&2; exit 1; }
done
# 77: what CTest takes for "skipped" (tests/CMakeLists.txt runs this script as a test).
((EUID == 0)) || { echo "demo: run as root (a private libvirtd needs mount namespaces)" >&2; exit 77; }

work=$(mktemp -d /tmp/mchain-demo.XXXXXX)
pids=()
libvirtd_pid=''
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() {
  local shown=("${@/#$ctl/mchainctl}") word line=
  shown=("${shown[@]/#virsh_/virsh}")
  # As one would type it: words with spaces or shell characters in single quotes.
  for word in "${shown[@]}"; do
    [[ $word =~ [^A-Za-z0-9_./:=,@+-] ]] && word="'$word'"
    line+="${line:+ }$word"
  done
  printf '$ %s\n' "$line"
  "$@"
}
virsh_() { virsh -q -c "qemu+unix:///system?socket=$work/h1/run/libvirt/libvirt-sock" "$@"; }

cleanup() {
  local status=$?
  set +e
  if [[ -n $libvirtd_pid ]]; then
    virsh_ destroy guest-1 >/dev/null 2>&1
  fi
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  if [[ -n $libvirtd_pid ]]; then
    kill -TERM "$libvirtd_pid" 2>/dev/null
    wait "$libvirtd_pid" 2>/dev/null
  fi
  if ((status != 0)); then
    echo "demo: failed; the daemons' logs:" >&2
    tail -n 20 "$work"/node-*.log >&2 2>/dev/null
  fi
  if ((keep)); then
    echo "demo: kept $work"
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
  local seconds=$1
  shift
  for ((i = 0; i < seconds * 5; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "demo: timed out waiting for: $*" >&2
  return 1
}

say "Three nodes: keys and the genesis file"
base=$((20000 + RANDOM % 20000))
nodes=()
for i in 1 2 3; do
  "$ctl" key generate --out "$work/node-$i.key" >/dev/null
  nodes+=(--node "node-$i,127.0.0.1:$((base + i)),$work/node-$i.key.pub")
done
run "$ctl" genesis create --out "$work/genesis.json" --chain demo "${nodes[@]}" --difficulty 16

say "A private libvirtd for node-1, its qemu hook pointed at node-1's mchaind"
cat >"$work/hook" <<EOF
#!/bin/sh
MCHAINCTL=$ctl MCHAIN_CONTROL_SOCKET=$work/node-1.sock exec $repo/hooks/qemu "\$@"
EOF
chmod 0755 "$work/hook"
# The QEMU capability probe (~10 s on a first start) is cached in the build directory.
"$repo/tests/guest/libvirt_host.sh" --hook "$work/hook" --cache "$build/libvirt-cache" \
  "$work/h1" h1 >"$work/libvirtd.log" 2>&1 &
libvirtd_pid=$!
wait_for 180 virsh_ version
echo "libvirtd up: qemu+unix:///system?socket=$work/h1/run/libvirt/libvirt-sock"

say "The cluster's ABE authorities: every data key is sealed for verifiers under one of them"
run "$ctl" abe setup --dir "$work/abe"
run "$ctl" abe setup --scheme cp-versioned --universe member,rank_le_1,rank_le_2 --dir "$work/abe"

say "Three mchaind (node-1 follows libvirt; node-2 and node-3 only validate and mine)"
cat >"$work/measure.pol" <<'EOF'
# What the demo measures inside the guest (Tripwire-style, docs/policy.md).
/etc -> $(ReadOnly) (rulename = config, severity = 80);
/opt -> $(ReadOnly) (rulename = data);
EOF
for i in 1 2 3; do
  libvirt=null
  ((i == 1)) && libvirt="{\"uri\": \"qemu+unix:///system?socket=$work/h1/run/libvirt/libvirt-sock\"}"
  cat >"$work/node-$i.json" <<EOF
{
  "node": {"id": "node-$i", "key": "$work/node-$i.key", "genesis": "$work/genesis.json"},
  "state_dir": "$work/node-$i",
  "control": {"socket": "$work/node-$i.sock"},
  "libvirt": $libvirt,
  "abe": {"public_key": "$work/abe/abe.mpk", "cp_public_key": "$work/abe/cpabe.pk"},
  "measurement": {"policy": "$work/measure.pol", "interval_s": 3600}
}
EOF
  "$daemon" --config "$work/node-$i.json" >"$work/node-$i.log" 2>&1 &
  pids+=($!)
done
sock1=(--socket "$work/node-1.sock")
for i in 1 2 3; do wait_for 30 "$ctl" status --socket "$work/node-$i.sock"; done
# Each node linked to both others.
linked() { [[ $("$ctl" peers --socket "$work/node-$1.sock" | grep -c $'\tlinked$') -eq 2 ]]; }
for i in 1 2 3; do wait_for 30 linked "$i"; done
run "$ctl" status "${sock1[@]}"

say "User alice: her key in node-1's keystore, registered on the chain"
run "$ctl" user add alice "${sock1[@]}"

say "alice's guest is defined and started on node-1's libvirt"
accel=qemu
# KVM only where it really works (a software KVM without VMX/SVM fails real guests).
if [[ -w /dev/kvm ]] && grep -qE 'vmx|svm' /proc/cpuinfo; then accel=kvm; fi
cat >"$work/guest-1.xml" <<EOF
<domain type='$accel'>
  <name>guest-1</name>
  <metadata><mchain:owner xmlns:mchain='http://mchain.invalid/xmlns/libvirt/1'>alice</mchain:owner></metadata>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$guest/vmlinuz</kernel>
    <initrd>$guest/initramfs.cpio.gz</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 rdinit=/init</cmdline>
  </os>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <serial type='file'><source path='$work/guest-1.console'/><target port='0'/></serial>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
run virsh_ define "$work/guest-1.xml"
run virsh_ start guest-1
echo "(accelerator: $accel)"

say "The binding, then the first measurement when the guest agent connects (the baseline)"
measured() { "$ctl" vms --json "${sock1[@]}" | grep -q '"baseline_created": true'; }
wait_for 180 measured
run "$ctl" vms "${sock1[@]}"
run "$ctl" hooks "${sock1[@]}"

say "Confirmed in a semi-finished block; now waiting for it to be mined (mature)"
mined() { ! "$ctl" history guest-1 "${sock1[@]}" | grep -q 'not mined yet'; }
wait_for 120 mined
run "$ctl" history guest-1 "${sock1[@]}"

say "Inside the guest, /etc/motd changes (as an intruder with a shell would do it)"
handle=$(virsh_ qemu-agent-command guest-1 \
  '{"execute":"guest-file-open","arguments":{"path":"/etc/motd","mode":"a"}}' |
  sed -n 's/.*"return":\([0-9]*\).*/\1/p')
virsh_ qemu-agent-command guest-1 \
  "{\"execute\":\"guest-file-write\",\"arguments\":{\"handle\":$handle,\"buf-b64\":\"$(printf 'owned\n' | base64)\"}}" >/dev/null
virsh_ qemu-agent-command guest-1 "{\"execute\":\"guest-file-close\",\"arguments\":{\"handle\":$handle}}" >/dev/null
echo "appended 'owned' to /etc/motd through the guest agent"

say "Measured again, on demand"
run "$ctl" measure guest-1 --wait "${sock1[@]}"
run "$ctl" report guest-1 "${sock1[@]}"

say "The history: both reports, each with its Merkle proof verified"
wait_for 120 mined
run "$ctl" history guest-1 "${sock1[@]}"
run "$ctl" verify guest-1 "${sock1[@]}"

say "Access control: an auditor's key, a policy that grants it, and what it reads"
uuid=$("$ctl" policy show guest-1 --json "${sock1[@]}" | sed -n 's/^ *"vm": "\([^"]*\)".*/\1/p')
run "$ctl" verifier issue --authority "$work/abe" --policy "reader:audit and vm:$uuid" \
  --out "$work/audit.vkey"
run "$ctl" policy set guest-1 --expression "owner:alice or reader:audit" --attribute owner:alice \
  --attribute "vm:$uuid" --attribute reader:audit "${sock1[@]}"
run "$ctl" policy show guest-1 "${sock1[@]}"
# The auditor satisfies v2, so reads v1's reports through the key link too.
run "$ctl" verifier read guest-1 --key "$work/audit.vkey" "${sock1[@]}"

say "The auditor is revoked; what is measured afterwards is closed to it"
run "$ctl" verifier revoke guest-1 reader:audit "${sock1[@]}"
run "$ctl" measure guest-1 --wait "${sock1[@]}"
# Exit status 1: a version was refused (anything else is a failure of the demo).
status=0
run "$ctl" verifier read guest-1 --key "$work/audit.vkey" "${sock1[@]}" || status=$?
((status == 1)) || { echo "demo: expected v3 to be refused to the auditor (exit $status)" >&2; exit 1; }

say "The versioned CP-ABE: members below rank 1 read; rank 2 is revoked by re-keying"
run "$ctl" policy set guest-1 --scheme cp-versioned --expression "member and not rank_le_1" \
  "${sock1[@]}"
run "$ctl" verifier issue --authority "$work/abe" --attributes "member, rank_le_2" \
  --out "$work/rank2.vkey"
run "$ctl" verifier issue --authority "$work/abe" --attributes member --out "$work/rank3.vkey"
run "$ctl" abe rekey --authority "$work/abe" --revoke "$work/rank2.vkey"
run "$ctl" verifier update --authority "$work/abe" --key "$work/rank3.vkey"
run "$ctl" verifier revoke guest-1 "${sock1[@]}"
run "$ctl" measure guest-1 --wait "${sock1[@]}"
# Rank 2 keeps v1..v4 (the versions before its revocation) and is refused v5.
status=0
run "$ctl" verifier read guest-1 --key "$work/rank2.vkey" "${sock1[@]}" || status=$?
((status == 1)) || { echo "demo: expected v5 to be refused to rank 2 (exit $status)" >&2; exit 1; }
run "$ctl" verifier read guest-1 --key "$work/rank3.vkey" "${sock1[@]}"

say "Every node holds the same chain"
for i in 1 2 3; do
  printf 'node-%s: %s\n' "$i" \
    "$("$ctl" chain tip --socket "$work/node-$i.sock" | head -n 2 | paste -sd ' ')"
done
run "$ctl" chain verify "${sock1[@]}"
echo
echo "demo: done (cleaning up the guest, the daemons and $work)"
