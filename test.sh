#!/usr/bin/env bash
# Runs every test: one debug build, the Swift unit suites from it, then the integration
# suite (pytest + real clients) against the built binary. Loopback only.
set -euo pipefail
cd "$(dirname "$0")"

swift build --build-tests
# The unit suites take seconds; a limit makes a hung test fail the run (with the
# suites' output so far) instead of holding CI until its own timeout.
timeout --kill-after=20 900 swift test --skip-build

export BERTH_BIN="$PWD/.build/debug/berth"
python3 -m pytest -q tests/integration "$@"
