#!/usr/bin/env bash
# README command 1: set up the environment (idempotent) and run the demo.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/tools/setup_env.sh"
exec "${VMAE2_VENV:-$root/.venv}/bin/python" "$root/tools/run_demo.py" "$@"
