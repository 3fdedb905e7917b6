"""Reconstruction targets of VideoMAE (V2): patchify and per-patch normalised pixels.

Pure functions (facts: ``videomaev2.md`` section 5; OpenGVLab/VideoMAEv2
``engine_for_pretraining.py`` and HF ``VideoMAEForPreTraining`` compute the same thing).
"""
from typing import Optional

from torch import Tensor

from ..backbones.vit_layers import cube_view


def patchify(videos: Tensor, patch_size: int, tubelet_size: int = 2) -> Tensor:
    """Cut videos into cubes, pixels of a cube ordered (t, h, w), channels last.

    Args:
        videos (Tensor): [B, C, T, H, W].
        patch_size (int): Spatial cube size p.
        tubelet_size (int): Temporal cube size. Defaults to 2.

    Returns:
        Tensor: [B, N, tubelet*p*p, C] with N = T'H'W' in the backbone's (t, h, w) raster order.
    """
    x = cube_view(videos, patch_size, tubelet_size)
    b, t, h, w = x.shape[:4]
    return x.reshape(b, t * h * w, tubelet_size * patch_size**2, videos.shape[1])


def gather_cubes(videos: Tensor, patch_size: int, tubelet_size: int = 2,
                 kept: Optional[Tensor] = None) -> Tensor:
    """The cubes of ``videos`` (all, or only the ``kept`` ones), pixels (t, h, w), channels last.

    Args:
        videos (Tensor): [B, C, T, H, W].
        patch_size (int): Spatial cube size p.
        tubelet_size (int): Temporal cube size. Defaults to 2.
        kept (Tensor, optional): [B, N] bool with the same count per row; only these cubes
            are copied (no full-video copy), in raster order.

    Returns:
        Tensor: [B, N, tubelet*p*p, C] (or [B, N_kept, tubelet*p*p, C] with ``kept``).
    """
    if kept is None:
        return patchify(videos, patch_size, tubelet_size)
    view = cube_view(videos, patch_size, tubelet_size)
    b, t, h, w = view.shape[:4]
    idx = kept.reshape(b, t, h, w).nonzero(as_tuple=True)
    return view[idx].reshape(b, -1, tubelet_size * patch_size**2, videos.shape[1])


def normalize_cubes(cubes: Tensor, normalize: bool = True, eps: float = 1e-6) -> Tensor:
    """[B, M, tubelet*p*p, C] cube pixels -> [B, M, tubelet*p*p*C] targets.

    With ``normalize`` each cube is normalised per channel over its ``tubelet*p*p`` pixels:
    ``(x - mean) / (sqrt(unbiased var) + eps)`` -- the unbiased variance and eps *added to the
    std*, as the official code and HF do. Feature index ((t*p + h)*p + w)*C + c.
    """
    x = cubes
    if normalize:
        x = (x - x.mean(dim=-2, keepdim=True)) / (
            x.var(dim=-2, unbiased=True, keepdim=True).sqrt() + eps)
    return x.flatten(2)


def pixel_targets(videos01: Tensor, patch_size: int, tubelet_size: int = 2,
                  normalize: bool = True, eps: float = 1e-6,
                  kept: Optional[Tensor] = None) -> Tensor:
    """Per-cube reconstruction targets, flattened channel-last
    (:func:`gather_cubes` then :func:`normalize_cubes`).

    Args:
        videos01 (Tensor): [B, C, T, H, W] pixels in [0, 1] (un-normalised).
        patch_size (int): Spatial cube size p.
        tubelet_size (int): Temporal cube size. Defaults to 2.
        normalize (bool): Per-cube normalisation (official ``normlize_target``). Defaults to True.
        eps (float): Added to the std. Defaults to 1e-6.
        kept (Tensor, optional): [B, N] bool with the same count per row; only these cubes
            are gathered (no full-video copy), in raster order.

    Returns:
        Tensor: [B, N, tubelet*p*p*C] (or [B, N_kept, ...] with ``kept``); feature index
        ((t*p + h)*p + w)*C + c.
    """
    return normalize_cubes(gather_cubes(videos01, patch_size, tubelet_size, kept), normalize,
                           eps)


def masked_mse(pred: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """Mean over the weighted tokens of the per-token MSE.

    Args:
        pred (Tensor): [B, M, D] predictions.
        target (Tensor): [B, M, D] targets.
        weight (Tensor): [B, M] bool or float; tokens counted in the loss.

    Returns:
        Tensor: scalar ``sum(mse_token * weight) / sum(weight)`` (NaN-free only if some weight
        is non-zero; callers guarantee that).
    """
    per_token = (pred - target).pow(2).mean(dim=-1)
    weight = weight.to(per_token.dtype)
    return (per_token * weight).sum() / weight.sum()


__all__ = ['cube_view', 'patchify', 'gather_cubes', 'normalize_cubes', 'pixel_targets',
           'masked_mse']
