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
        """trunc-normal(std) weight, zero bias, both scaled by ``init_scale``."""
        super().init_weights()
        with torch.no_grad():
            self.fc_cls.bias.zero_()
            self.fc_cls.weight.mul_(self.init_scale)
