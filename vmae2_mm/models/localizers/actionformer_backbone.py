"""ActionFormer's conv-transformer backbone: embedding convs, stem and downsampling blocks."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmaction.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn

from vmae2_mm.utils.pos_embed import sinusoid_table

from .blocks import ChannelLayerNorm, ConvTransformerBlock, MaskedConv1D

@MODELS.register_module()
class ActionFormerBackbone(BaseModule):
    """Conv-transformer backbone of ActionFormer (official ``ConvTransformerBackbone``).

    ``arch = (n_embd, n_stem, n_branch)``: ``n_embd`` x [MaskedConv1D -> LN -> ReLU], ``n_stem``
    transformer blocks at stride 1, then ``n_branch`` blocks each downsampling by
    ``scale_factor``. It returns the stem output and every branch output, i.e.
    ``1 + n_branch`` pyramid levels with strides ``scale_factor ** l``.

    Args:
        in_channels (int): Input feature channels (1408 for VideoMAE V2-g features).
        embed_dims (int): Channels after the embedding. Defaults to 512.
        num_heads (int): Attention heads. Defaults to 4.
        embed_kernel_size (int): Kernel of the embedding convs. Defaults to 3.
        arch (tuple[int]): (#embedding convs, #stem blocks, #branch blocks).
            Defaults to (2, 2, 5).
        window_size (int | Sequence[int]): Local attention window per level (one int for all
            ``1 + n_branch`` levels; <= 1 = global attention). Defaults to 19.
        scale_factor (int): Downsampling between levels. Defaults to 2.
        max_seq_len (int): Training length; sets the absolute position table size and must be
            divisible by every level's stride x window. Defaults to 2304.
        embed_norm (bool): LayerNorm after the embedding convs (then convs have no bias).
            Defaults to True.
        attn_drop (float): Attention dropout. Defaults to 0.
        proj_drop (float): Projection / MLP dropout. Defaults to 0.
        drop_path (float): Stochastic depth (with affine scale) rate. Defaults to 0.1.
        use_abs_pe (bool): Add a fixed sinusoid position table (/sqrt(C)) after the embedding,
            linearly resized at inference for inputs of at least ``max_seq_len``.
            Defaults to False.
        init_cfg (dict, optional): mmengine init config. Defaults to None (official init:
            PyTorch defaults with zero conv biases).
    """

    def __init__(self, in_channels: int, embed_dims: int = 512, num_heads: int = 4,
                 embed_kernel_size: int = 3, arch: Sequence[int] = (2, 2, 5),
                 window_size: Union[int, Sequence[int]] = 19, scale_factor: int = 2,
                 max_seq_len: int = 2304, embed_norm: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0, drop_path: float = 0.1, use_abs_pe: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(arch) != 3 or min(arch) < 0 or arch[0] < 1:
            raise ValueError(f'arch must be (n_embd >= 1, n_stem, n_branch), got {arch}')
        num_levels = 1 + arch[2]
        if isinstance(window_size, int):
            window_size = [window_size] * num_levels
        window_size = list(window_size)
        if len(window_size) != num_levels:
            raise ValueError(f'window_size needs {num_levels} entries (1 + arch[2]), got '
                             f'{window_size}')
        if scale_factor < 1 or (scale_factor > 1 and scale_factor % 2):
            raise ValueError(f'scale_factor must be 1 or even, got {scale_factor}')
        self.arch = tuple(arch)
        self.window_size = window_size
        self.scale_factor = scale_factor
        self.max_seq_len = max_seq_len
        self.fpn_strides = [scale_factor**i for i in range(num_levels)]
        # every level's local attention works on chunks of stride * (w // 2) * 2 input steps
        divs = [s * (w // 2) * 2 if w > 1 else s for s, w in zip(self.fpn_strides, window_size)]
        self.max_div_factor = max(divs)
        if any(max_seq_len % d for d in divs):
            raise ValueError(f'max_seq_len {max_seq_len} must be divisible by every level\'s '
                             f'stride x window ({divs}); max_div_factor {self.max_div_factor}')

        self.embd = nn.ModuleList()
        self.embd_norm = nn.ModuleList()
        for i in range(arch[0]):
            self.embd.append(MaskedConv1D(in_channels if i == 0 else embed_dims, embed_dims,
                                          embed_kernel_size, bias=not embed_norm))
            self.embd_norm.append(ChannelLayerNorm(embed_dims) if embed_norm else nn.Identity())
        self.use_abs_pe = use_abs_pe
        if use_abs_pe:
            table = sinusoid_table(max_seq_len, embed_dims).transpose(1, 2) / embed_dims**0.5
            self.register_buffer('pos_embed', table, persistent=False)  # [1, C, max_seq_len]
        self.stem = nn.ModuleList([
            ConvTransformerBlock(embed_dims, num_heads, 1, window_size[0], 4.0, proj_drop,
                                 attn_drop, drop_path) for _ in range(arch[1])])
        self.branch = nn.ModuleList([
            ConvTransformerBlock(embed_dims, num_heads, scale_factor, window_size[1 + i], 4.0,
                                 proj_drop, attn_drop, drop_path) for i in range(arch[2])])
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv1d)) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor, mask: Tensor) -> Tuple[List[Tensor], List[Tensor]]:
        """Embed and build the pyramid.

        Args:
            x (Tensor): [B, C_in, T] features, zero where padded.
            mask (Tensor): [B, 1, T] bool, True on real steps.

        Returns:
            tuple[list[Tensor], list[Tensor]]: features [B, C, T / s_l] and masks
            [B, 1, T / s_l] bool for each level l.
        """
        for conv, norm in zip(self.embd, self.embd_norm):
            x, mask = conv(x, mask)
            x = torch.relu(norm(x))
        if self.use_abs_pe:
            t = x.shape[-1]
            pe = self.pos_embed
            if self.training and t > self.max_seq_len:
                raise ValueError(f'training input length {t} exceeds max_seq_len '
                                 f'{self.max_seq_len}')
            if not self.training and t >= self.max_seq_len:
                pe = nn.functional.interpolate(pe, t, mode='linear', align_corners=False)
            x = x + pe[:, :, :t] * mask.to(x.dtype)
        for blk in self.stem:
            x, mask = blk(x, mask)
        feats, masks = [x], [mask]
        for blk in self.branch:
            x, mask = blk(x, mask)
            feats.append(x)
            masks.append(mask)
        return feats, masks
