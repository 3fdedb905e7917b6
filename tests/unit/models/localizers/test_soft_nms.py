"""Soft-NMS: ActionFormer's C++ semantics (hand-worked tie fixtures, a line-by-line Python
transcription of ``nms_1d_cpu.softnms`` as the reference), bit-exact parity with mmcv's C++
kernel, ``batched_nms`` and voting."""
import ctypes
import ctypes.util
import math

import numpy as np
import pytest
import torch

from vmae2_mm.models.localizers.soft_nms import (batched_soft_nms_1d, expf_glibc,
                                                 segment_voting, soft_nms_1d)

_LIBM = ctypes.util.find_library('m')
needs_libm = pytest.mark.skipif(_LIBM is None, reason='no libm to call expf from')
_METHOD_ID = {'hard': 0, 'linear': 1, 'gaussian': 2}


def _expf(x):
    libm = ctypes.CDLL(_LIBM)
    libm.expf.restype, libm.expf.argtypes = ctypes.c_float, [ctypes.c_float]
    return np.float32(libm.expf(float(x)))


def cpp_softnms(segs, scores, iou_threshold=0.1, sigma=0.5, min_score=1e-3, method='gaussian',
                len_eps=1e-6):
    """ActionFormer's ``softnms_1d_cpu`` transcribed statement by statement (float32 scalars,
    libm ``expf``): returns (kept input indices in selection order, their decayed scores)."""
    f32 = np.float32
    method = _METHOD_ID[method]
    x1 = [f32(v) for v in segs[:, 0]]
    x2 = [f32(v) for v in segs[:, 1]]
    sc = [f32(v) for v in scores]
    areas = [f32(f32(b - a) + f32(len_eps)) for a, b in zip(x1, x2)]
    thr, sig, ms = f32(iou_threshold), f32(sigma), f32(min_score)
    nsegs = len(sc)
    inds = list(range(nsegs))
    dets = []
    i = 0
    while i < nsegs:
        max_score, max_pos = sc[i], i
        pos = i + 1
        while pos < nsegs:
            if max_score < sc[pos]:
                max_score, max_pos = sc[pos], pos
            pos += 1
        ix1, ix2, iscore = x1[max_pos], x2[max_pos], sc[max_pos]
        iarea, iind = areas[max_pos], inds[max_pos]
        dets.append(iscore)
        x1[max_pos], x2[max_pos], sc[max_pos] = x1[i], x2[i], sc[i]
        areas[max_pos], inds[max_pos] = areas[i], inds[i]
        x1[i], x2[i], sc[i], areas[i], inds[i] = ix1, ix2, iscore, iarea, iind
        pos = i + 1
        while pos < nsegs:
            xx1 = max(ix1, x1[pos])
            xx2 = min(ix2, x2[pos])
            inter = max(f32(0), f32(xx2 - xx1))
            ovr = f32(inter / f32(f32(iarea + areas[pos]) - inter))
            weight = f32(1)
            if method == 0:
                if ovr >= thr:
                    weight = f32(0)
            elif method == 1:
                if ovr >= thr:
                    weight = f32(1) - ovr
            else:
                weight = _expf(f32(-(ovr * ovr)) / sig)
            sc[pos] = f32(sc[pos] * weight)
            if sc[pos] < ms:
                last = nsegs - 1
                x1[pos], x2[pos], sc[pos] = x1[last], x2[last], sc[last]
                areas[pos], inds[pos] = areas[last], inds[last]
                nsegs -= 1
                pos -= 1
            pos += 1
        i += 1
    return inds[:nsegs], np.array(dets[:nsegs], dtype=np.float32)


def cpp_batched_nms(segs, scores, labels, sigma, min_score, max_seg_num, **kw):
    """ActionFormer's ``batched_nms`` (multiclass, soft) around :func:`cpp_softnms`."""
    out_i, out_s = [], []
    for c in torch.unique(labels):
        idx = torch.where(labels == c)[0]
        ki, ks = cpp_softnms(segs[idx].numpy(), scores[idx].numpy(), sigma=sigma,
                             min_score=min_score, **kw)
        out_i.append(idx[ki][:max_seg_num])
        out_s.append(torch.from_numpy(ks)[:max_seg_num])
    keep, kept = torch.cat(out_i), torch.cat(out_s)
    order = kept.sort(descending=True)[1][:min(max_seg_num, len(kept))]
    return segs[keep][order], kept[order], labels[keep][order]


def test_hand_checked_fixture():
    segs = torch.tensor([[0., 10.], [5., 15.], [20., 30.], [0., 10.], [40., 50.]])
    scores = torch.tensor([0.9, 0.8, 0.3, 0.0005, 0.25])
    keep, sc = soft_nms_1d(segs, scores, sigma=0.5, min_score=0.25, len_eps=0.0)
    # A picked; B: IoU 5/15 -> 0.8 * exp(-(1/3)^2 / 0.5); C, E untouched; D (IoU 1 with A and
    # already below min_score) dropped; E == min_score stays (only '< min_score' drops)
    assert keep.tolist() == [0, 1, 2, 4]
    expected = [0.9, 0.8 * math.exp(-(1 / 9) / 0.5), 0.3, 0.25]
    assert np.allclose(sc.numpy(), expected, rtol=1e-6)


