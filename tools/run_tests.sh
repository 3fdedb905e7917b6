#!/usr/bin/env bash
# README command 2 (and CI): set up the environment (idempotent) and run the whole test suite,
# end-to-end tests included. Extra arguments go to pytest (e.g. -m "not e2e" for a quick loop).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/tools/setup_env.sh"
cd "$root"
exec "${VMAE2_VENV:-$root/.venv}/bin/python" -m pytest "$@"
