"""Temporal anchor points of ActionFormer, one per feature step and pyramid level."""
from typing import List, Sequence

import torch
from mmaction.registry import TASK_UTILS
from torch import Tensor


@TASK_UTILS.register_module()
class TemporalPointGenerator:
    """Points ``(t, reg_lo, reg_hi, stride)`` on the level-0 feature grid (official
    ``PointGenerator`` without offset).

    Level l with stride s has points ``t = i * s`` for ``i < T_l``; each carries the level's
    regression range (in grid units, both bounds inclusive during assignment). Points are built
    on the fly instead of from a fixed buffer, so any sequence length works.

    Args:
        strides (Sequence[int]): Stride of each level, e.g. (1, 2, 4, 8, 16, 32).
        regression_range (Sequence[Sequence[float]]): (lo, hi) per level, e.g.
            ((0, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 10000)).
    """

    def __init__(self, strides: Sequence[int],
                 regression_range: Sequence[Sequence[float]]) -> None:
        if len(strides) != len(regression_range):
            raise ValueError(f'regression_range has {len(regression_range)} entries but there '
                             f'are {len(strides)} levels (strides {list(strides)})')
        for rr in regression_range:
            if len(rr) != 2 or rr[0] > rr[1]:
                raise ValueError(f'each regression_range entry must be (lo, hi) with lo <= hi, '
                                 f'got {rr}')
        self.strides = [int(s) for s in strides]
        self.regression_range = [(float(lo), float(hi)) for lo, hi in regression_range]

    def __call__(self, lengths: Sequence[int], device=None) -> List[Tensor]:
        """Points of every level.

        Args:
            lengths (Sequence[int]): T_l of each level.
            device (torch.device, optional): Device of the output.

        Returns:
            list[Tensor]: [T_l, 4] float32 per level: (t, reg_lo, reg_hi, stride).
        """
        if len(lengths) != len(self.strides):
            raise ValueError(f'got {len(lengths)} levels, expected {len(self.strides)}')
        out = []
        for t_l, s, (lo, hi) in zip(lengths, self.strides, self.regression_range):
            pts = torch.zeros(t_l, 4, device=device)
            pts[:, 0] = torch.arange(t_l, device=device, dtype=torch.float32) * s
            pts[:, 1], pts[:, 2], pts[:, 3] = lo, hi, s
            out.append(pts)
        return out
