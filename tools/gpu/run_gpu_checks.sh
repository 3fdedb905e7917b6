#!/usr/bin/env bash
# The prepared GPU check: install what the machine lacks, run the GPU tests and benchmarks, write
# gpu_report.md + gpu_report.json (+ gpu_tests.xml, gpu_bench.json) into $OUT.
#
#   OUT=/path/to/report bash tools/gpu/run_gpu_checks.sh [gpu_checks.py args]
#   bash tools/gpu/run_gpu_checks.sh --device cpu --tiny        # dry run on a CPU machine
#
# On a machine without the OpenMMLab stack (e.g. a bare CUDA image with Python 3.12 and torch)
# the wheels in gpu_wheels/ (made by tools/gpu/make_wheel_bundle.sh; no network needed) are
# installed with --no-deps into a private folder put first on PYTHONPATH; a machine where the
# stack imports already (our .venv, a user's environment) is used as it is. PYTHON picks the
# interpreter (default: .venv/bin/python if present, else python3). Budget: about 5 minutes on
# one H100 (tests <= 170 s, benchmarks <= 140 s, install ~15 s).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$root/.venv/bin/python" ]; then PYTHON=$root/.venv/bin/python; else PYTHON=python3; fi
fi
export OUT=${OUT:-$root/work_dirs/gpu_report}
mkdir -p "$OUT"
wheels=${VMAE2_GPU_WHEELS:-$root/gpu_wheels}
if ! "$PYTHON" -c "import mmengine, mmcv, mmdet, mmaction" 2>/dev/null; then
  if ! ls "$wheels"/*.whl >/dev/null 2>&1; then
    echo "[run_gpu_checks] the OpenMMLab stack is missing and $wheels holds no wheels:" \
         "run tools/gpu/make_wheel_bundle.sh on a machine with network first" >&2
    exit 2
  fi
  site=${VMAE2_GPU_SITE:-/tmp/vmae2_gpu_site}
  echo "[run_gpu_checks] installing $(ls "$wheels"/*.whl | wc -l) wheels into $site"
  "$PYTHON" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" "$wheels"/*.whl
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "$PYTHON" "$root/tools/gpu/gpu_checks.py" --out "$OUT" "$@"
