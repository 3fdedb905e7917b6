#!/usr/bin/env bash
# Downloads (and builds, for mmcv) the wheels the GPU check machine lacks, for Python 3.12 x86-64,
# into gpu_wheels/ (git-ignored; the device tool carries it with `carry: ["gpu_wheels"]`).
#
#   bash tools/gpu/make_wheel_bundle.sh [OUT_DIR]      # default: gpu_wheels
#
# The target machine has Python 3.12 + a CUDA torch, numpy, scipy, opencv-python-headless,
# matplotlib, pyyaml, rich, pillow, tqdm, six, einops, packaging, pytest and no network; it lacks the
# OpenMMLab stack and the small packages below. Every wheel is downloaded with --no-deps (each
# dependency is named here on purpose: a resolver run would pull opencv-python/torch again).
# mmcv 2.1.0 is built here as a pure-Python wheel (MMCV_WITH_OPS=0): its compiled ops are not
# needed by vmae2_mm outside the AVA detector's RoIAlign, and a CUDA build takes longer than the
# whole device budget.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${1:-$root/gpu_wheels}
python=${PYTHON:-$root/.venv/bin/python}
mkdir -p "$out"

# Pure-Python wheels (py3-none-any) and manylinux cp312 wheels, no dependency resolution.
pure=(mmengine==0.10.7 mmdet==3.3.0 mmaction2==1.2.0 addict==2.4.0 yapf==0.43.0
      termcolor==3.1.0 platformdirs==4.3.8 terminaltables==3.1.10 importlib-metadata==8.7.0)
binary=(pycocotools==2.0.10 shapely==2.1.1)
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
      --platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)
"$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp "${plat[@]}" -d "$out" "${pure[@]}" "${binary[@]}"

# decord 0.6.0 ships a py3-none manylinux2010 wheel (a ctypes library, any CPython 3); should the
# index stop serving it, the decord-based GPU tests and the extraction benchmark skip.
if "$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
     --implementation cp "${plat[@]}" -d "$out" decord==0.6.0 2>/dev/null; then
  echo "[bundle] decord 0.6.0 wheel for Python 3.12 found"
else
  echo "[bundle] decord 0.6.0: no cp312 wheel on the index; decord-based GPU tests will skip"
fi

# mmcv 2.1.0 without compiled ops, as a pure-Python wheel. Its setup.py names that build
# "mmcv-lite"; it is renamed "mmcv" so that the installed distribution is the one mmdet/mmaction2
# look for. setup.py imports torch and pkg_resources, hence --no-build-isolation in this venv.
if ! ls "$out"/mmcv-2.1.0-*none-any.whl >/dev/null 2>&1; then
  tmp=$(mktemp -d)
  "$python" -m pip download --quiet --no-deps --no-binary=:all: --no-build-isolation -d "$tmp" \
    mmcv==2.1.0
  tar -xzf "$tmp"/mmcv-2.1.0.tar.gz -C "$tmp"
  sed -i "s/else 'mmcv-lite'/else 'mmcv'/" "$tmp/mmcv-2.1.0/setup.py"
  (cd "$tmp/mmcv-2.1.0" && MMCV_WITH_OPS=0 "$python" -m pip wheel --quiet --no-deps \
     --no-build-isolation -w "$tmp/dist" . >"$tmp/build.log" 2>&1) \
    || { tail -30 "$tmp/build.log" >&2; exit 1; }
  whl=$(ls "$tmp"/dist/mmcv-2.1.0-*.whl)
  case "$whl" in
    *-none-any.whl) cp "$whl" "$out/" ;;
    *) echo "[bundle] mmcv wheel is not pure-Python: $whl" >&2; exit 1 ;;
  esac
  rm -rf "$tmp"
fi
# Every wheel installs on CPython 3.12 x86-64 (tags), and every dependency it declares is in the
# bundle or on the GPU machine (tools/gpu/check_bundle.py holds that machine's package list).
"$python" -m pip install --quiet --dry-run --no-index --no-deps --ignore-installed \
  --python-version 3.12 --implementation cp "${plat[@]}" --only-binary=:all: \
  --target "$(mktemp -d)" "$out"/*.whl
"$python" "$root/tools/gpu/check_bundle.py" "$out"
echo "[bundle] $(ls "$out" | wc -l) wheels, $(du -sh "$out" | cut -f1) in $out"
ls -1 "$out"
