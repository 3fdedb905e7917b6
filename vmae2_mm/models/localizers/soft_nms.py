"""Soft-NMS for 1-D segments exactly as ActionFormer's C++ ``nms_1d_cpu.softnms``, its
``batched_nms`` and segment voting, in numpy (no compiled extension).

Why our own: torchvision has no Soft-NMS, ``mmcv.ops.soft_nms`` is 2-D without ActionFormer's
``+1e-6`` on lengths, and upstream's kernel is a compiled extension built per torch version.

**The C++ loop** (``libs/utils/csrc/nms_cpu.cpp`` in happyharrycn/actionformer_release, a 1-D
port of mmcv's ``softnms_cpu``; Bodla et al., arXiv 1704.04503) works on one array of
candidates in input order. At step ``i`` it finds the *first* maximum of the scores in slots
``[i, n)`` (a later slot wins only with a strictly higher score), swaps it into slot ``i`` and
outputs it; then it walks the slots ``(i, n)``, multiplies each score by a weight of its IoU
with the pick (``gaussian``: ``exp(-IoU^2 / sigma)``; ``linear``: ``1 - IoU`` if
``IoU >= iou_threshold``; ``hard``: 0 if ``IoU >= iou_threshold``) and discards a candidate
whose score is now ``< min_score`` by moving the *last* candidate into its slot (which is then
examined in turn) and shortening the array. Lengths are ``end - start + 1e-6``, everything is
float32, and the top candidate of step 0 is never tested against ``min_score``.

Because of the swaps, equal scores are resolved by the slot a candidate occupies at that step,
not by its input index: e.g. scores ``[0.7, 0.7, 0.9]`` on disjoint segments are output in the
order ``2, 1, 0`` (step 0 swaps candidate 0 into slot 2 behind candidate 1).

**This implementation replays that array exactly**, one row per group (class), all rows side
by side: per step one ``argmax`` per row (numpy returns the first maximum, as the C++ scan
does), the same swap, the decay of the candidates that overlap the pick (the weight of any
other candidate is exactly 1), and the discards of the step applied at once in the order the
C++ walk produces (:func:`_discard`). Classes are independent arrays, as upstream's
``batched_nms`` calls the kernel once per class (a loop over ``torch.unique(labels)``, no
coordinate offset trick). IoUs, products and ``exp`` are float32 in the C++ evaluation order;
``exp`` is glibc's ``expf`` (:func:`expf_glibc`), which ``std::exp(float)`` calls and which is
not correctly rounded, so kept indices, their order and the decayed scores are bit-identical
to the C++ kernel, also under exact score ties. Tests check this against a line-by-line Python
transcription of the C++ loop and against ``mmcv.ops.soft_nms``.

**Speed.** All classes of a video cost one loop of ``max(picks per class)`` steps, whereas
upstream calls its kernel once per class. Measured with ``benchmarks/bench_soft_nms.py``
against mmcv's C++ ``soft_nms`` (the same loop) called per class, single-threaded: on
ActionFormer-like THUMOS candidate sets (about 6,000 candidates over 20 classes, with and
without the cap of 200 per class, and with many exact score ties) this takes less than twice
the C++ time, with identical results. One group is the slow case (one numpy step per kept
candidate, several times the C++ time): a few ms for FineAction's 378 class-agnostic
candidates. Faster schemes for one group (a precomputed overlap graph, rounds of independent
picks) cannot follow the C++ slot order under ties, and the side-by-side replay meets the
target on its own, so it is the only strategy.

Differences from the C++ code: a ``max_num`` cap stops early (the first ``k`` picks never depend
on later ones, so this equals a full run truncated to ``k``, which is what ActionFormer does);
zero-length segments with ``len_eps=0`` give 0/0 = NaN weights in C++ and weight 1 here;
non-finite scores and segments with ``end < start`` are refused.
"""
from decimal import Decimal, localcontext
from typing import Optional, Tuple

import numpy as np
import torch
from torch import Tensor

METHODS = ('gaussian', 'linear', 'hard')

