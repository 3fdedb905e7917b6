"""``ActionDataPreprocessor`` that pads H and W up to a multiple of the ViT patch size."""
from typing import List, Tuple

import torch
import torch.nn.functional as F
from mmaction.models import ActionDataPreprocessor
from mmaction.registry import MODELS


@MODELS.register_module()
class PatchPadDataPreprocessor(ActionDataPreprocessor):
    """Normalise and stack like ``ActionDataPreprocessor``, then zero-pad H, W at the bottom
    and right to multiples of ``pad_size_divisor``.

    AVA tests on full frames (short side 256, e.g. 256x455 for 16:9), which do not tile into
    16x16 (or 14x14) patches; ``VideoMAEv2ViT`` refuses such inputs instead of silently
    dropping the border. mmaction2's preprocessor has no size divisor, mmdet's only handles
    4-D images, and mmengine's ``stack_batch(pad_size_divisor=...)`` would also pad T. Padding
    at the bottom/right keeps box coordinates valid, and ``img_shape`` (used to normalise the
    predicted boxes) stays the unpadded size. The pad value 0 is the mean colour after
    normalisation.

    Args:
        pad_size_divisor (int): Patch size of the backbone. Defaults to 16.
        **kwargs: ``ActionDataPreprocessor`` arguments (``mean``, ``std``, ``format_shape``).
    """

    def __init__(self, pad_size_divisor: int = 16, **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(pad_size_divisor, int) or pad_size_divisor < 1:
            raise ValueError('PatchPadDataPreprocessor.pad_size_divisor must be a positive int, '
                             f'got {pad_size_divisor!r}')
        self.pad_size_divisor = pad_size_divisor

    def preprocess(self, inputs: List[torch.Tensor], data_samples, training: bool = False
                   ) -> Tuple[torch.Tensor, list]:
        """inputs: list of [C, T, H, W] -> batch [B, C, T, H', W'] with H', W' multiples of the
        divisor."""
        batch, data_samples = super().preprocess(inputs, data_samples, training)
        h, w = batch.shape[-2:]
        d = self.pad_size_divisor
        pad_h, pad_w = (-h) % d, (-w) % d
        if pad_h or pad_w:
            batch = F.pad(batch, (0, pad_w, 0, pad_h), value=0.0)
        return batch, data_samples


__all__ = ['PatchPadDataPreprocessor']
