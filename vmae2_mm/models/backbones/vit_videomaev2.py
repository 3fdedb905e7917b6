"""VideoMAE V2 ViT backbone (S/B/L/H/g) with the released models' numerics."""
from typing import Dict, Optional, Tuple, Union

from mmaction.registry import MODELS
from mmcv.cnn import build_norm_layer
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
import torch
from torch import Tensor, nn

from vmae2_mm.utils.pos_embed import resize_pos_table, sinusoid_table

from .vit_layers import (ATTN_IMPLS, Block, CubeEmbed, drop_path_rates, init_official_vit,
                         resolve_attn_impl, run_blocks)

#: Released VideoMAE V2 sizes (OpenGVLab/VideoMAEv2 ``modeling_finetune.py``).
ARCH_SETTINGS: Dict[str, dict] = {
    'small': dict(patch_size=16, embed_dims=384, depth=12, num_heads=6, mlp_hidden_dims=1536),
    'base': dict(patch_size=16, embed_dims=768, depth=12, num_heads=12, mlp_hidden_dims=3072),
    'large': dict(patch_size=16, embed_dims=1024, depth=24, num_heads=16, mlp_hidden_dims=4096),
    'huge': dict(patch_size=16, embed_dims=1280, depth=32, num_heads=16, mlp_hidden_dims=5120),
    # giant: patch 14, mlp_ratio 48/11 -> int(1408 * 48 / 11) = 6144, head_dims 88
    'giant': dict(patch_size=14, embed_dims=1408, depth=40, num_heads=16, mlp_hidden_dims=6144),
}
OUT_TYPES = ('pooled', 'tokens', 'featmap')


def resolve_arch(arch: Union[str, dict]) -> dict:
    """Return the full arch dict for a name (``'small'``..``'giant'``) or a custom dict.

    A custom dict needs ``embed_dims``, ``depth``, ``num_heads`` and either ``mlp_hidden_dims``
    or ``mlp_ratio``; ``patch_size`` defaults to 16.
    """
    if isinstance(arch, str):
        if arch not in ARCH_SETTINGS:
            raise ValueError(f'arch must be one of {sorted(ARCH_SETTINGS)} or a dict, got {arch!r}')
        return dict(ARCH_SETTINGS[arch])
    arch = dict(arch)
    missing = {'embed_dims', 'depth', 'num_heads'} - set(arch)
    if missing:
        raise ValueError(f'custom arch dict lacks {sorted(missing)}: {arch}')
    if 'mlp_hidden_dims' not in arch:
        arch['mlp_hidden_dims'] = int(arch['embed_dims'] * arch.pop('mlp_ratio', 4.0))
    arch.setdefault('patch_size', 16)
    unknown = set(arch) - {'embed_dims', 'depth', 'num_heads', 'mlp_hidden_dims', 'patch_size',
                           'mlp_ratio'}
    if unknown:
        raise ValueError(f'unknown keys {sorted(unknown)} in custom arch {arch}')
    arch.pop('mlp_ratio', None)
    return arch


