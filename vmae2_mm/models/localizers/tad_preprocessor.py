"""Batches variable-length feature sequences for temporal action detection."""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from mmaction.registry import MODELS
from mmengine.model import BaseDataPreprocessor


@MODELS.register_module()
class TADDataPreprocessor(BaseDataPreprocessor):
    """Pads a list of [C, T_i] features to [B, C, T] and builds the [B, 1, T] bool mask.

    Training pads to ``max_seq_len`` (inputs must not be longer). Inference pads to
    ``max_seq_len`` as well, or, for longer inputs, up to the next multiple of ``pad_divisor``
    (the detector's ``max_div_factor``); any batch size works, every video keeps its own mask.
    mmaction's ``ActionDataPreprocessor`` only stacks equal shapes, hence this class.

    Args:
        max_seq_len (int): Training length, e.g. 2304 for THUMOS14.
        pad_divisor (int, optional): Lengths beyond ``max_seq_len`` round up to a multiple of
            it. None: the detector sets it from its backbone. Defaults to None.
        pad_value (float): Value of padded steps. Defaults to 0.
    """

    def __init__(self, max_seq_len: int, pad_divisor: Optional[int] = None,
                 pad_value: float = 0.0) -> None:
        super().__init__()
        if max_seq_len < 1:
            raise ValueError(f'max_seq_len must be >= 1, got {max_seq_len}')
        if pad_divisor is not None and max_seq_len % pad_divisor != 0:
            raise ValueError(f'max_seq_len {max_seq_len} must be a multiple of pad_divisor '
                             f'{pad_divisor}')
        self.max_seq_len = max_seq_len
        self.pad_divisor = pad_divisor
        self.pad_value = pad_value

    def padded_length(self, longest: int, training: bool) -> int:
        """Length T of the padded batch for its longest sequence."""
        if longest <= self.max_seq_len:
            return self.max_seq_len
        if training:
            raise ValueError(f'a training sequence has {longest} steps > max_seq_len '
                             f'{self.max_seq_len}; crop it in the pipeline (e.g. truncation)')
        div = self.pad_divisor or 1
        return (longest + div - 1) // div * div

    def forward(self, data: dict, training: bool = False) -> dict:
        """``data['inputs']``: list of [C, T_i] -> dict(inputs [B, C, T], masks [B, 1, T],
        data_samples)."""
        data = self.cast_data(data)
        feats: Sequence[torch.Tensor] = data['inputs']
        if isinstance(feats, torch.Tensor):
            feats = list(feats) if feats.dim() == 3 else [feats]
        for i, f in enumerate(feats):
            if f.dim() != 2:
                raise ValueError(f'TAD inputs must be [C, T] feature sequences; sample {i} has '
                                 f'shape {list(f.shape)}')
            if f.shape[0] != feats[0].shape[0]:
                raise ValueError(f'sample {i} has {f.shape[0]} channels, sample 0 has '
                                 f'{feats[0].shape[0]}')
        lengths = [f.shape[-1] for f in feats]
        t = self.padded_length(max(lengths), training)
        inputs = torch.stack([F.pad(f.float(), (0, t - f.shape[-1]), value=self.pad_value)
                              for f in feats])
        lens = torch.tensor(lengths, device=inputs.device)
        masks = (torch.arange(t, device=inputs.device)[None, :] < lens[:, None])[:, None, :]
        return dict(inputs=inputs, masks=masks, data_samples=data.get('data_samples'))
