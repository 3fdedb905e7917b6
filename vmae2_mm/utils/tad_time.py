"""Seconds <-> feature-grid conversion for temporal action detection.

Feature ``i`` of a video covers frames ``[i * feat_stride, i * feat_stride + feat_num_frames)``
and sits at its centre, frame ``i * feat_stride + offset_frames``, with frames treated as unit
intervals (ActionFormer's convention, ``offset_frames = 0.5 * feat_num_frames``; OpenTAD-style
features pass their own ``offset_frames``). Hence, for a time ``t`` in seconds::

    g = (t * fps - offset_frames) / feat_stride        # seconds -> grid (level-0 index)
    t = (g * feat_stride + offset_frames) / fps        # grid -> seconds, clamped to [0, duration]

Example (THUMOS14, 16-frame clips at stride 4, 30 fps): t = 10 s -> g = (300 - 8) / 4 = 73.
"""
from typing import Optional, TypeVar, Union

import numpy as np
import torch

Number = TypeVar('Number', float, np.ndarray, torch.Tensor)


def _check(fps: float, feat_stride: float) -> None:
    if not fps > 0:
        raise ValueError(f'fps must be > 0, got {fps}')
    if not feat_stride > 0:
        raise ValueError(f'feat_stride must be > 0 (frames per feature step), got {feat_stride}')


def seconds_to_grid(t: Number, fps: float, feat_stride: float, offset_frames: float) -> Number:
    """Times in seconds -> positions on the feature grid (level-0 index units).

    Args:
        t (float | ndarray | Tensor): Times in seconds, any shape (e.g. segments [M, 2]).
        fps (float): Frames per second the features were extracted at.
        feat_stride (float): Frames between consecutive features.
        offset_frames (float): Frame at the centre of feature 0.

    Returns:
        Same type and shape as ``t``: grid positions ``(t * fps - offset_frames) / feat_stride``.
    """
    _check(fps, feat_stride)
    return (t * fps - offset_frames) / feat_stride


def grid_to_seconds(g: Number, fps: float, feat_stride: float, offset_frames: float,
                    duration: Optional[float] = None) -> Number:
    """Positions on the feature grid -> times in seconds, clamped to ``[0, duration]``.

    Args:
        g (float | ndarray | Tensor): Grid positions (level-0 index units), any shape.
        fps (float): Frames per second the features were extracted at.
        feat_stride (float): Frames between consecutive features.
        offset_frames (float): Frame at the centre of feature 0.
        duration (float, optional): Video length in seconds; None leaves times unclamped
            (below zero is still clamped).

    Returns:
        Same type and shape as ``g``: ``(g * feat_stride + offset_frames) / fps``.
    """
    _check(fps, feat_stride)
    t = (g * feat_stride + offset_frames) / fps
    upper = float('inf') if duration is None else float(duration)
    if isinstance(t, torch.Tensor):
        return t.clamp(min=0.0, max=upper)
    if isinstance(t, np.ndarray):
        return np.clip(t, 0.0, upper)
    return min(max(float(t), 0.0), upper)


def default_offset_frames(feat_num_frames: Union[int, float]) -> float:
    """ActionFormer's feature centre: half the frames a feature covers."""
    return 0.5 * float(feat_num_frames)


__all__ = ['seconds_to_grid', 'grid_to_seconds', 'default_offset_frames']
