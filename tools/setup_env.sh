#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment with the pinned stack and vmae2_mm.
#
#   bash tools/setup_env.sh            # -> .venv (override with VMAE2_VENV=/path)
#
# Idempotent: it does nothing when the environment already matches requirements/*.txt, setup.py
# and the compiled kernels' sources (vmae2_mm/ops/cpu/csrc).
# mmcv 2.1.0 with compiled ops has no PyPI wheel: pip uses one from PIP_FIND_LINKS when it finds a
# matching wheel there, and otherwise builds it from source (about 15 min on 2 cores).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${VMAE2_VENV:-$root/.venv}
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3

stamp="$venv/.vmae2-env-stamp"
want=$(cat "$root"/requirements/*.txt "$root/setup.py" "$root"/vmae2_mm/ops/cpu/csrc/* | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
  exit 0
fi

start=$(date +%s)
echo "[setup_env] creating $venv with $($python --version)"
"$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet)
# mmcv's setup.py imports pkg_resources (gone in setuptools>=82) and torch, so it is built without
# isolation inside this environment.
"${pip[@]}" --upgrade pip "setuptools<82" wheel
"${pip[@]}" torch==2.13.0 "numpy>=2.0"
echo "[setup_env] mmcv 2.1.0 with ops (wheel from PIP_FIND_LINKS if one fits, else source build)"
MMCV_WITH_OPS=1 "${pip[@]}" --no-build-isolation mmcv==2.1.0
"${pip[@]}" -r "$root/requirements/runtime.txt" -r "$root/requirements/tests.txt"
"${pip[@]}" --no-build-isolation --no-deps -e "$root"
"$venv/bin/python" -c "import mmcv.ops, vmae2_mm; print('[setup_env] stack ok: torch', __import__('torch').__version__, '| mmcv', mmcv.__version__)"
echo "$want" > "$stamp"
echo "[setup_env] done in $(( $(date +%s) - start )) s"
