"""GPU test helpers: every test here is ``@pytest.mark.gpu`` and skips without CUDA (or without
a package it needs, naming it), so the folder collects on CPU machines."""
import importlib.util

import pytest
import torch

CUDA = torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason='needs CUDA (torch.cuda.is_available() is False)')
    for item in items:
        if 'gpu' in item.keywords and not CUDA:
            item.add_marker(skip)


def need(module: str, why: str = '') -> None:
    """Skip the calling test when ``module`` cannot be imported."""
    if importlib.util.find_spec(module) is None:
        pytest.skip(f'{module} is not installed{": " + why if why else ""}')


@pytest.fixture(autouse=True)
def exact_fp32_cuda():
    """fp32 on CUDA means fp32: no TF32 in cuDNN convolutions (the cube embedding) or matmuls,
    so that GPU/CPU parity bars measure our code and not TF32's 10-bit mantissa."""
    if not CUDA:
        yield
        return
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old
    torch.cuda.empty_cache()
