"""Fixed sinusoid position tables of the VideoMAE V2 ViT (a leaf module: numpy and torch only).

Used by the backbone, the pretrainer's decoder, the ActionFormer backbone and the checkpoint code,
which must not import ``vmae2_mm.models``.
"""
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def sinusoid_table(num_positions: int, dims: int) -> Tensor:
    """Fixed 1-D sinusoid position table over all tokens, as the official model builds it.

    Angle for token ``pos`` and channel ``j`` is ``pos / 10000^(2*floor(j/2)/dims)``; sin on even
    channels, cos on odd ones. Built in float64 and cast to float32: a float32-only computation
    deviates by up to ~1.4e-4 from the released model's table.

    Args:
        num_positions (int): Number of tokens N.
        dims (int): Channels C.

    Returns:
        Tensor: [1, N, C] float32.
    """
    pos = np.arange(num_positions, dtype=np.float64)[:, None]
    inv = np.power(10000.0, 2 * (np.arange(dims) // 2) / dims)[None, :]
    table = pos / inv
    table[:, 0::2] = np.sin(table[:, 0::2])
    table[:, 1::2] = np.cos(table[:, 1::2])
    return torch.from_numpy(table).float().unsqueeze(0)


def resize_pos_table(table: Tensor, src_grid: Tuple[int, int, int],
                     dst_grid: Tuple[int, int, int]) -> Tensor:
    """Resize a token table laid out on a ``(T', H', W')`` grid, as official fine-tuning does.

    Spatial size: bicubic per temporal slice (align_corners=False); temporal size: linear
    (align_corners=False). This is what ``run_class_finetuning.py`` does to the 8x14x14 table
    when fine-tuning at another resolution or frame count.

    Args:
        table (Tensor): [1, T*H*W, C].
        src_grid (tuple[int]): (T, H, W) of ``table``.
        dst_grid (tuple[int]): (T', H', W') wanted.

    Returns:
        Tensor: [1, T'*H'*W', C] in the dtype of ``table``.
    """
    if tuple(src_grid) == tuple(dst_grid):
        return table
    t, h, w = src_grid
    nt, nh, nw = dst_grid
    c = table.shape[-1]
    x = table.reshape(t, h, w, c).float()
    if (h, w) != (nh, nw):
        # (T, H, W, C) -> (T, C, H, W)
        x = F.interpolate(x.permute(0, 3, 1, 2), size=(nh, nw), mode='bicubic',
                          align_corners=False).permute(0, 2, 3, 1)
    if t != nt:
        # (T, H', W', C) -> (H'*W', C, T)
        x = x.reshape(t, nh * nw, c).permute(1, 2, 0)
        x = F.interpolate(x, size=nt, mode='linear', align_corners=False)
        x = x.permute(2, 0, 1)
    return x.reshape(1, nt * nh * nw, c).to(table.dtype)


__all__ = ['sinusoid_table', 'resize_pos_table']
