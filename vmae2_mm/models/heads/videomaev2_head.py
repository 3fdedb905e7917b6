"""Classification head of the official VideoMAE V2 fine-tuning model."""
import torch
from mmaction.models.heads import TimeSformerHead
from mmaction.registry import MODELS


@MODELS.register_module()
class VideoMAEv2Head(TimeSformerHead):
    """Dropout + Linear on pooled features, initialised as the official fine-tune model.

    mmaction2's ``TimeSformerHead`` already is dropout + linear with trunc-normal(std .02)
    weights; the official model additionally zeroes the bias and multiplies weight and bias by
    ``init_scale`` (0.001 in every official fine-tune script), which keeps early logits tiny.

    Args:
        num_classes (int): Classes K.
        in_channels (int): Feature channels C.
        init_scale (float): Factor on the initial weight and bias. Defaults to 0.001.
        **kwargs: ``TimeSformerHead``/``BaseHead`` arguments (``loss_cls``, ``dropout_ratio``,
            ``init_std``, ``average_clips``, ``label_smooth_eps``, ``topk``, ...).

    Shapes: ``forward(x)``: x [B, C] -> scores [B, K].
    """

    def __init__(self, num_classes: int, in_channels: int, init_scale: float = 0.001,
                 **kwargs) -> None:
        super().__init__(num_classes, in_channels, **kwargs)
        self.init_scale = init_scale

    def loss_by_feat(self, cls_scores: torch.Tensor, data_samples) -> dict:
        """Loss on fp32 scores [B, K]: mmaction2's ``BaseHead`` converts the scores to numpy for
        the top-k accuracy, which fails for bfloat16 (bf16 autocast, e.g. ``--amp`` on CPU)."""
        return super().loss_by_feat(cls_scores.float(), data_samples)

    def predict_by_feat(self, cls_scores: torch.Tensor, data_samples) -> list:
        """Predictions from fp32 scores [B * views, K] (see :meth:`loss_by_feat`)."""
        return super().predict_by_feat(cls_scores.float(), data_samples)

    def init_weights(self) -> None:
        """trunc-normal(std) weight, zero bias, both scaled by ``init_scale``; or the classifier
        of a checkpoint with ``init_cfg=dict(type='Pretrained', checkpoint=..., label_map=None)``.

        The checkpoint may be in any layout the backbone loader reads (official fine-tuned
        ``head.*``, HF ``classifier.*``, mmaction2 / vmae2_mm ``cls_head.fc_cls.*``, nested or
        raw); ``label_map`` selects its rows (``'k710to400'``, a JSON path or a list; chosen
        automatically for a 710-class checkpoint and a 400/600/700-class head).
        """
        if isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained':
            self._load_pretrained_head(self.init_cfg['checkpoint'],
                                       self.init_cfg.get('label_map'))
            self._is_init = True
            return
        super().init_weights()
        with torch.no_grad():
            self.fc_cls.bias.zero_()
            self.fc_cls.weight.mul_(self.init_scale)

    def _load_pretrained_head(self, filename: str, label_map=None) -> None:
        from mmengine.logging import MMLogger

        from vmae2_mm.checkpoint.videomaev2 import (canonicalize, convert_head, read_checkpoint,
                                               unwrap_state_dict)
        from vmae2_mm.checkpoint.foreign import resolve_label_map
        try:
            c = canonicalize(unwrap_state_dict(read_checkpoint(filename)))
        except (KeyError, ValueError, TypeError) as e:
            raise type(e)(f'{filename}: {e}') from e
        if not c.head:
            raise ValueError(f'{filename}: init_cfg Pretrained for VideoMAEv2Head, but the '
                             'checkpoint has no classifier (head / classifier / fc_cls keys)')
        try:
            label_map = resolve_label_map(label_map, c.head['weight'].shape[0],
                                          self.num_classes)
            head = convert_head(c.head, label_map)
        except (ValueError, FileNotFoundError) as e:
            raise type(e)(f'{filename}: {e}') from e
        for name, value in head.items():
            own = getattr(self.fc_cls, name)
            if own.shape != value.shape:
                raise ValueError(f'{filename}: head.{name}: checkpoint {tuple(value.shape)} vs '
                                 f'model cls_head.fc_cls.{name} {tuple(own.shape)}')
            with torch.no_grad():
                own.copy_(value)
        MMLogger.get_current_instance().info(
            f'cls_head.fc_cls loaded from {filename} ({c.fmt} layout'
            + (f', rows by label map {label_map!r}' if label_map is not None else '') + ')')