def test_tie_goes_to_the_first_slot_of_the_swapped_array_not_the_lowest_index():
    segs = torch.tensor([[0., 10.], [20., 30.], [40., 50.]])     # disjoint: no decay at all
    keep, sc = soft_nms_1d(segs, torch.tensor([0.7, 0.7, 0.9]))
    # step 0: the maximum 0.9 is in slot 2; swapping it into slot 0 moves candidate 0 to slot
    # 2: array [2, 1, 0]. Step 1: slots 1, 2 tie at 0.7, the first one (candidate 1) wins.
    # Lowest index first would give [2, 0, 1].
    assert keep.tolist() == [2, 1, 0]
    assert sc.tolist() == [pytest.approx(0.9), pytest.approx(0.7), pytest.approx(0.7)]


def test_tie_decides_which_of_two_duplicates_survives():
    segs = torch.tensor([[0., 10.], [0., 10.], [100., 110.]])
    keep, sc = soft_nms_1d(segs, torch.tensor([0.5, 0.5, 0.9]), sigma=0.5, min_score=0.1)
    # step 0 picks 2 (0.9) and swaps candidate 0 behind candidate 1: [2, 1, 0]. Step 1: tie
    # 0.5 / 0.5, slot 1 (candidate 1) wins; candidate 0 (IoU 1) decays to 0.5 exp(-1/0.5) =
    # 0.068 < 0.1 and is discarded. Lowest index first would keep candidate 0 instead.
    assert keep.tolist() == [2, 1]
    assert sc.tolist() == [pytest.approx(0.9), pytest.approx(0.5)]


def test_tie_after_a_discard_goes_to_the_candidate_moved_from_the_end():
    segs = torch.tensor([[0., 10.], [0., 10.], [20., 30.], [40., 50.], [60., 70.]])
    scores = torch.tensor([0.9, 0.2, 0.5, 0.5, 0.5])
    keep, _ = soft_nms_1d(segs, scores, sigma=0.5, min_score=0.1)
    # step 0 picks 0 (slot 0, no swap). The walk decays 1 (IoU 1) to 0.2 exp(-2) = 0.027 < 0.1:
    # discarded, the last candidate (4) moves into slot 1: array [0, 4, 2, 3]. The three 0.5s
    # (disjoint) then come out in slot order 4, 2, 3; lowest index first: 2, 3, 4.
    assert keep.tolist() == [0, 4, 2, 3]


def test_len_eps_enters_the_iou():
    segs = torch.tensor([[0., 1.], [0., 2.]])
    _, sc0 = soft_nms_1d(segs, torch.tensor([1.0, 1.0 - 1e-3]), len_eps=0.0)
    _, sc6 = soft_nms_1d(segs, torch.tensor([1.0, 1.0 - 1e-3]), len_eps=1e-6)
    # C++: lengths get +1e-6, the intersection does not
    iou0, iou6 = 1 / 2, 1 / ((1 + 1e-6) + (2 + 1e-6) - 1)
    assert sc6[1] > sc0[1]
    assert math.isclose(sc0[1].item(), 0.999 * math.exp(-iou0**2 / 0.5), rel_tol=1e-6)
    assert math.isclose(sc6[1].item(), 0.999 * math.exp(-iou6**2 / 0.5), rel_tol=1e-6)


def test_top_element_survives_when_everything_is_below_min_score():
    segs = torch.tensor([[0., 1.], [5., 6.], [10., 11.]])
    keep, sc = soft_nms_1d(segs, torch.tensor([1e-4, 5e-4, 2e-4]), min_score=1e-3)
    assert keep.tolist() == [1] and sc.tolist() == [pytest.approx(5e-4)]


def _random(n, seed, span=100.0, max_len=20.0, levels=0):
    """Random segments; ``levels`` > 0 quantises the scores to that many values (ties)."""
    g = torch.Generator().manual_seed(seed)
    s = torch.rand(n, generator=g) * span
    segs = torch.stack([s, s + torch.rand(n, generator=g) * max_len + 0.1], 1)
    scores = torch.rand(n, generator=g)
    if levels:
        scores = (scores * levels).floor() / levels + 1 / (2 * levels)
    return segs, scores


@needs_libm
@pytest.mark.parametrize('seed', range(4))
@pytest.mark.parametrize('method,min_score', [('gaussian', 1e-3), ('gaussian', 0.05),
                                              ('linear', 0.05), ('hard', 0.05)])
