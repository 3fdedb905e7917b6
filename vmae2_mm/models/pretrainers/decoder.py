"""Lightweight VideoMAE (V2) pixel decoder: ViT blocks, final norm, linear head to cube pixels."""
from typing import Dict, Optional, Union

from mmcv.cnn import build_norm_layer
from torch import Tensor, nn

from ..backbones.vit_layers import Block, drop_path_rates, init_official_vit, run_blocks

#: Decoder width/heads per encoder size (official pre-training scripts, depth 4 everywhere;
#: facts: ``videomaev2.md`` section 2). The MLP ratio is the encoder's (giant: 48/11 -> 2234).
DECODER_SETTINGS: Dict[str, dict] = {
    'small': dict(embed_dims=192, num_heads=3),
    'base': dict(embed_dims=384, num_heads=6),
    'large': dict(embed_dims=512, num_heads=8),
    'huge': dict(embed_dims=512, num_heads=8),
    'giant': dict(embed_dims=512, num_heads=8),
}


class VideoMAEv2Decoder(nn.Module):
    """Pixel decoder of the official ``PretrainVisionTransformerDecoder``.

    ``depth`` pre-norm blocks at width ``embed_dims``, then ``norm`` and ``head`` applied to the
    last ``return_token_num`` tokens only (the mask tokens). Parameter names (``blocks.i.*``,
    ``norm``, ``head``) equal the official ones so ``decoder.*`` checkpoint keys map 1:1.

    Args:
        embed_dims (int): Decoder width Dd.
        depth (int): Number of blocks. Defaults to 4.
        num_heads (int): Attention heads.
        mlp_hidden_dims (int): MLP hidden width.
        out_dims (int): Head output, ``3 * tubelet * p * p``.
        qkv_bias (bool): q/v biases. Defaults to True.
        drop_path_rate (float): Max stochastic depth. Defaults to 0.
        norm_cfg (dict, optional): Defaults to ``dict(type='LN', eps=1e-6)``.
        with_cp (bool): Activation checkpointing per block. Defaults to False.
        attn_impl (str): See :class:`~vmae2_mm.models.backbones.vit_layers.Attention`.
            Defaults to ``'auto'``.
    """

    def __init__(self, embed_dims: int, num_heads: int, mlp_hidden_dims: int, out_dims: int,
                 depth: int = 4, qkv_bias: bool = True, drop_path_rate: float = 0.,
                 norm_cfg: Optional[dict] = None, with_cp: bool = False,
                 attn_impl: str = 'auto') -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f'decoder depth must be >= 1, got {depth}')
        norm_cfg = norm_cfg or dict(type='LN', eps=1e-6)
        self.embed_dims = embed_dims
        self.with_cp = with_cp
        dpr = drop_path_rates(drop_path_rate, depth)
        self.blocks = nn.ModuleList([
            Block(embed_dims, num_heads, mlp_hidden_dims, qkv_bias, drop_path=dpr[i],
                  norm_cfg=norm_cfg, attn_impl=attn_impl) for i in range(depth)
        ])
        self.norm = build_norm_layer(norm_cfg, embed_dims)[1]
        self.head = nn.Linear(embed_dims, out_dims)
        init_official_vit(self, mode='xavier')

    def forward(self, x: Tensor, return_token_num: int) -> Tensor:
        """x: [B, L, Dd] -> predictions [B, return_token_num, out_dims] for the last tokens."""
        x = run_blocks(self.blocks, x, self.with_cp)
        return self.head(self.norm(x[:, -return_token_num:]))


def decoder_settings(arch: Union[str, dict], encoder_embed_dims: int,
                     encoder_mlp_hidden_dims: int, decoder: Optional[dict]) -> dict:
    """Resolve the decoder config: official defaults for named sizes, overridable per key.

    The MLP hidden width defaults to ``int(embed_dims * encoder_mlp_ratio)`` like the official
    code (2234 for giant). A custom encoder arch needs ``embed_dims`` and ``num_heads``.
    """
    cfg = dict(depth=4)
    if isinstance(arch, str) and arch in DECODER_SETTINGS:
        cfg.update(DECODER_SETTINGS[arch])
    cfg.update(decoder or {})
    missing = {'embed_dims', 'num_heads'} - set(cfg)
    if missing:
        raise ValueError(f'decoder config lacks {sorted(missing)}: a custom encoder arch needs '
                         'decoder=dict(embed_dims=..., num_heads=...)')
    unknown = set(cfg) - {'embed_dims', 'num_heads', 'depth', 'mlp_hidden_dims', 'mlp_ratio',
                          'drop_path_rate', 'with_cp', 'attn_impl', 'qkv_bias', 'norm_cfg'}
    if unknown:
        raise ValueError(f'unknown decoder keys {sorted(unknown)}')
    if 'mlp_hidden_dims' not in cfg:
        ratio = cfg.pop('mlp_ratio', encoder_mlp_hidden_dims / encoder_embed_dims)
        cfg['mlp_hidden_dims'] = int(cfg['embed_dims'] * ratio)
    cfg.pop('mlp_ratio', None)
    if cfg['embed_dims'] % cfg['num_heads']:
        raise ValueError(f"decoder embed_dims={cfg['embed_dims']} must be divisible by "
                         f"num_heads={cfg['num_heads']}")
    return cfg


__all__ = ['VideoMAEv2Decoder', 'DECODER_SETTINGS', 'decoder_settings']