# glibc expf (sysdeps/ieee754/flt-32/e_expf.c): x = k/32 + r, 2^(k/32) from a table whose entry
# i holds bits(2^(i/32)) - (i << 47), exp(r) by a cubic; constants are the published hex values
_EXP_N = 32
_EXP_INVLN2N = float.fromhex('0x1.71547652b82fep+0') * _EXP_N
_EXP_SHIFT = float.fromhex('0x1.8p+52')
_EXP_C0 = float.fromhex('0x1.c6af84b912394p-5') / _EXP_N**3
_EXP_C1 = float.fromhex('0x1.ebfce50fac4f3p-3') / _EXP_N**2
_EXP_C2 = float.fromhex('0x1.62e42ff0c52d6p-1') / _EXP_N
_EXP_UNDERFLOW = -float.fromhex('0x1.9fe368p6')      # below it expf returns 0


def _exp2_table() -> np.ndarray:
    with localcontext() as ctx:
        ctx.prec = 60
        vals = [float(Decimal(2)**(Decimal(i) / _EXP_N)) for i in range(_EXP_N)]
    bits = np.array(vals, dtype=np.float64).view(np.int64)
    return bits - (np.arange(_EXP_N, dtype=np.int64) << 47)


_EXP_TABLE = _exp2_table()


def expf_glibc(x: np.ndarray) -> np.ndarray:
    """float32 exp rounded as glibc's ``expf``, for bit parity with C++ ``std::exp(float)``.

    numpy's and torch's float32 exp differ from glibc's on about 1% of arguments (a float64 exp
    rounded to float32 on about 0.06%), which would change decayed scores in the last bit.

    Args:
        x (ndarray): float32 arguments <= 0 (any shape).

    Returns:
        ndarray: float32 ``exp(x)``.
    """
    xd = np.asarray(x, dtype=np.float32).astype(np.float64)
    z = np.multiply(xd, _EXP_INVLN2N)
    kd = z + _EXP_SHIFT                  # rounds z to an integer k held in the low bits
    ki = kd.view(np.int64)
    scale = _EXP_TABLE[ki & (_EXP_N - 1)]
    scale += ki << 47
    kd -= _EXP_SHIFT
    r = np.subtract(z, kd, out=z)
    y = r * _EXP_C0
    y += _EXP_C1
    y *= r * r
    r *= _EXP_C2
    r += 1.0
    y += r
    y *= scale.view(np.float64)
    out = y.astype(np.float32)
    if out.size and xd.min() < _EXP_UNDERFLOW:
        out[xd < _EXP_UNDERFLOW] = 0
    return out


def _decay_weight(ovr: np.ndarray, method: str, sigma: np.float32,
                  iou_threshold: np.float32) -> np.ndarray:
    """float32 weights [K] of the C++ ``method`` 2 / 1 / 0 for float32 IoUs ``ovr`` [K]."""
    if method == 'gaussian':
        return expf_glibc(-(ovr * ovr) / sigma)
    hit = ovr >= iou_threshold
    if method == 'linear':
        return np.where(hit, np.float32(1) - ovr, np.float32(1))
    return np.where(hit, np.float32(0), np.float32(1))


# fields of a slot in the row arrays [R, W, 5] (float32; input indices are exact below 2^24)
_X1, _X2, _LEN, _SCORE, _IND = range(5)
# an empty slot never overlaps (start +inf) and never wins (score -inf)
_EMPTY = np.array([np.inf, -np.inf, 1, -np.inf, -1], dtype=np.float32)
_MAX_N = 2**24


