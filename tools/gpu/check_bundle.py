"""Checks that a wheel bundle is complete for the GPU check machine.

    python tools/gpu/check_bundle.py gpu_wheels

Every ``Requires-Dist`` (without extras and markers that exclude Linux/CPython 3.12) of every
wheel in the folder must name a wheel in the folder or a package the GPU machine already has
(:data:`ON_GPU_MACHINE`, its image's package list). OpenCV counts as present under any of its
distribution names (the machine has ``opencv-python-headless``; mmengine asks for
``opencv-python``, mmaction2 for ``opencv-contrib-python``; they all provide ``cv2``), which is
why the bundle is installed with ``--no-deps`` and this check stands in for pip's resolver.
Exits 1 listing what is missing.
"""
import re
import sys
import zipfile
from pathlib import Path

# The GPU image's Python packages that the OpenMMLab stack and vmae2_mm need (subset of its list).
ON_GPU_MACHINE = {
    'torch', 'numpy', 'scipy', 'matplotlib', 'pyyaml', 'rich', 'pillow', 'tqdm', 'six',
    'einops', 'packaging', 'pytest', 'pytest-timeout', 'transformers', 'regex', 'zipp',
    'filelock', 'opencv-python-headless', 'setuptools', 'wheel', 'pygments', 'markdown-it-py',
    'mdurl', 'tomli', 'typing-extensions', 'safetensors', 'huggingface-hub', 'tokenizers',
    'psutil', 'timm', 'jinja2', 'networkx', 'sympy', 'fsspec', 'triton',
}
OPENCV = {'opencv-python', 'opencv-contrib-python', 'opencv-python-headless',
          'opencv-contrib-python-headless'}


def _norm(name: str) -> str:
    return re.sub(r'[-_.]+', '-', name).lower()


def wheel_requirements(path: Path):
    """(distribution name, [required names]) of one wheel, markers evaluated for CPython 3.12
    on Linux x86-64 and extras dropped."""
    from packaging.requirements import Requirement
    env = dict(python_version='3.12', python_full_version='3.12.3', sys_platform='linux',
               platform_system='Linux', platform_machine='x86_64', os_name='posix',
               implementation_name='cpython', platform_python_implementation='CPython',
               extra='')
    with zipfile.ZipFile(path) as z:
        meta = next(n for n in z.namelist() if n.endswith('.dist-info/METADATA'))
        text = z.read(meta).decode()
    name, reqs = None, []
    for line in text.splitlines():
        if line.startswith('Name:'):
            name = _norm(line.split(':', 1)[1].strip())
        elif line.startswith('Requires-Dist:'):
            req = Requirement(line.split(':', 1)[1].strip())
            if req.marker is None or req.marker.evaluate(env):
                reqs.append(_norm(req.name))
    return name, reqs


def missing_requirements(folder: Path) -> dict:
    """``{wheel file: [missing names]}`` for the wheels in ``folder`` (empty when complete)."""
    wheels = sorted(folder.glob('*.whl'))
    found = {path.name: wheel_requirements(path) for path in wheels}
    have = {name for name, _ in found.values()} | ON_GPU_MACHINE
    missing = {}
    for fname, (_, reqs) in found.items():
        gaps = [r for r in reqs if r not in have and not (r in OPENCV and have & OPENCV)]
        if gaps:
            missing[fname] = gaps
    return missing


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0] if args else 'gpu_wheels')
    if not folder.is_dir() or not any(folder.glob('*.whl')):
        print(f'[check_bundle] no wheels in {folder}', file=sys.stderr)
        return 1
    names = [wheel_requirements(p)[0] for p in folder.glob('*.whl')]
    dupes = sorted({n for n in names if names.count(n) > 1})
    missing = missing_requirements(folder)
    for fname, gaps in missing.items():
        print(f'[check_bundle] {fname} needs {", ".join(gaps)}: neither in {folder} nor on the '
              'GPU machine', file=sys.stderr)
    if dupes:
        print(f'[check_bundle] more than one version of {", ".join(dupes)}', file=sys.stderr)
    if missing or dupes:
        return 1
    size = sum(p.stat().st_size for p in folder.glob('*.whl'))
    print(f'[check_bundle] complete: {len(names)} wheels, {size / 2**20:.1f} MiB')
    return 0


if __name__ == '__main__':
    sys.exit(main())
