#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment with the pinned stack and vmae2_mm.
#
#   bash tools/setup_env.sh            # -> .venv (override with VMAE2_VENV=/path)
#
# Idempotent: it does nothing when the environment already matches requirements/*.txt, setup.py
# and the compiled kernels' sources (vmae2_mm/ops/cpu/csrc).
# mmcv 2.1.0 with compiled ops has no PyPI wheel: pip uses one from PIP_FIND_LINKS when it finds a
# matching wheel there, and otherwise builds it from source (about 15 min on 2 cores).
#
# On a CUDA machine (nvidia-smi lists a GPU; force with VMAE2_CUDA=1/0) it keeps or installs a CUDA
# build of torch 2.13.0 (PyPI's Linux wheel is the CUDA one; local CPU wheels in PIP_FIND_LINKS are
# ignored for torch there) and builds mmcv from source with its CUDA ops (MMCV_WITH_OPS=1
# FORCE_CUDA=1; needs nvcc matching torch's CUDA). The CPU path is unchanged.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${VMAE2_VENV:-$root/.venv}
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3

if [ -z "${VMAE2_CUDA:-}" ]; then
  VMAE2_CUDA=0
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
    VMAE2_CUDA=1
  fi
fi

stamp="$venv/.vmae2-env-stamp"
want=$( { cat "$root"/requirements/*.txt "$root/setup.py" "$root"/vmae2_mm/ops/cpu/csrc/*
          [ "$VMAE2_CUDA" = 1 ] && echo cuda; true; } | sha256sum | cut -d' ' -f1)
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
if [ "$VMAE2_CUDA" = 1 ]; then
  # keep a CUDA torch 2.13.0 that is already there, else take PyPI's (CUDA) wheel, not a local
  # CPU wheel from PIP_FIND_LINKS
  if ! "$venv/bin/python" -c "import torch, sys; sys.exit(not (torch.__version__.startswith('2.13.0') and torch.version.cuda))" 2>/dev/null; then
    PIP_FIND_LINKS= "${pip[@]}" torch==2.13.0 "numpy>=2.0"
  fi
  "$venv/bin/python" -c "import torch, sys; sys.exit(0 if torch.version.cuda else 'setup_env: torch ' + torch.__version__ + ' is a CPU build; install the CUDA build of torch 2.13.0 into $venv first')"
  echo "[setup_env] mmcv 2.1.0 with CUDA ops (source build, MMCV_WITH_OPS=1 FORCE_CUDA=1)"
  MMCV_WITH_OPS=1 FORCE_CUDA=1 "${pip[@]}" --no-build-isolation --no-binary mmcv mmcv==2.1.0
  "${pip[@]}" -r "$root/requirements/runtime.txt" -r "$root/requirements/tests.txt" \
    "torch==$("$venv/bin/python" -c 'import torch; print(torch.__version__)')"
else
"${pip[@]}" torch==2.13.0 "numpy>=2.0"
echo "[setup_env] mmcv 2.1.0 with ops (wheel from PIP_FIND_LINKS if one fits, else source build)"
MMCV_WITH_OPS=1 "${pip[@]}" --no-build-isolation mmcv==2.1.0
"${pip[@]}" -r "$root/requirements/runtime.txt" -r "$root/requirements/tests.txt"
fi
"${pip[@]}" --no-build-isolation --no-deps -e "$root"
"$venv/bin/python" -c "import mmcv.ops, vmae2_mm; print('[setup_env] stack ok: torch', __import__('torch').__version__, '| mmcv', mmcv.__version__)"
if [ "$VMAE2_CUDA" = 1 ]; then
  "$venv/bin/python" -c "import torch; from mmcv.ops import RoIAlign; x = torch.zeros(1, 1, 4, 4, device='cuda'); RoIAlign((2, 2), 1.0)(x, torch.tensor([[0., 0., 0., 3., 3.]], device='cuda')); print('[setup_env] mmcv CUDA ops ok')"
fi
echo "$want" > "$stamp"
echo "[setup_env] done in $(( $(date +%s) - start )) s"