def _discard(F: np.ndarray, length: np.ndarray, dr: np.ndarray, dc: np.ndarray,
             min_sc: np.float32) -> None:
    """Apply one step's discards to the row arrays, in place.

    The C++ walk fills the slot of a discarded candidate with the last candidate of the array
    (discarding that one too if it is below ``min_score``), so when a row loses ``k``
    candidates, its discarded slots below the new length receive, in slot order, the surviving
    candidates among its last ``k`` slots, taken from the end.

    Args:
        F (ndarray): [R, W, 5] float32 row arrays (start, end, length, score, input index).
        length (ndarray): [R] int64 array lengths, updated.
        dr (ndarray): [D] rows of the discarded slots, ascending.
        dc (ndarray): [D] their slots, ascending within a row.
        min_sc (float32): Discard threshold: a slot is discarded iff its score is below it.
    """
    k = np.bincount(dr, minlength=len(length))
    new_len = length - k
    # the last k slots of every row, last first
    tr = np.repeat(np.arange(len(length)), k)
    tc = np.repeat(length - 1, k) - (np.arange(len(tr)) - np.repeat(np.cumsum(k) - k, k))
    src = F[tr, tc, _SCORE] >= min_sc
    hole = dc < new_len[dr]
    F[dr[hole], dc[hole]] = F[tr[src], tc[src]]
    F[tr, tc] = _EMPTY
    length[:] = new_len


