"""vmae2_mm: VideoMAE V2 on the OpenMMLab video stack (mmaction2 1.2.0 / mmdet 3.3.0)."""
from pathlib import Path

from setuptools import find_packages, setup


def read_requirements(name):
    lines = Path(__file__).parent.joinpath('requirements', name).read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith('#')]


setup(
    name='vmae2_mm',
    version='0.1.0',
    description='VideoMAE V2 (dual masking) for mmaction2: backbone, pretraining, recognition, '
                'AVA detection and temporal action detection',
    long_description=Path(__file__).parent.joinpath('README.md').read_text()
    if Path(__file__).parent.joinpath('README.md').exists() else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['vmae2_mm', 'vmae2_mm.*']),
    package_data={'vmae2_mm': ['data/*.json', 'data/*.txt']},
    python_requires='>=3.10',
    install_requires=read_requirements('runtime.txt'),
    extras_require={'tests': read_requirements('tests.txt')},
    license='Apache-2.0',
)
