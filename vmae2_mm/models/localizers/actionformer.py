"""ActionFormer (Zhang et al., ECCV 2022): single-stage anchor-free temporal action detector."""
from typing import Dict, List, Optional, Union

import torch
from mmaction.registry import MODELS
from mmengine.model import BaseModel
from torch import Tensor

from vmae2_mm.utils.tad_time import default_offset_frames, grid_to_seconds


@MODELS.register_module()
class ActionFormer(BaseModel):
    """Features -> conv-transformer pyramid -> identity FPN -> dense heads -> Soft-NMS.

    A thin wrapper: the backbone builds the pyramid, the head does assignment, losses and
    decoding. Inputs come from :class:`TADDataPreprocessor` (``inputs`` [B, C, T], ``masks``
    [B, 1, T]); data samples carry ``gt_instances`` (``segments`` [M, 2] in feature-grid units,
    ``labels`` [M]) and the metainfo ``fps``, ``feat_stride``, ``offset_frames`` (or
    ``feat_num_frames``) and ``duration`` used to convert predictions to seconds.

    Args:
        backbone (dict): :class:`ActionFormerBackbone` config.
        neck (dict): :class:`FPNIdentity` config.
        head (dict): :class:`ActionFormerHead` config.
        data_preprocessor (dict): :class:`TADDataPreprocessor` config; its ``pad_divisor``
            defaults to the backbone's ``max_div_factor``.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=PATH)`` loads our or
            the official (``state_dict_ema`` preferred) checkpoint layout. Defaults to None.
    """

    def __init__(self, backbone: dict, neck: dict, head: dict, data_preprocessor: dict,
                 init_cfg: Optional[dict] = None) -> None:
        if isinstance(data_preprocessor, dict):
            # built from mmaction's registry so no default scope is needed
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=None)
        self._ckpt_cfg = init_cfg
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck)
        self.head = MODELS.build(head)
        if list(self.head.prior_generator.strides) != list(self.backbone.fpn_strides):
            raise ValueError(f'head prior_generator strides {self.head.prior_generator.strides}'
                             f' differ from the backbone levels {self.backbone.fpn_strides}')
        pre = self.data_preprocessor
        if getattr(pre, 'pad_divisor', 0) is None:
            pre.pad_divisor = self.backbone.max_div_factor
        if pre.max_seq_len % self.backbone.max_div_factor != 0:
            raise ValueError(f'data_preprocessor.max_seq_len {pre.max_seq_len} must be a '
                             f'multiple of the backbone max_div_factor '
                             f'{self.backbone.max_div_factor}')

    #: Keys a checkpoint may lack. Upstream's ``PtTransformer`` keeps the loss normaliser as a
    #: plain float attribute (``self.loss_normalizer = train_cfg['init_loss_norm']``), so it
    #: is in no official checkpoint and upstream restarts it from ``init_loss_norm`` whenever
    #: it loads one; ours is a buffer (checkpointed, resumed) that keeps its current value when
    #: a checkpoint lacks it, so official and converted files load with ``strict=True``.
    optional_state_keys = ('head.loss_normalizer', )

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # runs before the children's and before the load pre-hooks (strict key checks), on
        # the loader's copy of the state dict (torch and mmengine both copy it)
        for key in self.optional_state_keys:
            if prefix + key not in state_dict:
                state_dict[prefix + key] = self.get_buffer(key).detach().clone()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def init_weights(self) -> None:
        """Official init lives in the constructors; ``Pretrained`` loads a checkpoint."""
        cfg = self._ckpt_cfg
        if cfg:
            if cfg.get('type') != 'Pretrained' or 'checkpoint' not in cfg:
                raise ValueError("ActionFormer init_cfg must be dict(type='Pretrained', "
                                 f'checkpoint=PATH), got {cfg}')
            from ...checkpoint.actionformer import load_actionformer_checkpoint
            load_actionformer_checkpoint(self, cfg['checkpoint'])

    def _features(self, inputs: Tensor, masks: Optional[Tensor]):
        if masks is None:
            masks = inputs.new_ones(inputs.shape[0], 1, inputs.shape[-1], dtype=torch.bool)
        feats, fmasks = self.backbone(inputs, masks)
        return self.neck(feats, fmasks)

    def forward(self, inputs: Tensor, data_samples: Optional[List] = None,
                mode: str = 'tensor', masks: Optional[Tensor] = None
                ) -> Union[Dict[str, Tensor], List, tuple]:
        """Args: inputs [B, C, T]; masks [B, 1, T] bool (all valid if None); mode
        'loss' | 'predict' | 'tensor' (per-level logits [B, T_l, K] and offsets [B, T_l, 2])."""
        if mode == 'loss':
            return self.loss(inputs, data_samples, masks)
        if mode == 'predict':
            return self.predict(inputs, data_samples, masks)
        if mode == 'tensor':
            return self.head(*self._features(inputs, masks))
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")

    def loss(self, inputs: Tensor, data_samples: List, masks: Optional[Tensor] = None
             ) -> Dict[str, Tensor]:
        feats, fmasks = self._features(inputs, masks)
        segs, labels = [], []
        for i, ds in enumerate(data_samples):
            if 'gt_instances' not in ds:
                raise KeyError(f'training sample {i} ({ds.metainfo.get("video_id")}) has no '
                               'gt_instances')
            segs.append(ds.gt_instances.segments.to(inputs.device).float())
            labels.append(ds.gt_instances.labels.to(inputs.device).long())
        return self.head.loss(feats, fmasks, segs, labels)

    def predict(self, inputs: Tensor, data_samples: List, masks: Optional[Tensor] = None
                ) -> List:
        feats, fmasks = self._features(inputs, masks)
        converters = [self._to_seconds(ds.metainfo) for ds in data_samples]
        results = self.head.predict(feats, fmasks, converters)
        for ds, res in zip(data_samples, results):
            ds.pred_instances = res
        return data_samples

    @staticmethod
    def _to_seconds(meta: dict):
        for key in ('fps', 'feat_stride', 'duration'):
            if key not in meta:
                raise KeyError(f'data sample {meta.get("video_id")} lacks metainfo {key!r} '
                               'needed to convert predictions to seconds')
        offset = meta.get('offset_frames')
        if offset is None:
            if 'feat_num_frames' not in meta:
                raise KeyError(f'data sample {meta.get("video_id")} needs offset_frames or '
                               'feat_num_frames in its metainfo')
            offset = default_offset_frames(meta['feat_num_frames'])

        def convert(grid: Tensor) -> Tensor:
            return grid_to_seconds(grid, float(meta['fps']), float(meta['feat_stride']),
                                   float(offset), float(meta['duration']))

        return convert
