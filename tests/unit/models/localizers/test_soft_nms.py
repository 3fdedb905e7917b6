"""Gaussian Soft-NMS: hand-checked fixture, bit-exact parity with mmcv's C++ kernel, voting."""
import ctypes
import ctypes.util
import math

import numpy as np
import pytest
import torch

from vmae2_mm.models.localizers.soft_nms import (batched_soft_nms_1d, expf_glibc,
                                                 segment_voting, soft_nms_1d)

# every exact strategy, and the automatic choice
STRATEGIES = pytest.mark.parametrize('strategy', ['sequential', 'rounds', 'dense', None])


@STRATEGIES
def test_hand_checked_fixture(strategy):
    segs = torch.tensor([[0., 10.], [5., 15.], [20., 30.], [0., 10.], [40., 50.]])
    scores = torch.tensor([0.9, 0.8, 0.3, 0.0005, 0.25])
    keep, sc = soft_nms_1d(segs, scores, sigma=0.5, min_score=0.25, len_eps=0.0,
                           strategy=strategy)
    # A picked; B: IoU 5/15 -> 0.8 * exp(-(1/3)^2 / 0.5); C, E untouched; D (IoU 1 with A and
    # already below min_score) dropped; E == min_score stays (only '< min_score' drops)
    assert keep.tolist() == [0, 1, 2, 4]
    expected = [0.9, 0.8 * math.exp(-(1 / 9) / 0.5), 0.3, 0.25]
    assert np.allclose(sc.numpy(), expected, rtol=1e-6)


@STRATEGIES
def test_len_eps_enters_the_iou(strategy):
    segs = torch.tensor([[0., 1.], [0., 2.]])
    _, sc0 = soft_nms_1d(segs, torch.tensor([1.0, 1.0 - 1e-3]), len_eps=0.0, strategy=strategy)
    _, sc6 = soft_nms_1d(segs, torch.tensor([1.0, 1.0 - 1e-3]), len_eps=1e-6, strategy=strategy)
    # C++: lengths get +1e-6, the intersection does not
    iou0, iou6 = 1 / 2, 1 / ((1 + 1e-6) + (2 + 1e-6) - 1)
    assert sc6[1] > sc0[1]
    assert math.isclose(sc0[1].item(), 0.999 * math.exp(-iou0**2 / 0.5), rel_tol=1e-6)
    assert math.isclose(sc6[1].item(), 0.999 * math.exp(-iou6**2 / 0.5), rel_tol=1e-6)


@STRATEGIES
def test_top_element_survives_when_everything_is_below_min_score(strategy):
    segs = torch.tensor([[0., 1.], [5., 6.], [10., 11.]])
    keep, sc = soft_nms_1d(segs, torch.tensor([1e-4, 5e-4, 2e-4]), min_score=1e-3,
                           strategy=strategy)
    assert keep.tolist() == [1] and sc.tolist() == [pytest.approx(5e-4)]


@STRATEGIES
def test_ties_go_to_the_lowest_index(strategy):
    segs = torch.tensor([[0., 10.], [0., 10.], [0., 10.]])
    keep, _ = soft_nms_1d(segs, torch.tensor([0.5, 0.7, 0.7]), strategy=strategy)
    assert keep.tolist() == [1, 2, 0]


def _random(n, seed, span=100.0, max_len=20.0):
    g = torch.Generator().manual_seed(seed)
    s = torch.rand(n, generator=g) * span
    segs = torch.stack([s, s + torch.rand(n, generator=g) * max_len + 0.1], 1)
    return segs, torch.rand(n, generator=g)


def _mmcv(segs, scores, sigma, min_score):
    from mmcv.ops import soft_nms
    n = len(segs)
    boxes = torch.stack([segs[:, 0], torch.zeros(n), segs[:, 1], torch.ones(n)], 1)
    dets, inds = soft_nms(boxes, scores, iou_threshold=0.1, sigma=sigma, min_score=min_score,
                          method='gaussian', offset=0)
    return inds, dets[:, 4]


@pytest.mark.parametrize('seed', range(8))
@pytest.mark.parametrize('sigma,min_score', [(0.5, 1e-3), (0.75, 0.05)])
@pytest.mark.parametrize('max_len', [20.0, 80.0])      # sparse / dense overlap
@STRATEGIES
def test_bit_exact_with_mmcv_soft_nms(seed, sigma, min_score, max_len, strategy):
    """Boxes (s, 0, e, 1), offset 0 == our 1-D IoU with len_eps=0: same kept indices, same
    order and bit-identical decayed scores."""
    from vmae2_mm.models.localizers import soft_nms as mod
    segs, scores = _random(300, seed, max_len=max_len)
    degree = mod._num_overlaps(segs[:, 0].numpy(), segs[:, 1].numpy(), np.zeros(300, int))
    assert (degree > mod._DENSE_DEGREE * 300) == (max_len == 80.0)
    ref_i, ref_s = _mmcv(segs, scores, sigma, min_score)
    keep, sc = soft_nms_1d(segs, scores, sigma=sigma, min_score=min_score, len_eps=0.0,
                           strategy=strategy)
    assert torch.equal(keep, ref_i)
    assert torch.equal(sc, ref_s)