def soft_nms_1d(segments: Tensor, scores: Tensor, sigma: float = 0.5, min_score: float = 1e-3,
                max_num: int = -1, groups: Optional[Tensor] = None, len_eps: float = 1e-6,
                method: str = 'gaussian',
                iou_threshold: float = 0.1) -> Tuple[Tensor, Tensor]:
    """ActionFormer's C++ Soft-NMS, run independently on each group (class) of segments.

    A group's array is its members in input order, i.e. what upstream's ``batched_nms`` passes
    for each class (``segs[cls_idxs == c]``).

    Args:
        segments (Tensor): [N, 2] (start, end), any unit; rounded to float32 like upstream.
        scores (Tensor): [N] finite scores; rounded to float32.
        sigma (float): Gaussian width; weight ``exp(-IoU^2 / sigma)``. Defaults to 0.5.
        min_score (float): Candidates decayed below it are discarded. Defaults to 1e-3.
        max_num (int): Keep at most this many per group (<= 0: all). Defaults to -1.
        groups (Tensor, optional): [N] int group ids (class labels); None = one group.
        len_eps (float): Added to every length (1e-6 = ActionFormer, 0 = mmcv's kernel on boxes
            ``(s, 0, e, 1)``). Defaults to 1e-6.
        method (str): ``'gaussian'``, ``'linear'`` or ``'hard'`` (C++ methods 2, 1, 0).
            Defaults to 'gaussian'.
        iou_threshold (float): IoU from which ``linear`` and ``hard`` decay (unused by
            ``gaussian``). Defaults to 0.1.

    Returns:
        tuple[Tensor, Tensor]: ``keep`` [K] long indices into the input and their decayed
        scores [K] float32 (on the input's device), grouped by ascending group id, each group
        in the C++ selection order.
    """
    if segments.dim() != 2 or segments.shape[-1] != 2:
        raise ValueError(f'segments must be [N, 2], got {list(segments.shape)}')
    n = segments.shape[0]
    if scores.shape != (n, ):
        raise ValueError(f'scores must be [N={n}], got {list(scores.shape)}')
    if groups is not None and groups.shape != (n, ):
        raise ValueError(f'groups must be [N={n}], got {list(groups.shape)}')
    if n > _MAX_N:
        raise ValueError(f'at most {_MAX_N} segments are supported, got {n}')
    if method not in METHODS:
        raise ValueError(f'method must be one of {METHODS}, got {method!r}')
    if method == 'gaussian' and not sigma > 0:
        raise ValueError(f'sigma must be > 0, got {sigma}')
    if method != 'gaussian' and not 0 < iou_threshold <= 1:
        raise ValueError(f'iou_threshold must be in (0, 1] for {method!r}, got {iou_threshold}')
    device = segments.device
    if n == 0:
        return torch.zeros(0, dtype=torch.long, device=device), torch.zeros(0, device=device)
    seg = segments.detach().cpu().float().numpy()
    sc0 = scores.detach().cpu().float().numpy()
    if not np.isfinite(sc0).all():
        raise ValueError('scores must be finite (the C++ scan never selects a NaN)')
    start, end = seg[:, 0], seg[:, 1]
    if not (end >= start).all():
        bad = int(np.flatnonzero(~(end >= start))[0])
        raise ValueError(f'segments must have end >= start, segment {bad} is {seg[bad].tolist()}')
    if groups is None:
        group = np.zeros(n, dtype=np.int64)
    else:
        group = np.unique(groups.detach().cpu().numpy(), return_inverse=True)[1].reshape(-1)
    counts = np.bincount(group)
    num_groups, width = len(counts), int(counts.max())

    # row g = group g's C++ array, slot = position in it (members in input order)
    order = np.argsort(group, kind='stable')
    slot = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)
    F = np.tile(_EMPTY, (num_groups, width, 1))
    F[group[order], slot] = np.stack([start, end, (end - start) + np.float32(len_eps), sc0,
                                      np.arange(n, dtype=np.float32)], axis=1)[order]
    length = counts.astype(np.int64)
    row_group = np.arange(num_groups)              # group of every row still running
    steps = width if max_num <= 0 else min(max_num, width)
    out = np.zeros((num_groups, steps, 2), dtype=np.float32)   # (score, index) per pick
    out[..., 1] = -1
    min_sc, sig, thr = np.float32(min_score), np.float32(sigma), np.float32(iou_threshold)

    r = np.arange(num_groups)
    for i in range(steps):
        w = int(length.max())
        best = i + np.argmax(F[:, i:w, _SCORE], axis=1)     # first maximum, as the C++ scan
        pick = F[r, best]                                     # [R, 5]
        F[r, best] = F[:, i]
        F[:, i] = pick
        out[row_group, i] = pick[:, _SCORE:]

        # only candidates overlapping the pick can change (any other weight is exactly 1);
        # flatnonzero + divmod: 2-D np.nonzero is several times slower
        rest = F[:, i + 1:w]
        overlap = rest[..., _X1] < pick[:, _X2, None]
        overlap &= rest[..., _X2] > pick[:, _X1, None]
        hr, hc = np.divmod(np.flatnonzero(overlap), overlap.shape[1])
        hit, by = rest[hr, hc], pick[hr]                      # [H, 5] each
        # C++: inter = max(0, min(x2) - max(x1)), >= 0 here already
        ov = np.minimum(hit[:, _X2], by[:, _X2]) - np.maximum(hit[:, _X1], by[:, _X1])
        ovr = ov / ((by[:, _LEN] + hit[:, _LEN]) - ov)        # C++: inter / (iarea + area - inter)
        new = hit[:, _SCORE] * _decay_weight(ovr, method, sig, thr)
        rest[hr, hc, _SCORE] = new
        if i == 0:
            # the first walk also discards initial scores below min_score; later walks can only
            # discard what they decayed
            dr, dc = np.divmod(np.flatnonzero((rest[..., _SCORE] < min_sc)
                                              & (np.arange(1, w) < length[:, None])), w - 1)
        else:
            low = new < min_sc
            dr, dc = hr[low], hc[low]
        if len(dr):
            _discard(F, length, dr, dc + (i + 1), min_sc)
        if length.min() <= i + 1:                             # a row has no candidate left
            running = length > i + 1
            if not running.any():
                break
            F, length, row_group = F[running], length[running], row_group[running]
            r = np.arange(len(row_group))

    picked = out[out[..., 1] >= 0]                            # group by group, in pick order
    keep = torch.from_numpy(picked[:, 1].astype(np.int64)).to(device)
    return keep, torch.from_numpy(np.ascontiguousarray(picked[:, 0])).to(device)


