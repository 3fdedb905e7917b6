"""vmae2_mm: VideoMAE V2 on the OpenMMLab video stack (mmaction2 1.2.0 / mmdet 3.3.0).

The package has one optional compiled part, ``vmae2_mm._cpu_kernels`` (the fused fp32 CPU
attention in ``vmae2_mm/ops/cpu/csrc``). It is built against the installed torch, so torch must be
importable at build time (``pip install --no-build-isolation``, as for mmcv); without torch or
a C++ compiler the package installs without it and the backbone uses torch's SDPA instead.
"""
import sys
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent


def read_requirements(name):
    lines = ROOT.joinpath('requirements', name).read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith('#')]


def cpu_kernel_build():
    """``(ext_modules, cmdclass)`` for the optional CPU kernels; empty without torch."""
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except ImportError:
        print('vmae2_mm: torch is not importable at build time; building without the fused CPU '
              'attention kernel (install torch first and use --no-build-isolation to get it)',
              file=sys.stderr)
        return [], {}

    class OptionalBuildExtension(BuildExtension):
        """Builds the kernels when it can; a failed build leaves a working pure-Python install."""

        def build_extension(self, ext):
            try:
                super().build_extension(ext)
            except Exception as exc:  # noqa: BLE001  (compiler missing, unsupported platform)
                print(f'vmae2_mm: building {ext.name} failed ({exc}); the backbone will use '
                      "torch's SDPA for fp32 CPU inference", file=sys.stderr)

    ext = CppExtension(
        'vmae2_mm._cpu_kernels', ['vmae2_mm/ops/cpu/csrc/cpu_fused_attention.cpp'],
        depends=['vmae2_mm/ops/cpu/csrc/avx512_math.h'],
        # OpenMP: ATen's parallel_for runs its threads only in code compiled with it.
        # -fno-wrapv undoes Python's default -fwrapv, which keeps GCC from turning the
        # micro-kernels' index arithmetic into pointer increments (measured: 1.2x slower).
        extra_compile_args=['-O3', '-fno-wrapv', '-fopenmp'], extra_link_args=['-fopenmp'])
    return [ext], {'build_ext': OptionalBuildExtension.with_options(use_ninja=False)}


ext_modules, cmdclass = cpu_kernel_build()

setup(
    name='vmae2_mm',
    version='0.1.0',
    description='VideoMAE V2 (dual masking) for mmaction2: backbone, pretraining, recognition, '
                'AVA detection and temporal action detection',
    long_description=ROOT.joinpath('README.md').read_text()
    if ROOT.joinpath('README.md').exists() else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['vmae2_mm', 'vmae2_mm.*']),
    package_data={'vmae2_mm': ['data/*.json', 'data/*.txt']},
    ext_modules=ext_modules,
    cmdclass=cmdclass,
    python_requires='>=3.10',
    install_requires=read_requirements('runtime.txt'),
    extras_require={'tests': read_requirements('tests.txt')},
    license='Apache-2.0',
)