@pytest.mark.parametrize('levels', [0, 6])                  # continuous scores / many ties
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_equals_the_cpp_transcription(seed, method, min_score, levels, dtype):
    segs, scores = _random(90, seed, max_len=40.0, levels=levels)
    segs, scores = segs.to(dtype), scores.to(dtype)
    ref_i, ref_s = cpp_softnms(segs.float().numpy(), scores.float().numpy(), iou_threshold=0.3,
                               sigma=0.5, min_score=min_score, method=method)
    keep, sc = soft_nms_1d(segs, scores, sigma=0.5, min_score=min_score, method=method,
                           iou_threshold=0.3)
    assert keep.tolist() == ref_i
    assert sc.dtype == torch.float32 and np.array_equal(sc.numpy(), ref_s)


@needs_libm
@pytest.mark.parametrize('seed', range(3))
def test_groups_and_cap_equal_per_class_cpp_runs_truncated(seed):
    """Unequal class sizes (rows finishing at different steps) and ties: equal to upstream's
    per-class loop over ``segs[cls_idxs == c]`` with ``dets[:max_num]``."""
    segs, scores = _random(160, seed, span=60.0, max_len=30.0, levels=8)
    labels = torch.tensor([0] * 5 + [3] * 40 + [7] * 115)[
        torch.randperm(160, generator=torch.Generator().manual_seed(seed))]
    keep, sc = soft_nms_1d(segs, scores, max_num=25, groups=labels)
    exp_i, exp_s = [], []
    for c in (0, 3, 7):
        idx = torch.where(labels == c)[0]
        ri, rs = cpp_softnms(segs[idx].numpy(), scores[idx].numpy())
        exp_i += idx[ri][:25].tolist()
        exp_s.append(rs[:25])
    assert keep.tolist() == exp_i
    assert np.array_equal(sc.numpy(), np.concatenate(exp_s))


@needs_libm
@pytest.mark.parametrize('seed', range(2))
def test_batched_equals_actionformer_batched_nms(seed):
    segs, scores = _random(150, seed, span=80.0, max_len=30.0, levels=10)
    labels = torch.randint(0, 4, (150, ), generator=torch.Generator().manual_seed(seed))
    ours = batched_soft_nms_1d(segs, scores, labels, sigma=0.5, min_score=1e-3, max_seg_num=30)
    ref = cpp_batched_nms(segs, scores, labels, sigma=0.5, min_score=1e-3, max_seg_num=30)
    for a, b in zip(ours, ref):
        assert torch.equal(a, b)


def _mmcv(segs, scores, sigma, min_score):
    from mmcv.ops import soft_nms
    n = len(segs)
    boxes = torch.stack([segs[:, 0], torch.zeros(n), segs[:, 1], torch.ones(n)], 1)
    dets, inds = soft_nms(boxes, scores, iou_threshold=0.1, sigma=sigma, min_score=min_score,
                          method='gaussian', offset=0)
    return inds, dets[:, 4]


@pytest.mark.parametrize('seed', range(4))
@pytest.mark.parametrize('sigma,min_score', [(0.5, 1e-3), (0.75, 0.05)])
@pytest.mark.parametrize('max_len,levels', [(20.0, 0), (80.0, 0), (40.0, 20)])
def test_bit_exact_with_mmcv_soft_nms(seed, sigma, min_score, max_len, levels):
    """mmcv's kernel (ActionFormer's was ported from it) on boxes (s, 0, e, 1), offset 0 ==
    ours with len_eps=0: same kept indices, same order (also with ties), same decayed scores."""
    segs, scores = _random(300, seed, max_len=max_len, levels=levels)
    ref_i, ref_s = _mmcv(segs, scores, sigma, min_score)
    keep, sc = soft_nms_1d(segs, scores, sigma=sigma, min_score=min_score, len_eps=0.0)
    assert torch.equal(keep, ref_i)
    assert torch.equal(sc, ref_s)


def test_expf_glibc_matches_libm_expf():
    if _LIBM is None:
        pytest.skip('no libm to compare with')
    x = (-np.random.default_rng(0).random(20000) * 4).astype(np.float32)
    ref = np.array([_expf(v) for v in x], dtype=np.float32)
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


def test_bad_input_is_refused_by_name():
    one = torch.tensor([[0., 1.]])
    with pytest.raises(ValueError, match="method must be one of .*'greedy'"):
        soft_nms_1d(one, torch.tensor([1.0]), method='greedy')
    with pytest.raises(ValueError, match='scores must be finite'):
        soft_nms_1d(one, torch.tensor([float('nan')]))
    with pytest.raises(ValueError, match=r'end >= start, segment 1 is \[5.0, 4.0\]'):
        soft_nms_1d(torch.tensor([[0., 1.], [5., 4.]]), torch.tensor([1.0, 0.5]))
    with pytest.raises(ValueError, match=r'scores must be \[N=1\]'):
        soft_nms_1d(one, torch.tensor([1.0, 0.5]))
