"""Building blocks of the VideoMAE V2 ViT: cube embedding, attention, MLP, block, sinusoid table.

Parameter names follow the official OpenGVLab/VideoMAEv2 ``modeling_finetune.py`` so released
checkpoints load by prefix stripping alone: ``patch_embed.proj``, ``blocks.i.norm1``,
``blocks.i.attn.{qkv,q_bias,v_bias,proj}``, ``blocks.i.mlp.{fc1,fc2}``, ``blocks.i.gamma_{1,2}``.
"""
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks import DropPath
from torch import Tensor, nn

from vmae2_mm.ops.cpu.fused_attention import (fused_attention, fused_attention_active_for,
                                              fused_attention_available,
                                              fused_attention_unavailable_reason)
from vmae2_mm.ops.cpu.onednn_attention import onednn_attention, onednn_attention_active
from vmae2_mm.ops.cpu.onednn_linear import onednn_available, onednn_preferred

#: ``attn_impl`` values; ``'auto'`` is resolved to one of the others when the model is built
ATTN_IMPLS = ('auto', 'sdpa', 'manual', 'cpu_fused', 'onednn')


def resolve_attn_impl(attn_impl: str) -> str:
    """The attention backend a model built with ``attn_impl`` runs, decided once at build.

    ``'auto'``: ``'cpu_fused'`` where our compiled kernel is built and runs on this CPU, else
    ``'onednn'`` where oneDNN beats MKL here, else ``'sdpa'``. An explicit ``'cpu_fused'`` or
    ``'onednn'`` that cannot run here is an error naming the reason. The CPU backends only
    replace SDPA where they apply (CPU inference, no gradient, enough tokens; see
    :class:`Attention`), so every choice also trains and runs on GPUs.
    """
    if attn_impl not in ATTN_IMPLS:
        raise ValueError(f'attn_impl must be one of {ATTN_IMPLS}, got {attn_impl!r}')
    if attn_impl == 'auto':
        if fused_attention_available():
            return 'cpu_fused'
        return 'onednn' if onednn_preferred() else 'sdpa'
    if attn_impl == 'cpu_fused' and not fused_attention_available():
        raise ValueError("attn_impl='cpu_fused' cannot run here: "
                         f'{fused_attention_unavailable_reason()}')
    if attn_impl == 'onednn' and not onednn_available():
        raise ValueError("attn_impl='onednn' cannot run here: this torch build has no oneDNN "
                         'linear (torch.ops.mkldnn._linear_pointwise)')
    return attn_impl


