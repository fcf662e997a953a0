#!/usr/bin/env bash
# Runs every test: one debug build, the Swift unit suites from it, then the integration
# suite (pytest + real clients) against the built binary. Loopback only.
set -euo pipefail
cd "$(dirname "$0")"

swift build --build-tests
swift test --skip-build

export BERTH_BIN="$PWD/.build/debug/berth"
python3 -m pytest -q tests/integration "$@"
