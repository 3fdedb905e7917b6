"""Masked 1-D building blocks of ActionFormer (Zhang et al., ECCV 2022, arXiv 2202.07925).

Every module takes and returns ``(x, mask)`` with ``x`` [B, C, T] and ``mask`` [B, 1, T] bool
(True = a real time step, False = padding), and multiplies its output by the mask so padded
steps stay zero. Strided layers downsample the mask with nearest interpolation.

Parameter names follow the official ``happyharrycn/actionformer_release`` modules inside the
attention (``query_conv.conv``, ``query_norm``, ``query``, ``key``, ``value``, ``proj``) so that
checkpoints map with few renames; the transformer block uses ``norm1/norm2`` and
``mlp.fc1/fc2`` (official ``ln1/ln2`` and ``mlp.0/mlp.3``, see
``vmae2_mm/checkpoint/actionformer.py``).

Nothing in mmcv/mmengine covers masked [B, C, T] sequences (mmcv's LN normalises the last dim,
its convs know no masks), hence these small modules; stochastic depth reuses mmcv's DropPath.
"""
import math
from typing import Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn.bricks import DropPath
from torch import Tensor, nn

MaskedTensor = Tuple[Tensor, Tensor]


class MaskedConv1D(nn.Module):
    """Conv1d with 'same' padding whose output is multiplied by the (downsampled) mask.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int): Odd kernel size; padding is ``kernel_size // 2``.
        stride (int): Temporal stride; T must be divisible by it. Defaults to 1.
        groups (int): Conv groups (``in_channels`` for depthwise). Defaults to 1.
        bias (bool): Whether the conv has a bias, initialised to 0. Defaults to True.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1, bias: bool = True) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f'MaskedConv1D kernel_size must be odd, got {kernel_size}')
        self.stride = stride
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride,
                              kernel_size // 2, groups=groups, bias=bias)
        if bias:
            nn.init.zeros_(self.conv.bias)

    def forward(self, x: Tensor, mask: Tensor) -> MaskedTensor:
        """x [B, C, T], mask [B, 1, T] bool -> ([B, C', T/stride], [B, 1, T/stride] bool)."""
        if x.shape[-1] % self.stride != 0:
            raise ValueError(f'sequence length {x.shape[-1]} is not divisible by the conv '
                             f'stride {self.stride}')
        out = self.conv(x)
        if self.stride > 1:
            out_mask = F.interpolate(mask.to(x.dtype), size=out.shape[-1], mode='nearest')
        else:
            out_mask = mask.to(x.dtype)
        return out * out_mask.detach(), out_mask.bool()


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel dimension of [B, C, T] (eps 1e-5, affine [1, C, 1]).

    Args:
        num_channels (int): Channels C.
        eps (float): Variance epsilon. Defaults to 1e-5.
    """

    def __init__(self, num_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.eps = eps
        # [1, C, 1] like the official module, so checkpoints load without reshaping
        self.weight = nn.Parameter(torch.ones(1, num_channels, 1))
        self.bias = nn.Parameter(torch.zeros(1, num_channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        """x [B, C, T] -> [B, C, T]."""
        if x.dim() != 3 or x.shape[1] != self.num_channels:
            raise ValueError(f'ChannelLayerNorm({self.num_channels}) expects [B, '
                             f'{self.num_channels}, T], got {list(x.shape)}')
        mu = x.mean(dim=1, keepdim=True)
        res = x - mu
        var = res.pow(2).mean(dim=1, keepdim=True)
        return res / torch.sqrt(var + self.eps) * self.weight + self.bias


class Scale(nn.Module):
    """A learnable scalar factor (per FPN level on the regression output).

    Args:
        init_value (float): Initial value. Defaults to 1.0.
    """

    def __init__(self, init_value: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(init_value, dtype=torch.float32))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale


class AffineDropPath(nn.Module):
    """Per-channel learnable scale (init 1e-4, as LayerScale) followed by stochastic depth.

    Args:
        num_channels (int): Channels C of the [B, C, T] branch output.
        drop_prob (float): Probability of dropping the whole branch per sample.
        init_scale (float): Initial scale. Defaults to 1e-4.
    """

    def __init__(self, num_channels: int, drop_prob: float, init_scale: float = 1e-4) -> None:
        super().__init__()
        self.scale = nn.Parameter(init_scale * torch.ones(1, num_channels, 1))
        self.drop_path = DropPath(drop_prob)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop_path(self.scale * x)


class MaskedMHCA(nn.Module):
    """Multi-head conv attention: depthwise conv + LN on q/k/v, then 1x1 projections.

    The depthwise convs (kernel 3, or stride + 1 when downsampling) inject local order and do
    the downsampling of the query and key/value sequences. ``window_size > 1`` restricts each
    query to keys within ``window_size // 2`` steps (local attention of the official
    ``LocalMaskedMHCA``); otherwise attention is global.

    Local attention here is computed block-wise: queries in blocks of w = window_size // 2
    attend to the 3w keys around their block through one batched matmul, the band outside
    |i - j| <= w is masked with -inf. This gives the same windows as the official Longformer-style
    chunking (keys outside [0, T) excluded, padded keys added -1e4, rows of padded queries
    zeroed) with less index bookkeeping.

    Args:
        embed_dims (int): Channels C.
        num_heads (int): Heads; C must be divisible by it.
        stride (int): Downsampling stride of q and k/v (1 or even). Defaults to 1.
        window_size (int): Odd local window (19 for THUMOS) or <= 1 for global attention.
            Defaults to 19.
        attn_drop (float): Dropout on attention weights. Defaults to 0.
        proj_drop (float): Dropout after the output projection. Defaults to 0.
    """

    def __init__(self, embed_dims: int, num_heads: int, stride: int = 1,
                 window_size: int = 19, attn_drop: float = 0.0, proj_drop: float = 0.0) -> None:
        super().__init__()
        if embed_dims % num_heads != 0:
            raise ValueError(f'embed_dims {embed_dims} must be divisible by num_heads '
                             f'{num_heads}')
        if stride != 1 and stride % 2 != 0:
            raise ValueError(f'attention stride must be 1 or even, got {stride}')
        if window_size > 1 and window_size % 2 != 1:
            raise ValueError(f'window_size must be odd (or <= 1 for global), got {window_size}')
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.scale = 1.0 / math.sqrt(self.head_dims)
        self.window_size = window_size
        self.window_overlap = window_size // 2 if window_size > 1 else 0
        kernel = stride + 1 if stride > 1 else 3
        for name in ('query', 'key', 'value'):
            setattr(self, f'{name}_conv', MaskedConv1D(embed_dims, embed_dims, kernel, stride,
                                                       groups=embed_dims, bias=False))
            setattr(self, f'{name}_norm', ChannelLayerNorm(embed_dims))
        self.key = nn.Conv1d(embed_dims, embed_dims, 1)
        self.query = nn.Conv1d(embed_dims, embed_dims, 1)
        self.value = nn.Conv1d(embed_dims, embed_dims, 1)
        self.proj = nn.Conv1d(embed_dims, embed_dims, 1)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj_drop = nn.Dropout(proj_drop)

    def _heads(self, x: Tensor) -> Tensor:
        # (B, nh*hs, T) -> (B, nh, T, hs)
        b, _, t = x.shape
        return x.view(b, self.num_heads, self.head_dims, t).transpose(2, 3)

    def _global_attention(self, q: Tensor, k: Tensor, v: Tensor, kv_mask: Tensor) -> Tensor:
        # q/k/v (B, nh, T, hs), kv_mask (B, T) -> (B, nh, T, hs)
        att = (q * self.scale) @ k.transpose(-2, -1)
        att = att.masked_fill(~kv_mask[:, None, None, :], float('-inf'))
        att = self.attn_drop(att.softmax(dim=-1))
        return att @ (v * kv_mask[:, None, :, None].to(v.dtype))

    def _local_attention(self, q: Tensor, k: Tensor, v: Tensor, kv_mask: Tensor) -> Tensor:
        # q/k/v (B, nh, T, hs), kv_mask (B, T) -> (B, nh, T, hs)
        b, nh, t, hs = q.shape
        w = self.window_overlap
        if t % w != 0:
            raise ValueError(f'local attention needs the sequence length ({t}) divisible by '
                             f'window_size // 2 = {w}; pad inputs to a multiple of the '
                             'model\'s max_div_factor')
        nblk = t // w
        # keys/values padded by w on both sides; block j sees padded keys [j*w, j*w + 3w)
        kp = F.pad(k, (0, 0, w, w)).unfold(2, 3 * w, w)            # (B, nh, nblk, hs, 3w)
        vp = F.pad(v, (0, 0, w, w)).unfold(2, 3 * w, w)            # (B, nh, nblk, hs, 3w)
        qb = (q * self.scale).reshape(b, nh, nblk, w, hs)
        att = qb @ kp                                              # (B, nh, nblk, w, 3w)
        # padded key positions: -1e4 added for masked steps (as upstream), -inf outside [0, T)
        in_range = F.pad(kv_mask.new_ones(b, t), (w, w)).unfold(1, 3 * w, w)
        kv_pad = F.pad(kv_mask, (w, w)).unfold(1, 3 * w, w)        # (B, nblk, 3w)
        key_bias = (~kv_pad).to(att.dtype) * -1e4
        key_bias = key_bias.masked_fill(~in_range, float('-inf'))
        att = att + key_bias[:, None, :, None, :]
        # band: query r of a block may see padded keys r .. r + 2w
        r = torch.arange(w, device=q.device)[:, None]
        c = torch.arange(3 * w, device=q.device)[None, :]
        band = (c >= r) & (c <= r + 2 * w)
        att = att.masked_fill(~band, float('-inf')).softmax(dim=-1)
        att = att.masked_fill(~kv_mask.view(b, 1, nblk, w, 1), 0.0)
        att = self.attn_drop(att)
        out = att @ vp.transpose(-2, -1)                           # (B, nh, nblk, w, hs)
        return out.reshape(b, nh, t, hs)

    def forward(self, x: Tensor, mask: Tensor) -> MaskedTensor:
        """x [B, C, T], mask [B, 1, T] bool -> ([B, C, T/stride], [B, 1, T/stride] bool)."""
        b, c, _ = x.shape
        q, qx_mask = self.query_conv(x, mask)
        k, kv_mask = self.key_conv(x, mask)
        v, _ = self.value_conv(x, mask)
        q = self._heads(self.query(self.query_norm(q)))
        k = self._heads(self.key(self.key_norm(k)))
        v = self._heads(self.value(self.value_norm(v)))
        if self.window_size > 1:
            out = self._local_attention(q, k, v, kv_mask[:, 0])
        else:
            out = self._global_attention(q, k, v, kv_mask[:, 0])
        # (B, nh, T', hs) -> (B, nh*hs, T')
        out = out.transpose(2, 3).reshape(b, c, -1)
        out = self.proj_drop(self.proj(out)) * qx_mask.to(out.dtype)
        return out, qx_mask


class ConvTransformerBlock(nn.Module):
    """Pre-LN transformer block of ActionFormer with optional 2x (or sx) downsampling.

    ``out = skip(x) * mask + DP_attn(Attn(LN1 x)); out = out + DP_mlp(MLP(LN2 out) * mask)``,
    where ``skip`` is MaxPool1d(s + 1, s, padding (s + 1) // 2) when downsampling, and DP is an
    :class:`AffineDropPath` when ``drop_path > 0`` (else identity, with no parameters).

    Args:
        embed_dims (int): Channels C.
        num_heads (int): Attention heads.
        stride (int): Downsampling stride. Defaults to 1.
        window_size (int): Local attention window (<= 1: global). Defaults to 19.
        mlp_ratio (float): Hidden channels of the MLP / C. Defaults to 4.
        proj_drop (float): Dropout after projections and in the MLP. Defaults to 0.
        attn_drop (float): Dropout on attention weights. Defaults to 0.
        drop_path (float): Stochastic depth rate. Defaults to 0.1.
    """

    def __init__(self, embed_dims: int, num_heads: int, stride: int = 1, window_size: int = 19,
                 mlp_ratio: float = 4.0, proj_drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float = 0.1) -> None:
        super().__init__()
        self.norm1 = ChannelLayerNorm(embed_dims)
        self.attn = MaskedMHCA(embed_dims, num_heads, stride, window_size, attn_drop, proj_drop)
        self.norm2 = ChannelLayerNorm(embed_dims)
        if stride > 1:
            self.pool_skip = nn.MaxPool1d(stride + 1, stride=stride, padding=(stride + 1) // 2)
        else:
            self.pool_skip = nn.Identity()
        hidden = int(embed_dims * mlp_ratio)
        self.mlp = nn.Sequential()
        self.mlp.add_module('fc1', nn.Conv1d(embed_dims, hidden, 1))
        self.mlp.add_module('act', nn.GELU())
        self.mlp.add_module('drop1', nn.Dropout(proj_drop))
        self.mlp.add_module('fc2', nn.Conv1d(hidden, embed_dims, 1))
        self.mlp.add_module('drop2', nn.Dropout(proj_drop))
        if drop_path > 0:
            self.drop_path_attn = AffineDropPath(embed_dims, drop_path)
            self.drop_path_mlp = AffineDropPath(embed_dims, drop_path)
        else:
            self.drop_path_attn = nn.Identity()
            self.drop_path_mlp = nn.Identity()

    def forward(self, x: Tensor, mask: Tensor) -> MaskedTensor:
        """x [B, C, T], mask [B, 1, T] bool -> ([B, C, T/s], [B, 1, T/s] bool)."""
        out, out_mask = self.attn(self.norm1(x), mask)
        m = out_mask.to(out.dtype)
        out = self.pool_skip(x) * m + self.drop_path_attn(out)
        out = out + self.drop_path_mlp(self.mlp(self.norm2(out)) * m)
        return out, out_mask
