"""Logit distillation of a large VideoMAE V2 recognizer into a small one (paper Table 16)."""
import logging
from collections import OrderedDict
from typing import Dict, List, Optional, Union

import torch
import torch.nn.functional as F
from mmaction.registry import MODELS
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from torch import Tensor, nn

from vmae2_mm.checkpoint.io import read_checkpoint, strip_prefixes, unwrap_state_dict


def to_recognizer_keys(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Official fine-tune keys (``blocks.*``, ``fc_norm``, ``head``) -> mmaction2 recognizer keys
    (``backbone.*``, ``cls_head.fc_cls``); recognizer checkpoints pass through. fp16 -> fp32."""
    sd = strip_prefixes(state_dict)
    is_recognizer = any(k.startswith(('backbone.', 'cls_head.')) for k in sd)
    out = OrderedDict()
    for k, v in sd.items():
        if k.endswith('pos_embed') or k.startswith('data_preprocessor.'):
            continue
        if not is_recognizer:
            k = 'cls_head.fc_cls.' + k[len('head.'):] if k.startswith('head.') else 'backbone.' + k
        out[k] = v.float() if v.is_floating_point() else v
    return out


@MODELS.register_module()
class VideoMAEv2Distiller(BaseModel):
    """Student recognizer trained to match a frozen teacher's logits.

    The paper distils VideoMAE V2-g (K710 fine-tuned) into ViT-S/B students initialised from
    their post-pre-trained weights, minimising the KL divergence between teacher and student
    logits (appendix E, Table 16); the official distillation code was never released
    (OpenGVLab/VideoMAEv2#61). Here the objective is
    ``kl_weight * T^2 * KL(softmax(teacher / T) || softmax(student / T))`` (batch mean; the
    ``T^2`` keeps gradient size independent of ``T``) plus optionally ``ce_weight`` times the
    student head's own loss on the labels (mixup/cutmix soft labels included).

    Both models see the same preprocessed (and, in training, blended) clips. The teacher is
    built from its config, loaded from ``teacher_checkpoint`` (mmaction2 recognizer or official
    fine-tune layout, fp16 upcast), kept in eval mode, frozen and run without gradients. It is
    left out of this model's checkpoints (it is reloaded from ``teacher_checkpoint``), so a
    saved distiller holds only ``student.*``; fine-tune the student by loading it with
    ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='student.')``, or convert it with
    ``tools/convert_checkpoint.py`` into a plain recognizer checkpoint for ``tools/test.py``.

    Args:
        student (dict): Recognizer config (e.g. ``Recognizer3D`` with ``VideoMAEv2ViT``).
        teacher (dict): Recognizer config of the teacher (same number of classes).
        teacher_checkpoint (str, optional): Teacher weights. Required unless the teacher's own
            ``init_cfg`` loads them.
        temperature (float): Softmax temperature T. Defaults to 1.
        kl_weight (float): Weight of the KL term. Defaults to 1.
        ce_weight (float): Weight of the student's label loss. Defaults to 0 (pure KD).
        data_preprocessor (dict, optional): Defaults to the student's.
        init_cfg (dict, optional): Passed to ``BaseModel``.
    """

    def __init__(self, student: dict, teacher: dict, teacher_checkpoint: Optional[str] = None,
                 temperature: float = 1., kl_weight: float = 1., ce_weight: float = 0.,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if temperature <= 0:
            raise ValueError(f'VideoMAEv2Distiller: temperature must be > 0, got {temperature}')
        if kl_weight < 0 or ce_weight < 0 or kl_weight + ce_weight == 0:
            raise ValueError('VideoMAEv2Distiller: kl_weight and ce_weight must be >= 0 and not '
                             f'both 0, got kl_weight={kl_weight}, ce_weight={ce_weight}')
        if data_preprocessor is None:
            data_preprocessor = student.get('data_preprocessor')
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.student = MODELS.build(student)
        self.teacher = MODELS.build(teacher)
        self.teacher.requires_grad_(False)
        self.teacher.eval()
        self.teacher_checkpoint = teacher_checkpoint
        self.temperature = float(temperature)
        self.kl_weight = float(kl_weight)
        self.ce_weight = float(ce_weight)
        # the teacher is not saved; on load, keep the current (checkpoint-loaded) teacher
        self._register_state_dict_hook(self._drop_teacher_keys)
        self.teacher._register_load_state_dict_pre_hook(self._fill_teacher_keys,
                                                        with_module=True)

    @staticmethod
    def _drop_teacher_keys(module, state_dict, prefix, local_metadata):
        for k in [k for k in state_dict if k.startswith(prefix + 'teacher.')]:
            del state_dict[k]
        return state_dict

    @staticmethod
    def _fill_teacher_keys(teacher, state_dict, prefix, *args):
        for k, v in teacher.state_dict().items():
            state_dict.setdefault(prefix + k, v)

    def init_weights(self) -> None:
        """Initialise the student (its own ``init_cfg``, e.g. a post-pre-trained checkpoint),
        then load the teacher checkpoint strictly."""
        self.student.init_weights()
        if self.teacher_checkpoint is None:
            self.teacher.init_weights()
        else:
            self.load_teacher(self.teacher_checkpoint)
        self._is_init = True

    def load_teacher(self, filename: str, logger: Optional[logging.Logger] = None) -> None:
        """Strictly load teacher weights (recognizer or official fine-tune layout).

        Raises:
            ValueError: on shape mismatches or missing/unexpected keys, naming them.
        """
        logger = logger or MMLogger.get_current_instance()
        ckpt = read_checkpoint(filename)
        sd = to_recognizer_keys(unwrap_state_dict(ckpt))
        own = self.teacher.state_dict()
        bad = [f'{k}: checkpoint {tuple(v.shape)} vs teacher {tuple(own[k].shape)}'
               for k, v in sd.items() if k in own and own[k].shape != v.shape]
        missing = sorted(set(own) - set(sd))
        unexpected = sorted(set(sd) - set(own))
        if bad or missing or unexpected:
            raise ValueError(f'teacher checkpoint {filename} does not fit the teacher: shape '
                             f'mismatch {bad}; missing {missing}; unexpected {unexpected}')
        self.teacher.load_state_dict(sd)
        logger.info(f'loaded distillation teacher from {filename} ({len(sd)} tensors)')

    def train(self, mode: bool = True) -> 'VideoMAEv2Distiller':
        super().train(mode)
        self.teacher.eval()  # no dropout / drop path in the teacher, ever
        return self

    def logits(self, model: nn.Module, inputs: Tensor, data_samples=None) -> Tensor:
        """[B, num_clips, C, T, H, W] -> logits [B * num_clips, K] of a recognizer."""
        return model.extract_feat(inputs, stage='head', data_samples=data_samples)[0]

    def loss(self, inputs: Tensor, data_samples) -> Dict[str, Tensor]:
        """``loss_kd`` (and ``loss_cls`` + the student head's metrics when ``ce_weight``)."""
        with torch.no_grad():
            t_logits = self.logits(self.teacher, inputs, data_samples).float()
        losses = dict()
        if self.ce_weight > 0:
            feats, _ = self.student.extract_feat(inputs, data_samples=data_samples)
            s_logits = self.student.cls_head(feats)
            head_losses = self.student.cls_head.loss_by_feat(s_logits, data_samples)
            for k, v in head_losses.items():
                losses[k] = v * self.ce_weight if k.startswith('loss') else v
        else:
            s_logits = self.logits(self.student, inputs, data_samples)
        if s_logits.shape != t_logits.shape:
            raise ValueError(f'student logits {tuple(s_logits.shape)} and teacher logits '
                             f'{tuple(t_logits.shape)} differ: both must predict the same classes')
        t = self.temperature
        kl = F.kl_div(F.log_softmax(s_logits.float() / t, dim=-1),
                      F.log_softmax(t_logits / t, dim=-1), reduction='batchmean',
                      log_target=True)
        losses['loss_kd'] = self.kl_weight * t * t * kl
        return losses

    def predict(self, inputs: Tensor, data_samples) -> List:
        """The student's predictions (mmaction2 recognizer post-processing)."""
        return self.student.predict(inputs, data_samples)

    def forward(self, inputs: Tensor, data_samples=None,
                mode: str = 'tensor') -> Union[Dict[str, Tensor], List, Tensor]:
        """``'loss'`` -> KD losses, ``'predict'`` -> student predictions, ``'tensor'`` ->
        student logits [B * num_clips, K]."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.logits(self.student, inputs, data_samples)
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")


__all__ = ['VideoMAEv2Distiller', 'to_recognizer_keys']
