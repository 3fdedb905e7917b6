"""Gaussian Soft-NMS for 1-D segments in numpy (no compiled extension), plus segment voting.

Semantics are those of ActionFormer's C++ ``nms_1d_cpu.softnms`` (method 2), itself a 1-D port
of mmcv's ``softnms_cpu`` (Bodla et al., arXiv 1704.04503):

* repeatedly select the highest (decayed) score; every remaining candidate is multiplied by
  ``exp(-IoU^2 / sigma)`` (the IoU threshold plays no role in the Gaussian method);
* a candidate whose decayed score falls **below** ``min_score`` is discarded; the first
  selected element is never tested, so at least one segment survives (per group);
* segment lengths are ``end - start + len_eps`` (1e-6 upstream; mmcv's 2-D kernel on boxes
  ``(s, 0, e, 1)`` with ``offset=0`` is the same algorithm with ``len_eps=0``);
* the output is in selection order with the decayed scores.

**Exactness.** All arithmetic is float32 in the C++ evaluation order, so IoUs and products are
bit-identical. The C++ kernels call ``std::exp(float)``, i.e. glibc's ``expf``, which is *not*
correctly rounded (torch's float32 exp differs from it on ~1% of arguments, a float64 exp
rounded to float32 on ~0.06%); :func:`expf_glibc` evaluates glibc's published algorithm (ARM
optimized routines: 32-entry 2^(i/32) table + cubic, in float64) and matched glibc 2.36 on 400k
of 400k test arguments, which makes kept indices, order and decayed scores bit-identical to
mmcv's ``soft_nms(method='gaussian')``. Ties between equal scores go to the lowest input index
(the C++ loop picks the lowest position of its internally swapped array). A pair of
zero-length segments with ``len_eps=0`` gives 0/0 = NaN in C++; here pairs without overlap are
never decayed (their weight is exactly 1 anyway).

**Speed.** Three exact strategies (``strategy=None`` picks one from the number of groups and
the overlap density; the thresholds were measured with ``benchmarks/bench_soft_nms.py``):

* *sequential over the overlap graph* (at most ``_SEQUENTIAL_MAX_GROUPS`` groups): the
  weights of all overlapping pairs are computed once, vectorised, into a CSR graph; each step
  is then one argmax and one in-place multiply of the pick's neighbours. A candidate decayed
  below ``min_score`` is left in place: scores only decrease, so it could only be picked once
  every remaining score is below ``min_score``, which is where the loop stops anyway;
* *rounds over the overlap graph* (many groups, sparse overlap): a candidate's score only
  changes when an overlapping candidate is picked and picked scores never increase, so every
  live candidate that beats all its live overlapping neighbours is picked next with its current
  score; a round picks all of them at once and applies the decays of each target in selection
  order (recomputing from the initial score when a later round picks an earlier-ordered
  neighbour, so float32 products keep the sequential order);
* *one pick per group and step* on a padded [groups, candidates] layout (many groups, dense
  overlap, where rounds would pick about one candidate each), decaying only overlapping
  candidates; dead candidates are moved out of the overlap test (start = +inf) and compacted
  away every few steps, and the loop ends once every group is empty (or has ``max_num`` picks).

With many groups (classes) the last two run all groups side by side: all classes of a video cost
one loop of at most ``max(picks per class)`` steps, where upstream calls the C++ kernel once per
class. ``max_num`` stops early with exactly the result of a full run truncated to ``max_num``
per group, since the first k picks never depend on later ones.
``benchmarks/bench_soft_nms.py`` measures them against mmcv's C++ loop.
"""
from decimal import Decimal, localcontext
from typing import Optional, Tuple

