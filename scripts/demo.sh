#!/usr/bin/env bash
# The main job: set everything up, build, and run the demo (arguments go to `mchainctl demo`).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh default
exec ./build/default/agent/mchainctl demo "$@"