class CubeEmbed(nn.Module):
    """Cube (tubelet) embedding: one Conv3d with kernel = stride = (tubelet, p, p).

    Args:
        in_channels (int): Input channels. Defaults to 3.
        embed_dims (int): Output channels C.
        patch_size (int): Spatial patch size p.
        tubelet_size (int): Temporal patch size. Defaults to 2.
    """

    def __init__(self, in_channels: int, embed_dims: int, patch_size: int,
                 tubelet_size: int = 2) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        k = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_channels, embed_dims, kernel_size=k, stride=k)

    def grid(self, x: Tensor) -> Tuple[int, int, int]:
        """Token grid ``(T', H', W')`` of an input ``[B, C, T, H, W]``; checks divisibility."""
        _, _, t, h, w = x.shape
        p, tub = self.patch_size, self.tubelet_size
        if t % tub or h % p or w % p:
            raise ValueError(
                f'input of shape {tuple(x.shape)} [B, C, T, H, W] does not tile into cubes of '
                f'{tub}x{p}x{p}: T must be divisible by {tub} and H, W by {p}')
        return t // tub, h // p, w // p

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, C, T, H, W] -> tokens [B, N, C'] in (t, h, w) raster order, contiguous."""
        self.grid(x)
        # contiguous: otherwise every later elementwise op (pos add, residual adds) keeps the
        # transposed channels-first layout and each LayerNorm copies it (~4% of a ViT-B forward)
        return self.proj(x).flatten(2).transpose(1, 2).contiguous()

    def forward_visible(self, x: Tensor, visible: Tensor) -> Tensor:
        """Embed only the ``visible`` cubes: x [B, C, T, H, W], visible [B, N] bool with the
        same count per sample -> [B, N_visible, C'] in raster order.

        A Conv3d whose stride equals its kernel is one linear map per cube, so the visible
        cubes alone go through the same weights (at mask ratio 0.9 about 1/10 of the
        embedding's time and memory); equal to ``forward(x)[visible]`` up to float rounding.
        """
        grid = self.grid(x)
        b, n = visible.shape
        if n != grid[0] * grid[1] * grid[2]:
            raise ValueError(f'visible must be [B, N] with N = {grid[0] * grid[1] * grid[2]} '
                             f'for inputs {tuple(x.shape)}, got {tuple(visible.shape)}')
        idx = visible.reshape(b, *grid).nonzero(as_tuple=True)
        cubes = cube_view(x, self.patch_size, self.tubelet_size)[idx].flatten(1)
        # Conv3d weight [C', C, tubelet, p, p] -> rows in the cube's (tubelet, p, p, C) order
        weight = self.proj.weight.permute(0, 2, 3, 4, 1).flatten(1)
        return F.linear(cubes, weight, self.proj.bias).reshape(b, -1, weight.shape[0])


def cube_view(videos: Tensor, patch_size: int, tubelet_size: int) -> Tensor:
    """[B, C, T, H, W] -> view [B, T', H', W', tubelet, p, p, C] (no copy)."""
    b, c, t, h, w = videos.shape
    p, tub = patch_size, tubelet_size
    if t % tub or h % p or w % p:
        raise ValueError(f'videos of shape {tuple(videos.shape)} do not tile into {tub}x{p}x{p} '
                         'cubes')
    x = videos.reshape(b, c, t // tub, tub, h // p, p, w // p, p)
    return x.permute(0, 2, 4, 6, 3, 5, 7, 1)


class Attention(nn.Module):
    """Multi-head self-attention with a fused bias-free ``qkv`` and separate q/v biases.

    k has no bias (``q_bias``/``v_bias`` only), exactly as the released VideoMAE V2 models.

    Args:
        dims (int): Channels C.
        num_heads (int): Heads; ``dims`` must be divisible by it.
        qkv_bias (bool): Create ``q_bias`` and ``v_bias``. Defaults to True.
        attn_drop (float): Dropout on attention weights. Defaults to 0.
        proj_drop (float): Dropout after the output projection. Defaults to 0.
        attn_impl (str): ``'sdpa'`` (``F.scaled_dot_product_attention``: flash / efficient
            kernels on GPUs), ``'manual'`` (explicit softmax, the official formulation),
            ``'cpu_fused'`` (our compiled kernel,
            :func:`~vmae2_mm.ops.cpu.fused_attention.fused_attention`, for CPU inference where
            it applies, SDPA elsewhere), ``'onednn'``
            (:func:`~vmae2_mm.ops.cpu.onednn_attention.onednn_attention` likewise) or
            ``'auto'`` (:func:`resolve_attn_impl`). Same semantics; kept resolved in
            ``self.attn_impl``. Defaults to ``'auto'``.
    """

    def __init__(self, dims: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.,
                 proj_drop: float = 0., attn_impl: str = 'auto') -> None:
        super().__init__()
        if dims % num_heads:
            raise ValueError(f'embed_dims {dims} must be divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.head_dims = dims // num_heads
        self.scale = self.head_dims**-0.5
        self.attn_impl = resolve_attn_impl(attn_impl)
        self.qkv = nn.Linear(dims, dims * 3, bias=False)
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dims))
            self.v_bias = nn.Parameter(torch.zeros(dims))
        else:
            self.register_parameter('q_bias', None)
            self.register_parameter('v_bias', None)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dims, dims)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, N, C] -> [B, N, C]."""
        b, n, c = x.shape
        drop = self.attn_drop if self.training else 0.
        impl = self.attn_impl
        fused = impl == 'cpu_fused' and not drop and fused_attention_active_for(x, self.num_heads)
        qkv = self.qkv(x)
        # The fused kernel adds q_bias and v_bias itself, as it copies q and v anyway.
        if self.q_bias is not None and not fused:
            bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
            # out of place: hooks on ``self.qkv`` may keep its output; autocast: keep its dtype
            qkv = qkv + bias.to(qkv.dtype)
        # (B, N, 3C) -> (3, B, heads, N, head_dims)
        q, k, v = qkv.reshape(b, n, 3, self.num_heads, self.head_dims).permute(2, 0, 3, 1, 4)
        if fused:
            x = fused_attention(q, k, v, self.scale, self.q_bias, self.v_bias)
        elif impl == 'onednn' and not drop and onednn_attention_active(q):
            x = onednn_attention(q, k, v)
        else:
            if impl == 'manual':
                attn = (q * self.scale) @ k.transpose(-2, -1)
                attn = F.dropout(attn.softmax(dim=-1), drop)
                x = attn @ v
            else:
                x = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
            # (B, heads, N, head_dims) -> (B, N, C)
            x = x.transpose(1, 2).reshape(b, n, c)
        return self.proj_drop(self.proj(x))


class Mlp(nn.Module):
    """fc1 -> GELU (exact erf) -> fc2 -> dropout; no dropout after the activation (official)."""

    def __init__(self, dims: int, hidden_dims: int, drop: float = 0.) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dims, hidden_dims)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dims, dims)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, N, C] -> [B, N, C]."""
        h = self.fc1(x)
        if h.requires_grad or not isinstance(self.act, nn.GELU):
            h = self.act(h)
        else:
            # inference: same exact-erf GELU, in place (saves a [B, N, hidden] buffer)
            h = torch.ops.aten.gelu_(h, approximate=self.act.approximate)
        return self.drop(self.fc2(h))


