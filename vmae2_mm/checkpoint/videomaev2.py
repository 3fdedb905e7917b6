"""Loading and converting VideoMAE V2 checkpoints for :class:`VideoMAEv2ViT` and recognizers.

Supported layouts (auto-detected by :func:`detect_format`):

* ``official``: OpenGVLab/VideoMAEv2 fine-tuned / distilled (``patch_embed.proj``,
  ``blocks.i.attn.{qkv,q_bias,v_bias}``, ``mlp.fc1``, ``fc_norm``, ``head``) and pre-training
  (the same under ``encoder.``, plus ``decoder.*``, ``encoder_to_decoder``, ``mask_token``);
  this is also the layout of vmae2_mm recognizers (``backbone.*`` + ``cls_head.fc_cls``).
* ``hf`` (mapped by :mod:`.hf`, the one HF key map): Hugging Face ``transformers`` ``VideoMAEModel`` / ``VideoMAEForVideoClassification`` /
  ``VideoMAEForPreTraining`` (split ``query``/``key``/``value``; v5 ``query.bias``/
  ``value.bias`` or v4 ``q_bias``/``v_bias``; ``classifier``; ``videomae.layernorm``).
* ``mmaction2``: mmaction2 ``VisionTransformer`` recognizers (``patch_embed.projection``,
  ``mlp.layers.0.0`` / ``mlp.layers.1``, ``cls_head.fc_cls``, persistent ``pos_embed``).

Every file may be nested under ``state_dict`` / ``model`` / ``module`` or raw, carry
``_orig_mod.`` (torch.compile) / ``module.`` (DDP) prefixes and fp16 tensors (upcast to fp32).
All layouts are first mapped to one canonical form (:class:`CanonicalCheckpoint`: backbone keys
equal to ``VideoMAEv2ViT``'s, the classifier, an optional position table), from which the
backbone loader, the recognizer loader and ``tools/convert_checkpoint.py`` work.
"""
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from vmae2_mm.utils.pos_embed import sinusoid_table

from .hf import hf_to_official
from .io import NESTING_KEYS, read_checkpoint, strip_prefixes, unwrap_state_dict
from .report import compare
FORMATS = ('official', 'hf', 'mmaction2')
#: Keys of the pre-training model that a backbone or recognizer never uses.
PRETRAIN_ONLY = ('decoder.', 'encoder_to_decoder', 'mask_token')
#: A checkpoint table closer than this to the sinusoid is treated as the fixed sinusoid.
SINUSOID_ATOL = 1e-4


def detect_format(state_dict: Dict[str, Tensor]) -> str:
    """Name the key layout of a (prefix-stripped) state dict: one of :data:`FORMATS`."""
    keys = list(state_dict)
    if any('embeddings.patch_embeddings.projection.' in k or '.attention.attention.' in k
           for k in keys):
        return 'hf'
    if any('patch_embed.projection.' in k or '.mlp.layers.0.0.' in k for k in keys):
        return 'mmaction2'
    if any(re.search(r'(^|\.)(patch_embed\.proj\.|blocks\.\d+\.)', k) for k in keys):
        return 'official'
    raise ValueError('unknown checkpoint layout: no VideoMAE patch embedding or block keys '
                     f'(official, HF transformers or mmaction2) among {keys[:10]}')


# --------------------------------------------------------------------------------------------
# mmaction2 -> official
_MMA_RENAMES = (
    ('patch_embed.projection.', 'patch_embed.proj.'),
    ('.mlp.layers.0.0.', '.mlp.fc1.'),
    ('.mlp.layers.1.', '.mlp.fc2.'),
    ('cls_head.fc_cls.', 'head.'),
)


