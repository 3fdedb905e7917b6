"""The two informational bounds in benchmarks/bench_backbone.py: the FLOP split and the
'attention at the linear layers' rate' ceiling, checked on hand-computed figures."""
import importlib.util
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


@pytest.fixture(scope='module')
def bench():
    spec = importlib.util.spec_from_file_location(
        'bench_backbone', osp.join(ROOT, 'benchmarks', 'bench_backbone.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_split_flops_vit_s_16x224(bench):
    split = bench.split_flops(bench.ARCHS['small'], frames=16, size=224)
    n, d = 8 * 14 * 14, 384  # 1568 tokens
    # per layer: qkv 3d^2, proj d^2, mlp 2 * 4d^2 multiply-adds per token; q k^T and attn v
    assert split['linear'] == 12 * 2 * n * 12 * d * d
    assert split['attention'] == 12 * 4 * n * n * d
    assert split['attention'] / 12 / 1e9 == pytest.approx(3.776, abs=1e-3)


def test_attention_ceiling_time(bench):
    # linears: 10 GFLOP in 1 s; attention: 10 GFLOP in 2 s; other 0.5 s
    parts = dict(linear=1.0, attention=2.0, other=0.5)
    split = dict(linear=10e9, attention=10e9)
    assert bench.attention_ceiling_time(parts, split) == pytest.approx(2.5)
    # half the linear FLOPs per second: attention's 10 GFLOP would take 2 s too
    assert bench.attention_ceiling_time(dict(parts, linear=2.0), split) == pytest.approx(4.5)


def test_attention_kernel_bound_times_both(bench):
    arch = dict(bench.ARCHS['small'], patch_size=16)
    bound = bench.attention_kernel_bound(arch, frames=2, size=64, repeats=1)
    assert set(bound) == {'sdpa', 'products'} and all(t > 0 for t in bound.values())