@MODELS.register_module()
class VideoMAEv2ViT(BaseModule):
    """VideoMAE V2 vision transformer (`arXiv 2303.16727 <https://arxiv.org/abs/2303.16727>`_).

    Pre-norm ViT with a Conv3d cube embedding (tubelet x p x p), a fixed 1-D sinusoid position
    table over all tokens (float64-built, not in the state_dict, as official), fused ``qkv`` with
    ``q_bias``/``v_bias`` (no k bias), LayerNorm eps 1e-6, optional layer scale, drop path and
    activation checkpointing. Matches ``vit_{small,base,large,huge,giant}_patch*_224`` of
    OpenGVLab/VideoMAEv2 numerically.

    The table is built natively for the token grid of (``num_frames``, ``img_size``), as the
    official model and HF transformers build it (official fine-tuning at 16x112 / 16x160 ends up
    with exactly this table; ``videomaev2.md`` section 3.4). ``pos_embed_grid_from=(frames,
    size)`` instead builds it for another grid and resizes it (bicubic in space, linear in
    time), e.g. to keep the 16x224 pre-training table's geometry. Inputs of another size than
    ``img_size`` (e.g. AVA frames) resize the table on the fly.

    Args:
        arch (str | dict): ``'small' | 'base' | 'large' | 'huge' | 'giant'`` or a custom dict
            (see :func:`resolve_arch`). Defaults to ``'base'``.
        img_size (int): Input height/width. Defaults to 224.
        num_frames (int): Input frames T. Defaults to 16.
        tubelet_size (int): Frames per cube. Defaults to 2.
        in_channels (int): Defaults to 3.
        qkv_bias (bool): q/v biases. Defaults to True.
        drop_rate (float): Dropout after attention/MLP projections. Defaults to 0.
        attn_drop_rate (float): Attention dropout. Defaults to 0.
        drop_path_rate (float): Max stochastic depth (linear ramp). Defaults to 0.
        init_values (float): Layer-scale init; 0 disables. Defaults to 0.
        norm_cfg (dict): Defaults to ``dict(type='LN', eps=1e-6)``.
        use_mean_pooling (bool): Pooled output ``fc_norm(mean(tokens))`` (official default);
            otherwise a final ``norm`` over tokens and the first token is the pooled output.
            Defaults to True.
        out_type (str): ``'pooled'`` -> [B, C] (recognition), ``'tokens'`` -> [B, N, C],
            ``'featmap'`` -> [B, C, T', H', W'] (detection). Defaults to ``'pooled'``.
        pos_embed_grid_from (tuple | None): (num_frames, img_size) the sinusoid table is built
            for and resized from; None: the model's own grid (native). Defaults to None.
        with_cp (bool): Activation checkpointing per block. Defaults to False.
        attn_impl (str): ``'auto' | 'sdpa' | 'manual' | 'cpu_fused' | 'onednn'``, resolved
            once here (:func:`~.vit_layers.resolve_attn_impl`; the result is in
            ``self.attn_impl``). Defaults to ``'auto'``.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)`` loads any
            supported checkpoint layout through :func:`vmae2_mm.checkpoint.load_backbone_checkpoint`.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'base',
                 img_size: int = 224,
                 num_frames: int = 16,
                 tubelet_size: int = 2,
                 in_channels: int = 3,
                 qkv_bias: bool = True,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 init_values: float = 0.,
                 norm_cfg: Optional[dict] = None,
                 use_mean_pooling: bool = True,
                 out_type: str = 'pooled',
                 pos_embed_grid_from: Optional[Tuple[int, int]] = None,
                 with_cp: bool = False,
                 attn_impl: str = 'auto',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        settings = resolve_arch(arch)
        p = settings['patch_size']
        self._validate(settings, img_size, num_frames, tubelet_size, out_type, attn_impl,
                       drop_path_rate, pos_embed_grid_from)
        norm_cfg = norm_cfg or dict(type='LN', eps=1e-6)
        self.arch = settings
        self.embed_dims = settings['embed_dims']
        self.depth = settings['depth']
        self.num_heads = settings['num_heads']
        self.patch_size = p
        self.tubelet_size = tubelet_size
        self.img_size = img_size
        self.num_frames = num_frames
        self.out_type = out_type
        self.with_cp = with_cp
        self.use_mean_pooling = use_mean_pooling
        self.attn_impl = attn_impl = resolve_attn_impl(attn_impl)

        self.patch_embed = CubeEmbed(in_channels, self.embed_dims, p, tubelet_size)
        self.grid = (num_frames // tubelet_size, img_size // p, img_size // p)
        if pos_embed_grid_from is None:
            src_grid = self.grid
        else:
            f0, s0 = pos_embed_grid_from
            src_grid = (f0 // tubelet_size, s0 // p, s0 // p)
        table = sinusoid_table(src_grid[0] * src_grid[1] * src_grid[2], self.embed_dims)
        # Non-persistent: official checkpoints carry no pos_embed, and it is fixed anyway.
        self.register_buffer('pos_embed', resize_pos_table(table, src_grid, self.grid),
                             persistent=False)
        self._pos_cache: Dict[Tuple[int, int, int], Tensor] = {}
        self.pos_drop = nn.Dropout(p=drop_rate)

        dpr = drop_path_rates(drop_path_rate, self.depth)
        self.blocks = nn.ModuleList([
            Block(self.embed_dims, self.num_heads, settings['mlp_hidden_dims'], qkv_bias,
                  drop_rate, attn_drop_rate, dpr[i], init_values, norm_cfg, attn_impl)
            for i in range(self.depth)
        ])
        if use_mean_pooling:
            self.norm = nn.Identity()
            self.fc_norm = build_norm_layer(norm_cfg, self.embed_dims)[1]
        else:
            self.norm = build_norm_layer(norm_cfg, self.embed_dims)[1]
            self.fc_norm = None
        init_official_vit(self)

    @staticmethod
    def _validate(settings, img_size, num_frames, tubelet_size, out_type, attn_impl,
                  drop_path_rate, pos_embed_grid_from) -> None:
        p = settings['patch_size']
        errors = []
        if img_size <= 0 or img_size % p:
            errors.append(f'img_size={img_size} must be a positive multiple of patch_size={p}')
        if tubelet_size <= 0 or num_frames <= 0 or num_frames % tubelet_size:
            errors.append(f'num_frames={num_frames} must be a positive multiple of '
                          f'tubelet_size={tubelet_size}')
        if settings['embed_dims'] % settings['num_heads']:
            errors.append(f"embed_dims={settings['embed_dims']} must be divisible by "
                          f"num_heads={settings['num_heads']}")
        if settings['depth'] < 1:
            errors.append(f"depth={settings['depth']} must be >= 1")
        if out_type not in OUT_TYPES:
            errors.append(f'out_type must be one of {OUT_TYPES}, got {out_type!r}')
        if attn_impl not in ATTN_IMPLS:
            errors.append(f'attn_impl must be one of {ATTN_IMPLS}, got {attn_impl!r}')
        if not 0 <= drop_path_rate < 1:
            errors.append(f'drop_path_rate={drop_path_rate} must be in [0, 1)')
        if pos_embed_grid_from is not None:
            f0, s0 = pos_embed_grid_from
            if f0 % tubelet_size or s0 % p:
                errors.append(f'pos_embed_grid_from={pos_embed_grid_from} must tile into '
                              f'{tubelet_size}x{p}x{p} cubes')
        if errors:
            raise ValueError('VideoMAEv2ViT config: ' + '; '.join(errors))

    def init_weights(self) -> None:
        """Official init, or load ``init_cfg=dict(type='Pretrained', checkpoint=...)``.

        mmengine's generic ``PretrainedInit`` cannot read official (``model``/``module``,
        ``encoder.``), HF or mmaction2 layouts, so Pretrained goes through our loader.
        """
        if isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained':
            from vmae2_mm.checkpoint.videomaev2 import load_backbone_checkpoint
            load_backbone_checkpoint(self, self.init_cfg['checkpoint'],
                                     logger=MMLogger.get_current_instance())
            self._is_init = True
            return
        super().init_weights()

    def pos_embed_for(self, grid: Tuple[int, int, int]) -> Tensor:
        """Position table [1, N, C] for a token grid (resized from the model's grid if needed)."""
        if grid == self.grid:
            return self.pos_embed
        key = tuple(grid)
        cached = self._pos_cache.get(key)
        if cached is None or cached.device != self.pos_embed.device:
            cached = resize_pos_table(self.pos_embed, self.grid, key)
            self._pos_cache[key] = cached
        return cached

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        """Take a ``pos_embed`` [1, N, C] from the checkpoint, resized to this model's grid.

        The buffer is non-persistent (fixed sinusoid), so torch would report the key as
        unexpected. A sinusoid table is dropped (the model's own is the same function); a
        learnable one (mmaction2, HF, fine-tuned with learnt tables) is resized from its grid
        (inferred from N) to ``self.grid`` and copied; another width is an error message.
        """
        table = state_dict.pop(prefix + 'pos_embed', None)
        if table is not None:
            from vmae2_mm.checkpoint.videomaev2 import (SINUSOID_ATOL, infer_pos_grid,
                                                        is_sinusoid_table)
            if table.dim() != 3 or table.shape[-1] != self.embed_dims:
                error_msgs.append(f'{prefix}pos_embed: expected [1, N, {self.embed_dims}], '
                                  f'found {tuple(table.shape)}')
            elif is_sinusoid_table(table):
                if table.shape == self.pos_embed.shape and not torch.allclose(
                        table.float(), self.pos_embed.float(), atol=SINUSOID_ATOL, rtol=0):
                    MMLogger.get_current_instance().warning(
                        'the checkpoint was trained with a sinusoid table built natively for '
                        f'{table.shape[1]} tokens, this model resizes another table; set '
                        'pos_embed_grid_from=None for the native table')
            else:
                src = infer_pos_grid(table.shape[1], self.grid)
                with torch.no_grad():
                    self.pos_embed.copy_(resize_pos_table(table.float(), src, self.grid))
                self._pos_cache.clear()
                MMLogger.get_current_instance().info(
                    f'loaded a learnable position table of grid {src}, resized to {self.grid}')
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def forward_tokens(self, x: Tensor, enc_hidden: Optional[Tensor] = None) -> Tensor:
        """Embed, add positions, drop hidden tokens, run the blocks and the final ``norm``.

        Args:
            x (Tensor): [B, C, T, H, W] video.
            enc_hidden (Tensor, optional): [B, N] bool, True = hidden from the encoder. Every
                sample must hide the same number of tokens (tube masking guarantees it). Only
                the visible cubes are embedded (:meth:`CubeEmbed.forward_visible`).

        Returns:
            Tensor: [B, N_visible, C] tokens in raster order (``norm`` applied; it is Identity
            under mean pooling).
        """
        grid = self.patch_embed.grid(x)
        if enc_hidden is None:
            x = self.patch_embed(x)
            x = x + self.pos_embed_for(grid).to(device=x.device, dtype=x.dtype)
        else:
            b, n = x.shape[0], grid[0] * grid[1] * grid[2]
            if enc_hidden.shape != (b, n):
                raise ValueError(f'enc_hidden must be [B, N] = {(b, n)}, got '
                                 f'{tuple(enc_hidden.shape)}')
            visible = ~enc_hidden
            x = self.patch_embed.forward_visible(x, visible)
            pos = self.pos_embed_for(grid).to(device=x.device, dtype=x.dtype).expand(b, -1, -1)
            x = x + pos[visible].reshape(b, -1, self.embed_dims)
        x = self.pos_drop(x)
        x = run_blocks(self.blocks, x, self.with_cp)
        return self.norm(x)

    def pool(self, tokens: Tensor) -> Tensor:
        """tokens [B, N, C] -> pooled [B, C]: ``fc_norm(mean)`` or the first (normed) token."""
        if self.fc_norm is not None:
            return self.fc_norm(tokens.mean(1))
        return tokens[:, 0]

    def forward(self, x: Tensor, enc_hidden: Optional[Tensor] = None) -> Tensor:
        """x: [B, C, T, H, W] -> per ``out_type``: pooled [B, C], tokens [B, N, C] or featmap
        [B, C, T', H', W'] (featmap needs all tokens, so ``enc_hidden`` must be None)."""
        tokens = self.forward_tokens(x, enc_hidden)
        if self.out_type == 'tokens':
            return tokens
        if self.out_type == 'pooled':
            return self.pool(tokens)
        if enc_hidden is not None:
            raise ValueError("out_type='featmap' needs every token; enc_hidden must be None")
        t, h, w = self.patch_embed.grid(x)
        # (B, T'H'W', C) -> (B, C, T', H', W')
        return tokens.reshape(x.shape[0], t, h, w, self.embed_dims).permute(0, 4, 1, 2, 3)


__all__ = ['VideoMAEv2ViT', 'ARCH_SETTINGS', 'resolve_arch']
