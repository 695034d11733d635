#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages mchain builds with (only those missing), then configures
# and builds one CMake preset (default: "default"). Safe to run again: it only does what is
# still undone.
set -euo pipefail

preset="${1:-default}"
cd "$(dirname "$0")/.."

packages=(
  g++ cmake ninja-build pkg-config  # toolchain: g++ >= 12, CMake >= 3.25
  libssl-dev                        # OpenSSL 3: hashes, signatures, AES-GCM
  nlohmann-json3-dev                # JSON output of the CLI and the benchmarks
  libleveldb-dev libsnappy-dev      # the chain store (leveldb's CMake config links snappy)
  libasio-dev                       # standalone Asio: the peer network's event loop and TLS sockets
  libgtest-dev libgmock-dev         # tests
  libgmp-dev                        # tests: abe's field arithmetic checked against GMP
  libvirt-dev                       # guest-agent commands through libvirt (libvirt, libvirt-qemu)
  libxml2-dev                       # agent: parsing libvirt domain metadata (owner)
  qemu-guest-agent                  # tests run a real qemu-ga on the host as the guest agent
  libbenchmark-dev                  # bench/
  qemu-system-x86                   # e2e: the test guest runs under QEMU (TCG)
  busybox-static cpio openssl       # tests/guest/build-guest.sh: the test guest's initramfs
  libvirt-daemon-driver-qemu        # e2e: private libvirtd hosts (tests/guest/libvirt_host.sh)
  libvirt-clients                   # virsh, to drive those hosts
  groff-base                        # tests: the man pages (packaging/man) under groff -ww
  valgrind                          # tests: abe's constant-time check under memcheck
)
if [[ "$preset" == fuzz ]]; then
  packages+=(clang-19 libclang-rt-19-dev)  # libFuzzer; clang 19 has the C++23 library support we use
fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' ||
    missing+=("$package")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  as_root=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || { echo "setup: run as root, or install sudo" >&2; exit 1; }
    as_root=(sudo)
  fi
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"
fi

cmake --preset "$preset"
cmake --build --preset "$preset"
