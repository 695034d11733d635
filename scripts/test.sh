#!/usr/bin/env bash
# The whole test suite: set everything up, build, run every test (unit, integration, e2e).
# Arguments go to ctest, e.g. `./scripts/test.sh -L unit`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh default
exec ctest --preset default "$@"
