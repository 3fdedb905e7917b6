"""Masking transforms: exact published running-cell patterns, tube structure, counts, errors."""
import numpy as np
import pytest

import vmae2_mm  # noqa: F401
from mmaction.registry import TRANSFORMS
from vmae2_mm.datasets.transforms.masking import (FrameMasking, RandomMasking,
                                                  RunningCellMasking, TubeMasking,
                                                  running_cell_patterns)


def units(pattern, grid):
    """[N] drop mask -> per-slice 2x2 unit in raster order, after checking it tiles."""
    t, h, w = grid
    m = pattern.reshape(t, h, w)
    out = []
    for s in range(t):
        unit = m[s, :2, :2]
        assert (np.tile(unit, (h // 2, w // 2)) == m[s]).all()
        out.append(unit.reshape(-1).astype(int).tolist())
    return out


def test_running_cell_half_matches_published_table():
    # videomaev2.md section 4: p=0, ratio 0.5 -> diagonal, bottom row, anti-diagonal, top row
    pats = running_cell_patterns((8, 14, 14), 0.5)
    assert units(pats[0], (8, 14, 14)) == [[1, 0, 0, 1], [0, 0, 1, 1], [0, 1, 1, 0],
                                           [1, 1, 0, 0]] * 2


def test_running_cell_quarter_and_three_quarters():
    assert units(running_cell_patterns((4, 2, 2), 0.25)[0], (4, 2, 2)) == \
        [[0, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]]
    assert units(running_cell_patterns((4, 2, 2), 0.75)[0], (4, 2, 2)) == \
        [[1, 1, 0, 1], [1, 0, 1, 1], [0, 1, 1, 1], [1, 1, 1, 0]]


@pytest.mark.parametrize('ratio', [0.25, 0.5, 0.75])
def test_running_cell_draws_only_the_four_patterns(ratio):
    grid = (8, 14, 14)
    rc = RunningCellMasking(grid, ratio, seed=3)
    seen = {rc({})['dec_kept'].tobytes() for _ in range(64)}
    published = {(~p).tobytes() for p in running_cell_patterns(grid, ratio)}
    assert seen == published and len(published) == 4
    # each position is dropped int(4*ratio) times in any 4 consecutive slices
    drop = running_cell_patterns(grid, ratio)[1].reshape(8, -1)
    assert (drop[:4].sum(0) == int(4 * ratio)).all()
    assert rc({})['dec_kept'].sum() == int(round((1 - ratio) * 8 * 196))


def test_tube_masking_repeats_one_spatial_mask():
    grid = (8, 14, 14)
    tm = TubeMasking(grid, 0.9, seed=0)
    a, b = tm({})['enc_hidden'], tm({})['enc_hidden']
    assert a.dtype == bool and a.shape == (1568,)
    slices = a.reshape(8, 196)
    assert (slices == slices[0]).all()
    assert slices[0].sum() == 176 and (~a).sum() == 160
    assert not (a == b).all()  # a fresh mask per call
    assert TubeMasking((8, 16, 16), 0.9)({})['enc_hidden'].sum() == 8 * 230


def test_seeded_transforms_are_reproducible():
    x = [TubeMasking((8, 14, 14), 0.9, seed=7)({})['enc_hidden'] for _ in range(2)]
    assert (x[0] == x[1]).all()


def test_decoder_ratio_zero_is_videomae_v1():
    r = RunningCellMasking((2, 4, 4), 0.)(TubeMasking((2, 4, 4), 0.5, seed=0)({}))
    assert (r['dec_kept'] == r['enc_hidden']).all()
    with pytest.raises(KeyError, match='after TubeMasking'):
        RunningCellMasking((2, 4, 4), 0.)({})


def test_random_and_frame_masking():
    grid = (8, 4, 4)
    r = RandomMasking(grid, 0.5, target='decoder', seed=0)({})
    assert r['dec_kept'].sum() == 64 and 'enc_hidden' not in r
    r = RandomMasking(grid, 0.9, seed=0)({})
    assert r['enc_hidden'].sum() == int(0.9 * 128)
    r = FrameMasking(grid, 0.5, seed=0)({})
    kept = r['dec_kept'].reshape(8, 16)
    assert (kept.all(1) | ~kept.any(1)).all() and kept.all(1).sum() == 4


@pytest.mark.parametrize('cls,kwargs,match', [
    (TubeMasking, dict(grid=(8, 14, 14), ratio=1.0), 'ratio'),
    (TubeMasking, dict(grid=(8, 14, 14), ratio=0.001), 'at least one token'),
    (TubeMasking, dict(grid=(8, 14), ratio=0.9), 'grid'),
    (RunningCellMasking, dict(grid=(8, 14, 14), ratio=0.6), 'one of'),
    (RunningCellMasking, dict(grid=(8, 7, 7), ratio=0.5), 'even'),
    (RandomMasking, dict(grid=(8, 14, 14), ratio=0.5, target='both'), 'target'),
    (FrameMasking, dict(grid=(1, 14, 14), ratio=0.5), 'slice'),
])
def test_invalid_configs_fail_at_build_time(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)
    with pytest.raises(ValueError, match=match):
        TRANSFORMS.build(dict(type=cls.__name__, **kwargs))
