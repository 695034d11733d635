#!/usr/bin/env bash
# The main job: set everything up, build, and run the cluster demo (scripts/cluster_demo.sh:
# three mchaind, a real guest measured, its history verified). Arguments go to that script.
# Without root (a private libvirtd needs mount namespaces) it runs the one-host demo instead.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh default
if ((EUID != 0)); then
  echo "demo: not root, so no private libvirtd and guest: running the one-host demo instead"
  exec ./build/default/agent/mchainctl demo
fi
exec ./scripts/cluster_demo.sh --build build/default "$@"