@pytest.mark.parametrize('max_len', [5.0, 40.0])
@STRATEGIES
def test_groups_and_max_num_equal_per_class_runs_truncated(max_len, strategy):
    segs, scores = _random(400, 7, span=60.0, max_len=max_len)
    labels = torch.randint(0, 4, (400, ), generator=torch.Generator().manual_seed(1))
    keep, sc = soft_nms_1d(segs, scores, max_num=25, groups=labels, len_eps=0.0,
                           strategy=strategy)
    exp_i, exp_s = [], []
    for c in range(4):
        idx = torch.nonzero(labels == c).squeeze(1)
        ri, rs = _mmcv(segs[idx], scores[idx], 0.5, 1e-3)
        exp_i.append(idx[ri][:25])
        exp_s.append(rs[:25])
    assert torch.equal(keep, torch.cat(exp_i))
    assert torch.equal(sc, torch.cat(exp_s))


def test_expf_glibc_matches_libm_expf():
    path = ctypes.util.find_library('m')
    if path is None:
        pytest.skip('no libm to compare with')
    libm = ctypes.CDLL(path)
    libm.expf.restype, libm.expf.argtypes = ctypes.c_float, [ctypes.c_float]
    x = (-np.random.default_rng(0).random(20000) * 4).astype(np.float32)
    ref = np.array([libm.expf(float(v)) for v in x], dtype=np.float32)
    assert np.array_equal(expf_glibc(x), ref)


def test_segment_voting_weights_by_score_times_iou():
    nms = torch.tensor([[0., 10.]])
    allsegs = torch.tensor([[0., 10.], [2., 10.], [50., 60.]])
    scores = torch.tensor([0.5, 0.25, 0.9])
    out = segment_voting(nms, allsegs, scores, iou_threshold=0.75)
    w = torch.tensor([0.5 * 1.0, 0.25 * 0.8])       # IoU([0,10],[2,10]) = 0.8; third: 0
    expected = (w[:, None] * allsegs[:2]).sum(0) / w.sum()
    torch.testing.assert_close(out[0], expected)


def test_batched_multiclass_caps_and_sorts():
    segs, scores = _random(200, 3)
    labels = torch.arange(200) % 3
    s, sc, lab = batched_soft_nms_1d(segs, scores, labels, max_seg_num=30)
    assert len(s) == 30 and torch.all(sc[:-1] >= sc[1:])
    # class-agnostic + voting keeps scores, moves boundaries
    s2, sc2, _ = batched_soft_nms_1d(segs, scores, labels, max_seg_num=30, multiclass=False,
                                     voting_thresh=0.5)
    s3, sc3, _ = batched_soft_nms_1d(segs, scores, labels, max_seg_num=30, multiclass=False)
    assert torch.equal(sc2, sc3) and not torch.equal(s2, s3)


@pytest.mark.parametrize('seed', range(3))
@STRATEGIES
def test_dense_groups_of_unequal_size_match_per_class_mmcv(seed, strategy):
    """Dense overlap, groups finishing at very different steps (exercises the per-step layout's
    column/row compaction) and a few exact score ties: equal to mmcv run per class."""
    from vmae2_mm.models.localizers import soft_nms as mod
    sizes = [3, 20, 60, 150, 400]
    segs, scores = _random(sum(sizes), seed, span=50.0, max_len=60.0)
    scores[::7] = 0.5                                   # ties across many candidates
    labels = torch.cat([torch.full((k, ), c) for c, k in enumerate(sizes)])
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    labels = labels[perm]
    assert mod._num_overlaps(segs[:, 0].numpy(), segs[:, 1].numpy(),
                             labels.numpy()) > mod._DENSE_DEGREE * len(labels)
    keep, sc = soft_nms_1d(segs, scores, min_score=1e-3, groups=labels, len_eps=0.0,
                           strategy=strategy)
    exp_i, exp_s = [], []
    for c in range(len(sizes)):
        idx = torch.nonzero(labels == c).squeeze(1)
        ri, rs = _mmcv(segs[idx], scores[idx], 0.5, 1e-3)
        exp_i.append(idx[ri])
        exp_s.append(rs)
    assert torch.equal(keep, torch.cat(exp_i))
    assert torch.equal(sc, torch.cat(exp_s))


def test_unknown_strategy_is_refused_by_name():
    with pytest.raises(ValueError, match="strategy must be one of .*'greedy'"):
        soft_nms_1d(torch.tensor([[0., 1.]]), torch.tensor([1.0]), strategy='greedy')