import numpy as np
import torch
from torch import Tensor

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

    Args:
        x (ndarray): float32 arguments <= 0 (any shape).

    Returns:
        ndarray: float32 ``exp(x)``.
    """
    xd = np.asarray(x, dtype=np.float32).astype(np.float64)
    # in-place float64 steps in glibc's evaluation order (fewer temporaries: this runs once
    # per Soft-NMS step on small arrays, where per-call overhead dominates)
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


def _overlap_counts(start: np.ndarray, end: np.ndarray,
                    group: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Segments in (group, start) order [N] and, for each, how many later ones in that order
    start before it ends (within its group) [N]: an upper bound of its forward overlaps."""
    n = len(start)
    order = np.lexsort((start, group))
    vals = np.unique(np.concatenate([start, end]))
    width = len(vals) + 1
    key_start = group[order] * width + np.searchsorted(vals, start[order])
    key_end = group[order] * width + np.searchsorted(vals, end[order])
    cnt = np.searchsorted(key_start, key_end, side='left') - np.arange(1, n + 1)
    return order, np.maximum(cnt, 0)


def _overlap_graph(start: np.ndarray, end: np.ndarray, area: np.ndarray, sigma: float,
                   order: np.ndarray, cnt: np.ndarray) -> Tuple[np.ndarray, np.ndarray,
                                                                 np.ndarray]:
    """Directed edges (src, dst, weight) between overlapping segments of the same group, from
    :func:`_overlap_counts`' ``order`` and ``cnt``."""
    n = len(start)
    # candidates q after p in (group, start) order with start_q < end_p overlap p
    p = np.repeat(np.arange(n), cnt)
    q = np.arange(1, len(p) + 1) + p - np.repeat(np.cumsum(cnt) - cnt, cnt)
    a, b = order[p], order[q]
    inter = np.minimum(end[a], end[b]) - np.maximum(start[a], start[b])
    pos = inter > 0
    a, b, inter = a[pos], b[pos], inter[pos]
    # C++: ovr = inter / (iarea + areas[pos] - inter), all float32
    ovr = inter / ((area[a] + area[b]) - inter)
    weight = expf_glibc(-(ovr * ovr) / np.float32(sigma))
    return np.concatenate([a, b]), np.concatenate([b, a]), np.concatenate([weight, weight])


# average overlapping neighbours above which one-pick-per-step beats rounds over the graph
_DENSE_DEGREE = 32


def _num_overlaps(start: np.ndarray, end: np.ndarray, group: np.ndarray) -> int:
    """Upper bound of overlapping pairs (start_q in [start_p, end_p) within a group)."""
    return int(_overlap_counts(start, end, group)[1].sum())


def _run_starts(d: np.ndarray) -> np.ndarray:
    """[N] bool: True where a run of equal values in ``d`` [N] begins (cheaper than np.r_)."""
    m = np.empty(len(d), dtype=bool)
    if len(d):
        m[0] = True
        np.not_equal(d[1:], d[:-1], out=m[1:])
    return m


def _multiply_in_order(sc: np.ndarray, d: np.ndarray, w: np.ndarray) -> None:
    """``sc[d_j] *= w_j`` one factor at a time, in the given order (``d`` grouped)."""
    if len(d) == 0:
        return
    pos = np.arange(len(d))
    # k = rank of every factor within its target's run
    k = pos - np.maximum.accumulate(np.where(_run_starts(d), pos, 0))
    kmax = int(k.max())
    if kmax == 0:                       # every target once: one vectorised multiply
        sc[d] = sc[d] * w
        return
    # k-th factor of every target at once: each slice has every target at most once
    for level in range(kmax + 1):
        sel = k == level
        dl = d[sel]
        sc[dl] = sc[dl] * w[sel]


