"""Identity feature pyramid of ActionFormer: one LayerNorm per level."""
from typing import List, Optional, Sequence, Tuple

from mmaction.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn

from .blocks import ChannelLayerNorm


@MODELS.register_module()
class FPNIdentity(BaseModule):
    """Passes the backbone pyramid through, normalising each level (official ``FPNIdentity``).

    Args:
        in_channels (Sequence[int]): Channels of each input level; all must equal
            ``out_channels`` (there is no projection).
        out_channels (int): Output channels.
        with_norm (bool): LayerNorm over channels on each level. Defaults to True.
        init_cfg (dict, optional): mmengine init config. Defaults to None.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int, with_norm: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if any(c != out_channels for c in in_channels):
            raise ValueError(f'FPNIdentity in_channels {list(in_channels)} must all equal '
                             f'out_channels {out_channels}')
        self.num_levels = len(in_channels)
        self.fpn_norms = nn.ModuleList([
            ChannelLayerNorm(out_channels) if with_norm else nn.Identity()
            for _ in in_channels])

    def forward(self, feats: Sequence[Tensor],
                masks: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        """feats: levels of [B, C, T_l]; masks: levels of [B, 1, T_l] bool (returned as is)."""
        if len(feats) != self.num_levels or len(masks) != self.num_levels:
            raise ValueError(f'FPNIdentity expects {self.num_levels} levels, got '
                             f'{len(feats)} features and {len(masks)} masks')
        return [norm(x) for norm, x in zip(self.fpn_norms, feats)], list(masks)