class Block(nn.Module):
    """Pre-norm transformer block with optional layer scale and drop path.

    ``x + DropPath(g1 * Attn(LN1 x))`` then ``x + DropPath(g2 * MLP(LN2 x))``; ``gamma_1`` and
    ``gamma_2`` exist only when ``init_values > 0`` (released checkpoints have none).

    Args:
        dims (int): Channels C.
        num_heads (int): Attention heads.
        mlp_hidden_dims (int): MLP hidden width.
        qkv_bias (bool): q/v biases. Defaults to True.
        drop (float): Dropout after projections. Defaults to 0.
        attn_drop (float): Attention dropout. Defaults to 0.
        drop_path (float): Stochastic depth rate of this block. Defaults to 0.
        init_values (float): Layer-scale init; 0 disables it. Defaults to 0.
        norm_cfg (dict): Norm layer config. Defaults to ``dict(type='LN', eps=1e-6)``.
        attn_impl (str): See :class:`Attention`. Defaults to ``'auto'``.
    """

    def __init__(self, dims: int, num_heads: int, mlp_hidden_dims: int, qkv_bias: bool = True,
                 drop: float = 0., attn_drop: float = 0., drop_path: float = 0.,
                 init_values: float = 0., norm_cfg: Optional[dict] = None,
                 attn_impl: str = 'auto') -> None:
        super().__init__()
        norm_cfg = norm_cfg or dict(type='LN', eps=1e-6)
        self.norm1 = build_norm_layer(norm_cfg, dims)[1]
        self.attn = Attention(dims, num_heads, qkv_bias, attn_drop, drop, attn_impl)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = build_norm_layer(norm_cfg, dims)[1]
        self.mlp = Mlp(dims, mlp_hidden_dims, drop)
        if init_values and init_values > 0:
            self.gamma_1 = nn.Parameter(init_values * torch.ones(dims))
            self.gamma_2 = nn.Parameter(init_values * torch.ones(dims))
        else:
            self.register_parameter('gamma_1', None)
            self.register_parameter('gamma_2', None)

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, N, C] -> [B, N, C]."""
        a = self.attn(self.norm1(x))
        if self.gamma_1 is not None:
            a = self.gamma_1 * a
        x = residual_add(self.drop_path(a), x)
        m = self.mlp(self.norm2(x))
        if self.gamma_2 is not None:
            m = self.gamma_2 * m
        return residual_add(self.drop_path(m), x)


def residual_add(branch: Tensor, x: Tensor) -> Tensor:
    """``x + branch`` written into ``branch`` when that is exact; both [B, N, C].

    ``branch`` is a fresh output (Linear / DropPath / layer scale) that autograd does not save,
    so summing into it saves a [B, N, C] buffer; ``branch + x`` is bitwise ``x + branch``. Falls
    back to a new tensor when the promoted dtype differs (e.g. a bf16 branch under autocast
    added to an fp32 stream).
    """
    if branch.dtype != torch.result_type(branch, x) or branch.shape != x.shape:
        return x + branch
    return branch.add_(x)


def run_blocks(blocks: nn.ModuleList, x: Tensor, with_cp: bool) -> Tensor:
    """Apply ``blocks`` in order, each under activation checkpointing when ``with_cp`` and
    gradients are needed. x: [B, N, C] -> [B, N, C]."""
    for blk in blocks:
        if with_cp and x.requires_grad:
            x = cp.checkpoint(blk, x, use_reentrant=False)
        else:
            x = blk(x)
    return x


def init_official_vit(module: nn.Module, mode: str = 'trunc_normal') -> None:
    """Official weight init for ViT parts: Linear weights trunc-normal(std .02) (fine-tune model)
    or xavier-uniform (pretrain model), biases 0, LayerNorm 1/0; Conv3d keeps PyTorch's default.
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            if mode == 'xavier':
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.trunc_normal_(m.weight, std=.02, a=-2., b=2.)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def drop_path_rates(rate: float, depth: int) -> list:
    """Linear stochastic-depth ramp ``linspace(0, rate, depth)`` as official."""
    return [float(r) for r in np.linspace(0, rate, depth)]


__all__ = [
    'CubeEmbed', 'cube_view', 'Attention', 'Mlp', 'Block', 'run_blocks',
    'residual_add', 'init_official_vit', 'drop_path_rates', 'ATTN_IMPLS', 'resolve_attn_impl'
]