def _selection_key(sc: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """int64 [N] ordering candidates like the C++ selection: by float32 score [N], equal scores
    by lower index (``rank`` [N] = N - 1 - index). The score's bits are made order-preserving
    (negative floats flipped) so one integer max replaces a max plus a tie-break pass."""
    bits = (sc + np.float32(0)).view(np.int32).astype(np.int64)   # + 0: -0.0 -> +0.0
    bits ^= (bits >> 31) & 0x7fffffff
    return (bits << 32) | rank


def _argmax_per_group(sc: np.ndarray, cand: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Index of the highest score (lowest index on ties) among ``cand`` in each group."""
    c = np.flatnonzero(cand)
    c = c[np.lexsort((c, -sc[c].astype(np.float64), group[c]))]
    g = group[c]
    return c[_run_starts(g)]


def _soft_nms_dense_steps(start: np.ndarray, end: np.ndarray, area: np.ndarray,
                          sc: np.ndarray, group: np.ndarray, num_groups: int, sigma: float,
                          min_sc: np.float32, max_num: int) -> Tuple[np.ndarray, np.ndarray]:
    """One selection per group and step on a padded [G, M] layout (used for dense overlap,
    where rounds would pick about one candidate each). Returns picked indices and scores.

    Per step: one argmax per row, the picks' overlaps with their rows, and weights only for
    the overlapping live candidates. Picked/discarded candidates get ``start = +inf`` so they
    never overlap again (no liveness mask per step); dead columns and finished rows are
    compacted every few steps, keeping column order (lowest index first on ties).
    """
    n = len(sc)
    order = np.lexsort((np.arange(n), group))           # rows by group, columns by index
    g = group[order]
    col = np.arange(n) - np.searchsorted(g, g, side='left')
    width = int(col.max()) + 1
    shape = (num_groups, width)
    S = np.full(shape, np.inf, dtype=np.float32)
    E, A = np.zeros(shape, np.float32), np.ones(shape, np.float32)
    SC = np.full(shape, -np.inf, dtype=np.float32)
    IDX = np.full(shape, -1, dtype=np.int64)
    S[g, col], E[g, col], A[g, col] = start[order], end[order], area[order]
    SC[g, col], IDX[g, col] = sc[order], order
    limit = min(max_num if max_num > 0 else width, width)
    picks, picked = [], []
    neg_sigma = np.float32(-sigma)
    inf32, ninf32 = np.float32(np.inf), np.float32(-np.inf)
    rowoff = np.arange(num_groups) * width
    step = 0
    while step < limit:
        if step and step % 16 == 0:
            alive = SC > ninf32
            rows = alive.any(axis=1)
            if not rows.any():
                break
            keep_w = int(alive.sum(axis=1).max())
            if keep_w <= 0.75 * SC.shape[1] or not rows.all():
                # live columns first, in their original order (stable), dead ones cut off
                perm = np.argsort(~alive[rows], axis=1, kind='stable')[:, :keep_w]
                S, E, A, SC, IDX = (np.take_along_axis(X[rows], perm, axis=1)
                                    for X in (S, E, A, SC, IDX))
                width = keep_w
                rowoff = np.arange(len(SC)) * width
        best = SC.argmax(axis=1)                         # first max = lowest index
        flat = rowoff + best
        SCf, Sf = SC.reshape(-1), S.reshape(-1)
        best_sc = SCf[flat]
        if best_sc.max() == ninf32:
            break
        picks.append(IDX.reshape(-1)[flat])
        picked.append(best_sc)
        SCf[flat] = ninf32
        s_p, e_p, a_p = Sf[flat], E.reshape(-1)[flat], A.reshape(-1)[flat]
        Sf[flat] = inf32
        inter = np.minimum(e_p[:, None], E)
        inter -= np.maximum(s_p[:, None], S)             # dead candidates (start inf): -inf
        hit = np.flatnonzero(inter > 0)
        if step == 0:
            # C++ tests every remaining candidate after each pick; unhit ones only matter at
            # the first pick (initial scores below min_score), later only decayed ones drop
            low = SC < min_sc
            low.reshape(-1)[hit] = False
            SC[low], S[low] = ninf32, inf32
        if len(hit):
            ov = inter.reshape(-1)[hit]
            # C++: ovr = inter / (iarea + areas[pos] - inter), all float32
            ovr = a_p[hit // width] + A.reshape(-1)[hit]
            ovr -= ov
            np.divide(ov, ovr, out=ovr)
            ovr *= ovr
            ovr /= neg_sigma
            new = SCf[hit] * expf_glibc(ovr)
            SCf[hit] = new
            drop = hit[new < min_sc]
            if len(drop):
                SCf[drop], Sf[drop] = ninf32, inf32
        step += 1
    if not picks:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    keep, scores = np.concatenate(picks), np.concatenate(picked)
    valid = scores > ninf32
    return keep[valid], scores[valid]


# up to this many groups, one group after the other (sequential) beats the side-by-side
# strategies: with a few groups their per-step work is spread over too few picks
_SEQUENTIAL_MAX_GROUPS = 4
_STRATEGIES = ('sequential', 'rounds', 'dense')


def _soft_nms_sequential(start: np.ndarray, end: np.ndarray, area: np.ndarray, sc: np.ndarray,
                         group: np.ndarray, num_groups: int, sigma: float, min_sc: np.float32,
                         max_num: int, order: np.ndarray,
                         cnt: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The C++ loop, one group after the other, over a precomputed overlap graph.

    Returns picked indices [K] and their decayed scores [K], grouped by ascending group, each
    group in selection order (``order``/``cnt`` from :func:`_overlap_counts`).
    """
    n = len(sc)
    src, dst, weight = _overlap_graph(start, end, area, sigma, order, cnt)
    # positions: by group, then by input index, so a group is one slice and argmax's first
    # maximum is the lowest input index (the C++ tie-break)
    perm = np.lexsort((np.arange(n), group))
    pos = np.empty(n, dtype=np.int64)
    pos[perm] = np.arange(n)
    src, dst = pos[src], pos[dst]
    by_src = np.argsort(src, kind='stable')
    nbr, wt = dst[by_src], weight[by_src]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    ptr = indptr.tolist()                              # python ints: cheaper per-step slicing
    score = sc[perm]
    bounds = np.searchsorted(group[perm], np.arange(num_groups + 1)).tolist()
    ninf = np.float32(-np.inf)
    picks, picked = [], []
    for g in range(num_groups):
        lo, hi = bounds[g], bounds[g + 1]
        view = score[lo:hi]
        limit = hi - lo if max_num <= 0 else min(max_num, hi - lo)
        for step in range(limit):
            p = int(view.argmax()) + lo
            best = score[p]
            # the first pick is never tested; later, the best below min_score means every
            # remaining candidate was (or would have been) discarded by the C++ loop
            if step and best < min_sc:
                break
            picks.append(p)
            picked.append(best)
            score[p] = ninf
            a, b = ptr[p], ptr[p + 1]
            if a != b:
                targets = nbr[a:b]
                score[targets] *= wt[a:b]
    keep = perm[np.asarray(picks, dtype=np.int64)]
    return keep, np.asarray(picked, dtype=np.float32)


def soft_nms_1d(segments: Tensor, scores: Tensor, sigma: float = 0.5, min_score: float = 1e-3,
                max_num: int = -1, groups: Optional[Tensor] = None,
                len_eps: float = 1e-6,
                strategy: Optional[str] = None) -> Tuple[Tensor, Tensor]:
    """Gaussian Soft-NMS, independently within each group (class) of segments.

    Args:
        segments (Tensor): [N, 2] (start, end); computed in float32.
        scores (Tensor): [N] scores.
        sigma (float): Gaussian width; weight ``exp(-IoU^2 / sigma)``. Defaults to 0.5.
        min_score (float): Candidates decayed below it are discarded. Defaults to 1e-3.
        max_num (int): Keep at most this many per group (<= 0: all). Defaults to -1.
        groups (Tensor, optional): [N] int group ids (class labels); None = one group.
        len_eps (float): Added to every length (1e-6 = ActionFormer, 0 = mmcv). Defaults to 1e-6.
        strategy (str, optional): ``'sequential'``, ``'rounds'`` or ``'dense'`` (see the module
            docstring; all give identical results); None chooses the fastest for the input.

    Returns:
        tuple[Tensor, Tensor]: ``keep`` [K] long indices into the input and their decayed
        scores [K] float32 (on the input's device), grouped by ascending group id, each group
        in selection order.
    """
    if segments.dim() != 2 or segments.shape[-1] != 2:
        raise ValueError(f'segments must be [N, 2], got {list(segments.shape)}')
    if scores.shape != segments.shape[:1]:
        raise ValueError(f'scores must be [N={segments.shape[0]}], got {list(scores.shape)}')
    if not sigma > 0:
        raise ValueError(f'sigma must be > 0, got {sigma}')
    if strategy is not None and strategy not in _STRATEGIES:
        raise ValueError(f'strategy must be one of {_STRATEGIES} or None, got {strategy!r}')
    device, n = segments.device, segments.shape[0]
    if groups is not None and groups.shape != (n, ):
        raise ValueError(f'groups must be [N={n}], got {list(groups.shape)}')
    if n == 0:
        return torch.zeros(0, dtype=torch.long, device=device), torch.zeros(0, device=device)
    seg = segments.detach().cpu().float().numpy()
    start, end = np.ascontiguousarray(seg[:, 0]), np.ascontiguousarray(seg[:, 1])
    sc = scores.detach().cpu().float().numpy().copy()
    if groups is None:
        group, num_groups = np.zeros(n, dtype=np.int64), 1
    else:
        _, group = np.unique(groups.detach().cpu().numpy(), return_inverse=True)
        group = group.astype(np.int64).reshape(-1)
        num_groups = int(group.max()) + 1
    rank = (n - 1) - np.arange(n)                      # tie-break: lower index first
    area = (end - start) + np.float32(len_eps)         # float32, as x2 - x1 + 1e-6 upstream
    min_sc = np.float32(min_score)
    order, cnt = _overlap_counts(start, end, group)
    if strategy is None:
        if num_groups <= _SEQUENTIAL_MAX_GROUPS:
            strategy = 'sequential'
        else:
            strategy = 'dense' if int(cnt.sum()) > _DENSE_DEGREE * n else 'rounds'
    if strategy == 'sequential':
        keep, picked = _soft_nms_sequential(start, end, area, sc, group, num_groups, sigma,
                                            min_sc, max_num, order, cnt)
        return torch.from_numpy(keep).to(device), torch.from_numpy(picked).to(device)
    if strategy == 'dense':
        keep, picked = _soft_nms_dense_steps(start, end, area, sc, group, num_groups, sigma,
                                             min_sc, max_num)
        order = np.lexsort((keep, -picked.astype(np.float64), group[keep]))
        return (torch.from_numpy(keep[order]).to(device),
                torch.from_numpy(picked[order]).to(device))
    src, dst, weight = _overlap_graph(start, end, area, sigma, order, cnt)

    live = np.ones(n, dtype=bool)
    selected = np.zeros(n, dtype=bool)
    s0 = sc.copy()
    picked_score = np.zeros(n, dtype=np.float32)
    # selection order of picks: score descending, then index ascending
    pick_key = np.zeros(n, dtype=np.float64)
    last_key = np.full(n, -np.inf)                     # order of the last decay applied
    last_src = np.full(n, -1, dtype=np.int64)
    done_src = np.zeros(0, dtype=np.int64)             # applied decays: pick -> live target
    done_dst, done_w = done_src.copy(), np.zeros(0, dtype=np.float32)

    # step 0 of every group: its top element is taken untested, then all below min_score go
    sel = np.zeros(n, dtype=bool)
    sel[_argmax_per_group(sc, live, group)] = True
    while True:
        picked_score[sel] = sc[sel]
        pick_key[sel] = -sc[sel].astype(np.float64)
        selected |= sel
        live &= ~sel
        # picks are an independent set (strict maxima among live neighbours) and the edge list
        # only joins live candidates, so every edge out of a pick ends at a live target
        m = sel[src]
        ns, nd, nw = src[m], dst[m], weight[m]
        o = np.lexsort((ns, pick_key[ns], nd))
        ns, nd, nw = ns[o], nd[o], nw[o]
        # a target whose new decays all come after those already applied is updated in place;
        # otherwise (this round picked a neighbour that precedes an earlier pick) it is
        # recomputed from its initial score so the float32 products keep the sequential order
        head = _run_starts(nd)
        hd, hs = nd[head], ns[head]
        early = (pick_key[hs] < last_key[hd]) | ((pick_key[hs] == last_key[hd]) &
                                                 (hs < last_src[hd]))
        redo = np.zeros(n, dtype=bool)
        redo[hd[early]] = True
        inplace = ~redo[nd]
        _multiply_in_order(sc, nd[inplace], nw[inplace])
        done_src = np.concatenate([done_src, ns])
        done_dst = np.concatenate([done_dst, nd])
        done_w = np.concatenate([done_w, nw])
        if redo.any():
            r = redo[done_dst]
            rs, rd, rw = done_src[r], done_dst[r], done_w[r]
            o = np.lexsort((rs, pick_key[rs], rd))
            sc[redo] = s0[redo]
            _multiply_in_order(sc, rd[o], rw[o])
        if len(nd):
            tail = np.roll(_run_starts(nd), -1)
            td, ts = nd[tail], ns[tail]
            newer = (pick_key[ts] > last_key[td]) | ((pick_key[ts] == last_key[td]) &
                                                     (ts > last_src[td]))
            last_key[td[newer]] = pick_key[ts[newer]]
            last_src[td[newer]] = ts[newer]
        live &= sc >= min_sc
        if max_num > 0:
            # a group is complete once max_num picks beat its best live score: later picks
            # can only score lower
            best_live = np.full(num_groups, -np.inf, dtype=np.float32)
            np.maximum.at(best_live, group[live], sc[live])
            ahead = np.bincount(group[selected & (picked_score > best_live[group])],
                                minlength=num_groups)
            live &= ahead[group] < max_num
        if not live.any():
            break
        # edges between live candidates decide the next picks; decays of dead targets go
        keep_e = live[src] & live[dst]
        src, dst, weight = src[keep_e], dst[keep_e], weight[keep_e]
        keep_d = live[done_dst]
        done_src, done_dst, done_w = done_src[keep_d], done_dst[keep_d], done_w[keep_d]
        # every live candidate beating all its live overlapping neighbours is picked next with
        # its current score (neighbour scores only decrease); ties: lower index first
        key = _selection_key(sc, rank)
        nmax = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        np.maximum.at(nmax, dst, key[src])
        sel = live & (key > nmax)

    keep = np.flatnonzero(selected)
    keep = keep[np.lexsort((keep, -picked_score[keep].astype(np.float64), group[keep]))]
    if max_num > 0:
        g = group[keep]
        keep = keep[np.arange(len(keep)) - np.searchsorted(g, g, side='left') < max_num]
    return (torch.from_numpy(keep).to(device),
            torch.from_numpy(picked_score[keep]).to(device))


def segment_iou(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise temporal IoU ``inter / (len_a + len_b - inter)``.

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
                        len_eps: float = 1e-6) -> Tuple[Tensor, Tensor, Tensor]:
    """ActionFormer's ``batched_nms`` with Gaussian Soft-NMS.

    ``multiclass=True``: Soft-NMS per class, each capped at ``max_seg_num`` (no voting, as
    upstream). ``multiclass=False``: one class-agnostic Soft-NMS, then
    :func:`segment_voting` over all candidates when ``voting_thresh > 0``. Finally everything is
    sorted by score (descending, stable) and truncated to ``max_seg_num``.

    Args:
        segments (Tensor): [N, 2] candidate segments (grid units).
        scores (Tensor): [N] scores.
        labels (Tensor): [N] long class ids.
        sigma (float): Gaussian width. Defaults to 0.5.
        min_score (float): Discard threshold on decayed scores. Defaults to 1e-3.
        max_seg_num (int): Cap per class and overall. Defaults to 200.
        multiclass (bool): Per-class NMS. Defaults to True.
        voting_thresh (float): IoU of voters in class-agnostic mode (0 = off). Defaults to 0.
        len_eps (float): Length epsilon of the IoU. Defaults to 1e-6.

    Returns:
        tuple[Tensor, Tensor, Tensor]: segments [K, 2], scores [K], labels [K].
    """
    if segments.shape[0] == 0:
        return segments.new_zeros(0, 2), scores.new_zeros(0), labels.new_zeros(0)
    keep, kept_scores = soft_nms_1d(segments, scores, sigma, min_score, max_seg_num,
                                    labels if multiclass else None, len_eps)
    kept_segments = segments[keep].float()
    if not multiclass and voting_thresh > 0:
        kept_segments = segment_voting(kept_segments, segments.float(), scores.float(),
                                       voting_thresh)
    order = torch.argsort(kept_scores, descending=True, stable=True)
    if max_seg_num > 0:
        order = order[:max_seg_num]
    return kept_segments[order], kept_scores[order], labels[keep][order]