def segment_iou(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise temporal IoU ``inter / (len_a + len_b - inter)`` (no epsilon, as voting).

    Args:
        a (Tensor): [K, 2] segments.
        b (Tensor): [N, 2] segments.

    Returns:
        Tensor: [K, N] IoU.
    """
    inter = (torch.minimum(a[:, None, 1], b[None, :, 1])
             - torch.maximum(a[:, None, 0], b[None, :, 0])).clamp(min=0)
    union = (a[:, 1] - a[:, 0])[:, None] + (b[:, 1] - b[:, 0])[None, :] - inter
    return inter / union


def segment_voting(nms_segments: Tensor, all_segments: Tensor, all_scores: Tensor,
                   iou_threshold: float) -> Tensor:
    """Refine kept segments by the score x IoU weighted mean of their neighbours.

    Every neighbour in ``all_segments`` (the pre-NMS candidates) with IoU >= ``iou_threshold``
    contributes with weight ``score * IoU``; scores are not changed (ActionFormer's
    ``seg_voting``, class-agnostic mode only).

    Args:
        nms_segments (Tensor): [K, 2] kept segments (each is also in ``all_segments``).
        all_segments (Tensor): [N, 2] candidates before NMS.
        all_scores (Tensor): [N] their scores.
        iou_threshold (float): Minimum IoU of a voter.

    Returns:
        Tensor: [K, 2] refined segments.
    """
    if nms_segments.numel() == 0:
        return nms_segments
    iou = segment_iou(nms_segments, all_segments)
    weights = (iou >= iou_threshold).to(all_scores.dtype) * all_scores[None, :] * iou
    weights = weights / weights.sum(dim=1, keepdim=True)
    return weights @ all_segments


def batched_soft_nms_1d(segments: Tensor, scores: Tensor, labels: Tensor, sigma: float = 0.5,
                        min_score: float = 1e-3, max_seg_num: int = 200,
                        multiclass: bool = True, voting_thresh: float = 0.0,
                        len_eps: float = 1e-6, method: str = 'gaussian',
                        iou_threshold: float = 0.1) -> Tuple[Tensor, Tensor, Tensor]:
    """ActionFormer's ``batched_nms`` with its Soft-NMS (``use_soft_nms=True``).

    ``multiclass=True``: Soft-NMS per class, each capped at ``max_seg_num`` (no voting, as
    upstream). ``multiclass=False``: one class-agnostic Soft-NMS, then
    :func:`segment_voting` over all candidates when ``voting_thresh > 0``. Finally the per-class
    results, concatenated by ascending class, are sorted by score with upstream's call
    (``sort(descending=True)``, not stable, so equal scores come out in the same order as
    upstream under the same torch) and truncated to ``max_seg_num``. Runs on CPU; the results
    are moved back to the input's device.

    Args:
        segments (Tensor): [N, 2] candidate segments (grid units).
        scores (Tensor): [N] scores.
        labels (Tensor): [N] long class ids.
        sigma (float): Gaussian width. Defaults to 0.5.
        min_score (float): Discard threshold on decayed scores. Defaults to 1e-3.
        max_seg_num (int): Cap per class and overall (<= 0: none). Defaults to 200.
        multiclass (bool): Per-class NMS. Defaults to True.
        voting_thresh (float): IoU of voters in class-agnostic mode (0 = off). Defaults to 0.
        len_eps (float): Length epsilon of the IoU. Defaults to 1e-6.
        method (str): See :func:`soft_nms_1d`. Defaults to 'gaussian'.
        iou_threshold (float): See :func:`soft_nms_1d`. Defaults to 0.1.

    Returns:
        tuple[Tensor, Tensor, Tensor]: segments [K, 2] float32, scores [K] float32 (decayed),
        labels [K].
    """
    device = segments.device
    if segments.shape[0] == 0:
        return (segments.new_zeros(0, 2, dtype=torch.float32),
                scores.new_zeros(0, dtype=torch.float32), labels.new_zeros(0))
    segments, scores, labels = segments.cpu().float(), scores.cpu().float(), labels.cpu()
    keep, kept_scores = soft_nms_1d(segments, scores, sigma, min_score, max_seg_num,
                                    labels if multiclass else None, len_eps, method,
                                    iou_threshold)
    kept_segments = segments[keep]
    if not multiclass and voting_thresh > 0:
        kept_segments = segment_voting(kept_segments, segments, scores, voting_thresh)
    order = kept_scores.sort(descending=True)[1]
    if max_seg_num > 0:
        order = order[:max_seg_num]
    return (kept_segments[order].to(device), kept_scores[order].to(device),
            labels[keep][order].to(device))