def mmaction2_to_official(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """mmaction2 ``VisionTransformer`` / recognizer keys -> official fine-tune keys."""
    out = OrderedDict()
    for k, v in state_dict.items():
        if k.startswith('backbone.'):
            k = k[len('backbone.'):]
        for src, dst in _MMA_RENAMES:
            k = k.replace(src, dst)
        out[k] = v
    return out


# --------------------------------------------------------------------------------------------
@dataclass
class CanonicalCheckpoint:
    """A checkpoint in ``VideoMAEv2ViT`` terms.

    Attributes:
        backbone (dict): ``VideoMAEv2ViT`` state dict (fp32), ``norm.*`` included when present.
        head (dict): ``{'weight': [K, C], 'bias': [K]}`` of the classifier, or empty.
        pos_embed (Tensor | None): [1, N, C] position table carried by the checkpoint (mmaction2
            buffer, HF or learnable), else None.
        dropped (dict): key -> reason for every key that is not used.
        fmt (str): Detected source layout.
    """
    backbone: Dict[str, Tensor] = field(default_factory=OrderedDict)
    head: Dict[str, Tensor] = field(default_factory=OrderedDict)
    pos_embed: Optional[Tensor] = None
    dropped: Dict[str, str] = field(default_factory=OrderedDict)
    fmt: str = 'official'


def canonicalize(state_dict: Dict[str, Tensor], fmt: str = 'auto') -> CanonicalCheckpoint:
    """Map an unwrapped state dict of any supported layout to :class:`CanonicalCheckpoint`.

    A distillation checkpoint (every key under ``student.``) gives its student.

    Args:
        state_dict (dict): Tensors (see :func:`unwrap_state_dict`).
        fmt (str): ``'auto'`` or one of :data:`FORMATS` to force the layout.
    """
    sd = strip_prefixes(state_dict)
    if sd and all(k.startswith('student.') for k in sd):
        # a VideoMAEv2Distiller checkpoint holds only its student recognizer (the teacher is
        # never saved): the student is the model to convert
        sd = strip_prefixes(sd, ('student.', ))
    if fmt == 'auto':
        fmt = detect_format(sd)
    elif fmt not in FORMATS:
        raise ValueError(f"checkpoint format must be 'auto' or one of {FORMATS}, got {fmt!r}")
    if fmt == 'hf':
        sd = hf_to_official(sd)
    elif fmt == 'mmaction2':
        sd = mmaction2_to_official(sd)
    out = CanonicalCheckpoint(fmt=fmt)
    has_encoder = any(k.startswith('encoder.') for k in sd)
    for k, v in sd.items():
        if v.is_floating_point():
            v = v.float()
        if k.startswith(PRETRAIN_ONLY) or k == 'data_preprocessor' or \
                k.startswith('data_preprocessor.'):
            out.dropped[k] = 'pre-training decoder / preprocessor, not part of a recognizer'
            continue
        if k.startswith(('head.', 'cls_head.fc_cls.')):
            out.head[k.rsplit('.', 1)[1]] = v
            continue
        if k.startswith('encoder.'):
            k = k[len('encoder.'):]
        elif k.startswith('backbone.'):
            k = k[len('backbone.'):]
        elif has_encoder:
            out.dropped[k] = 'outside the pre-training encoder'
            continue
        if k == 'pos_embed':
            out.pos_embed = v
            continue
        out.backbone[k] = v
    if not out.backbone:
        raise ValueError(f'no backbone tensors found in the {fmt} checkpoint')
    return out


def is_sinusoid_table(table: Tensor, atol: float = SINUSOID_ATOL) -> bool:
    """True when ``table`` [1, N, C] equals the fixed 1-D sinusoid table for N tokens."""
    if table.dim() != 3 or table.shape[0] != 1:
        return False
    ref = sinusoid_table(table.shape[1], table.shape[2])
    return torch.allclose(table.float(), ref, atol=atol, rtol=0)


def infer_pos_grid(num_tokens: int, model_grid: Tuple[int, int, int]) -> Tuple[int, int, int]:
    """Token grid (T', H', W') of a square-frame checkpoint table with ``num_tokens`` rows.

    Tries the model's T' first (what official fine-tuning assumes), then 8 (16 frames).
    """
    for t in dict.fromkeys((model_grid[0], 8)):
        if num_tokens % t == 0:
            s = round((num_tokens // t)**0.5)
            if s * s * t == num_tokens:
                return t, s, s
    raise ValueError(f'cannot infer the token grid of a {num_tokens}-row position table for a '
                     f'model with grid {model_grid}')


def to_backbone_keys(state_dict: Dict[str, Tensor], use_mean_pooling: bool = True
                     ) -> Tuple[Dict[str, Tensor], Dict[str, str]]:
    """Any supported layout -> ``VideoMAEv2ViT`` keys (official, HF, mmaction2; auto-detected).

    Keeps ``encoder.*`` / ``backbone.*`` / bare backbone keys; drops decoder, head and position
    tables with the reason recorded. ``encoder.norm`` becomes ``norm`` and is dropped under mean
    pooling, as the official fine-tune loader does.

    Returns:
        tuple: (backbone state dict in fp32, {dropped key: reason}).
    """
    c = canonicalize(state_dict)
    out, dropped = to_backbone_keys_from(c, use_mean_pooling)
    if c.pos_embed is not None:
        dropped['pos_embed'] = 'position table (the model builds its own)'
    return out, dropped


def _shape_errors(sd: Dict[str, Tensor], own: Dict[str, Tensor], prefix: str = '') -> List[str]:
    return [f'{prefix}{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
            for k, v in sd.items() if k in own and own[k].shape != v.shape]


def _shape_message(filename: str, sd: Dict[str, Tensor], own: Dict[str, Tensor],
                   bad: List[str]) -> str:
    """One-line shape error with the likely cause (another ViT width, head size)."""
    causes = compare(sd, own).causes()
    return (f'{filename}: shape mismatch for ' + '; '.join(bad) +
            (f' (likely cause: {"; ".join(causes)})' if causes else ''))


def _check_pos_embed(table: Tensor, width: int, filename: str) -> None:
    if table.dim() != 3 or table.shape[-1] != width:
        raise ValueError(f'{filename}: pos_embed: checkpoint {tuple(table.shape)} vs model '
                         f'width {width}')


def load_backbone_checkpoint(model: nn.Module, filename: str,
                             logger: Optional[logging.Logger] = None, strict: bool = False,
                             fmt: str = 'auto') -> dict:
    """Load a VideoMAE V2 checkpoint file (any supported layout) into a ``VideoMAEv2ViT``.

    A learnable (non-sinusoid) position table in the checkpoint is resized to the model's grid
    and copied into its ``pos_embed`` buffer; a sinusoid one is dropped (the model builds its
    own, resized for other resolutions / frame counts). Shape mismatches always raise with the
    key and both shapes; missing/unexpected keys are logged (raised when ``strict``).

    Returns:
        dict: ``missing``, ``unexpected`` and ``dropped`` key lists and the detected ``format``.
    """
    logger = logger or logging.getLogger(__name__)
    ckpt = read_checkpoint(filename)
    try:
        c = canonicalize(unwrap_state_dict(ckpt), fmt)
    except (KeyError, ValueError, TypeError) as e:
        raise type(e)(f'{filename}: {e}') from e
    sd, dropped = to_backbone_keys_from(c, getattr(model, 'use_mean_pooling', True))
    own = model.state_dict()
    bad = _shape_errors(sd, own)
    if bad:
        raise ValueError(_shape_message(filename, sd, own, bad))
    if c.pos_embed is not None:
        # the backbone's _load_from_state_dict resizes a learnable table, drops a sinusoid one
        _check_pos_embed(c.pos_embed, model.embed_dims, filename)
        if is_sinusoid_table(c.pos_embed):
            dropped['pos_embed'] = 'fixed sinusoid table (rebuilt by the model)'
        sd['pos_embed'] = c.pos_embed
    result = model.load_state_dict(sd, strict=False)
    report = dict(missing=list(result.missing_keys), unexpected=list(result.unexpected_keys),
                  dropped=sorted(dropped), format=c.fmt)
    msg = (f'loaded {filename} ({c.fmt} layout): {len(sd) - len(report["unexpected"])} tensors; '
           f'missing {report["missing"]}; unexpected {report["unexpected"]}; '
           f'dropped {len(dropped)} non-backbone keys')
    if strict and (report['missing'] or report['unexpected']):
        raise KeyError(msg)
    logger.info(msg)
    return report


def to_backbone_keys_from(c: CanonicalCheckpoint, use_mean_pooling: bool = True
                          ) -> Tuple[Dict[str, Tensor], Dict[str, str]]:
    """Backbone state dict and dropped-key reasons of a canonical checkpoint."""
    dropped = OrderedDict(c.dropped)
    for k in c.head:
        dropped[f'head.{k}'] = 'classifier, not part of the backbone'
    out = OrderedDict()
    for k, v in c.backbone.items():
        if use_mean_pooling and k.startswith('norm.'):
            dropped[k] = 'final norm is unused under mean pooling (official fine-tune rule)'
            continue
        out[k] = v
    return out, dropped


def convert_head(head: Dict[str, Tensor], label_map: Union[str, Sequence[int], None]
                 ) -> Dict[str, Tensor]:
    """Select classifier rows by a label index map (e.g. K710 -> K400, as official fine-tuning).

    Args:
        head (dict): ``weight`` [K_src, C] and ``bias`` [K_src].
        label_map (str | Sequence[int] | None): Short name (``'k710to400'``), JSON path or the
            index list itself; None returns ``head`` unchanged.

    Returns:
        dict: ``weight`` [K_dst, C] and ``bias`` [K_dst].
    """
    if label_map is None:
        return head
    if not head:
        raise ValueError('label_map given but the checkpoint has no classifier head')
    if isinstance(label_map, str):
        from .label_maps import load_label_map
        label_map = load_label_map(label_map)
    idx = torch.as_tensor(list(label_map), dtype=torch.long)
    rows = head['weight'].shape[0]
    if idx.numel() == 0 or int(idx.max()) >= rows or int(idx.min()) < 0:
        raise ValueError(f'label map indexes rows up to {int(idx.max()) if idx.numel() else -1} '
                         f'but the checkpoint head has {rows} classes')
    return OrderedDict((k, v[idx].clone()) for k, v in head.items())


def to_recognizer_state_dict(c: CanonicalCheckpoint, label_map=None,
                             use_mean_pooling: bool = True) -> Dict[str, Tensor]:
    """mmengine recognizer state dict: ``backbone.*`` + ``cls_head.fc_cls.*`` (head mapped by
    ``label_map`` when given). A sinusoid position table is left out (the model rebuilds it)."""
    backbone, _ = to_backbone_keys_from(c, use_mean_pooling)
    out = OrderedDict(('backbone.' + k, v) for k, v in backbone.items())
    if c.pos_embed is not None and not is_sinusoid_table(c.pos_embed):
        out['backbone.pos_embed'] = c.pos_embed
    for k, v in convert_head(c.head, label_map).items():
        out['cls_head.fc_cls.' + k] = v
    return out


def load_recognizer_checkpoint(model: nn.Module, filename: str, label_map=None,
                               logger: Optional[logging.Logger] = None, strict: bool = False,
                               fmt: str = 'auto') -> dict:
    """Load any supported checkpoint into a recognizer (``backbone`` + ``cls_head.fc_cls``).

    Args:
        model (nn.Module): mmaction ``Recognizer3D`` with a ``VideoMAEv2ViT`` backbone and a
            head owning ``fc_cls``.
        filename (str): Checkpoint path.
        label_map (str | Sequence[int], optional): Head row map (``'k710to400'`` ...).
        strict (bool): Raise on missing/unexpected keys. Defaults to False.
        fmt (str): ``'auto'`` or a layout in :data:`FORMATS`.

    Returns:
        dict: ``missing``, ``unexpected``, ``dropped`` and ``format``.
    """
    logger = logger or logging.getLogger(__name__)
    ckpt = read_checkpoint(filename)
    try:
        c = canonicalize(unwrap_state_dict(ckpt), fmt)
    except (KeyError, ValueError, TypeError) as e:
        raise type(e)(f'{filename}: {e}') from e
    backbone = model.backbone
    sd = to_recognizer_state_dict(c, label_map, getattr(backbone, 'use_mean_pooling', True))
    own = model.state_dict()
    bad = _shape_errors(sd, own)
    if bad:
        raise ValueError(_shape_message(filename, sd, own, bad) +
                         ('' if label_map else
                          ' (a K710 head needs label_map="k710to400"/"k710to600" for Kinetics)'))
    if 'backbone.pos_embed' in sd:
        _check_pos_embed(sd['backbone.pos_embed'], backbone.embed_dims, filename)
    result = model.load_state_dict(sd, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith('data_preprocessor')]
    report = dict(missing=missing, unexpected=list(result.unexpected_keys),
                  dropped=sorted(c.dropped), format=c.fmt)
    msg = (f'loaded {filename} ({c.fmt} layout) into the recognizer: missing {missing}; '
           f'unexpected {report["unexpected"]}; dropped {len(c.dropped)} keys')
    if strict and (missing or report['unexpected']):
        raise KeyError(msg)
    logger.info(msg)
    return report


__all__ = [
    'NESTING_KEYS', 'SINUSOID_ATOL', 'FORMATS', 'CanonicalCheckpoint', 'read_checkpoint', 'unwrap_state_dict',
    'strip_prefixes',
    'detect_format', 'hf_to_official', 'mmaction2_to_official', 'canonicalize',
    'is_sinusoid_table', 'infer_pos_grid', 'to_backbone_keys', 'to_backbone_keys_from',
    'load_backbone_checkpoint', 'convert_head', 'to_recognizer_state_dict',
    'load_recognizer_checkpoint'
]
