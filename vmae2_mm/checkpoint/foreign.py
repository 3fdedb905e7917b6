"""Load official / HF / mmaction2 VideoMAE checkpoints through ``load_state_dict`` of a recognizer.

mmengine's ``load_from`` and ``Runner.load_checkpoint`` end in ``load_state_dict(model, sd)``
with the file's tensors as they are (for ``init_cfg``, the backbone's and ``VideoMAEv2Head``'s
own Pretrained loaders read every layout). :func:`install_foreign_checkpoint_hook` registers a
state-dict pre-hook on the recognizer (the root module) that recognises a checkpoint in another
layout (official fine-tuned ``blocks.*`` + ``head.*``, possibly under ``model``/``module``; HF
``VideoMAEForVideoClassification``; mmaction2 ``VisionTransformer``) and rewrites it in place to
our recognizer keys (``backbone.*`` + ``cls_head.fc_cls.*``) before anything is loaded, selecting
head rows by a label index map when the classifier sizes differ (K710 -> K400/K600/K700).
Checkpoints already in our layout (mmengine checkpoints of vmae2_mm models) pass unchanged.
"""
import logging
from typing import Dict, List, Optional, Sequence, Union

from torch import Tensor, nn

from .io import NESTING_KEYS, strip_prefixes
from .report import compare, enforce
from .videomaev2 import canonicalize, detect_format, to_recognizer_state_dict

LabelMap = Union[str, Sequence[int], None]
#: Auto-selected maps: (checkpoint classes, model classes) -> short map name.
AUTO_LABEL_MAPS = {(710, 400): 'k710to400', (710, 600): 'k710to600', (710, 700): 'k710to700'}
_HOOK_ATTR = '_vmae2_foreign_checkpoint_hook'


def is_own_layout(state_dict: Dict[str, object]) -> bool:
    """True when the keys already are a vmae2_mm recognizer's (``backbone.blocks.*`` in the
    official naming; an mmaction2 recognizer also has ``backbone.blocks.*`` but names its
    patch embedding / MLP differently)."""
    keys = strip_prefixes(dict.fromkeys(k for k in state_dict if isinstance(k, str)))
    if not any(k.startswith('backbone.') for k in keys):
        return False
    try:
        return detect_format(keys) == 'official'
    except ValueError:
        return False


def _flatten(state_dict: dict) -> Optional[Dict[str, Tensor]]:
    """The tensor dict of a (possibly ``model``/``module``-nested) checkpoint, else None."""
    for key in NESTING_KEYS:
        inner = state_dict.get(key)
        if isinstance(inner, dict) and inner and all(isinstance(v, Tensor)
                                                     for v in inner.values()):
            return dict(inner)
    tensors = {k: v for k, v in state_dict.items() if isinstance(v, Tensor)}
    return tensors or None


def head_rows(model: nn.Module) -> int:
    """Classes K of the recognizer's ``cls_head.fc_cls`` [K, C]."""
    return model.cls_head.fc_cls.weight.shape[0]


def resolve_label_map(label_map: LabelMap, ckpt_rows: int, model_rows: int) -> LabelMap:
    """The label map to apply: the given one, none when sizes agree, or the K710 default."""
    if label_map is not None or ckpt_rows == model_rows:
        return label_map
    name = AUTO_LABEL_MAPS.get((ckpt_rows, model_rows))
    if name is None:
        raise ValueError(f'the checkpoint classifier has {ckpt_rows} classes, the model '
                         f'{model_rows}: set label_map (a list or JSON file of source rows)')
    return name


def convert_to_recognizer(model: nn.Module, state_dict: dict, label_map: LabelMap = None,
                          logger: Optional[logging.Logger] = None) -> Optional[dict]:
    """Foreign-layout checkpoint -> recognizer state dict, or None when already ours.

    Args:
        model (nn.Module): Recognizer with ``backbone`` (``VideoMAEv2ViT``) and ``cls_head``
            owning ``fc_cls``.
        state_dict (dict): What mmengine hands to ``load_state_dict``.
        label_map (str | Sequence[int], optional): Head rows to select; by default the K710 ->
            K400/K600/K700 map when the checkpoint has 710 classes and the model 400/600/700.

    Returns:
        dict | None: ``backbone.*`` / ``cls_head.fc_cls.*`` tensors (a learnable position table
        as ``backbone.pos_embed``, which the backbone resizes on load).
    """
    logger = logger or logging.getLogger(__name__)
    if is_own_layout(state_dict):
        return None
    tensors = _flatten(state_dict)
    if tensors is None:
        return None
    try:
        c = canonicalize(tensors)
    except ValueError:
        return None  # not a VideoMAE checkpoint: let mmengine report its keys
    proj = c.backbone.get('patch_embed.proj.weight')
    same_width = proj is None or proj.shape[0] == getattr(model.backbone, 'embed_dims', None)
    if c.head and same_width:
        label_map = resolve_label_map(label_map, c.head['weight'].shape[0], head_rows(model))
    elif c.head:
        label_map = None  # another arch: no row map applies, the strict check names the widths
    sd = to_recognizer_state_dict(c, label_map,
                                  getattr(model.backbone, 'use_mean_pooling', True))
    logger.info(f'converted a {c.fmt}-layout checkpoint to recognizer keys ({len(sd)} tensors'
                + (f', head rows by label map {label_map!r}' if label_map is not None and c.head
                   else '') + f'; dropped {len(c.dropped)} keys)')
    return sd


def _resizable_keys(model: nn.Module, state_dict: dict) -> List[str]:
    """Checkpoint ``*pos_embed`` keys a backbone resizes on load (non-persistent buffers of a
    module with ``pos_embed_for``), accepted though the model's state dict lacks them."""
    out = []
    for k in state_dict:
        if isinstance(k, str) and (k == 'pos_embed' or k.endswith('.pos_embed')):
            owner = k[:-len('pos_embed')].rstrip('.')
            try:
                mod = model.get_submodule(owner) if owner else model
            except AttributeError:
                continue
            if hasattr(mod, 'pos_embed_for'):
                out.append(k)
    return out


def check_state_dict(model: nn.Module, state_dict: dict, strict: bool = True,
                     source: str = 'checkpoint',
                     logger: Optional[logging.Logger] = None):
    """Compare ``state_dict`` (model naming) with ``model`` and raise / log (see ``enforce``).

    In partial mode the mis-shaped tensors are removed from ``state_dict`` so that the rest
    loads (torch would otherwise fail on them).
    """
    own = model.state_dict()
    rep = compare(state_dict, own, _resizable_keys(model, state_dict),
                  ignore=('data_preprocessor.', ))
    enforce(rep, strict, source, logger)
    for k, _, _ in rep.mismatched:
        state_dict.pop(k, None)
    return rep


def install_foreign_checkpoint_hook(model: nn.Module, label_map: LabelMap = None,
                                    logger: Optional[logging.Logger] = None,
                                    strict: Optional[bool] = None,
                                    source: str = 'checkpoint') -> bool:
    """Make ``model.load_state_dict`` / mmengine loading accept foreign checkpoint layouts.

    A ``VideoMAEv2ViT`` recognizer (duck-typed: its backbone has ``pos_embed_for``, its head
    ``fc_cls``) gets foreign layouts converted. With ``strict`` set (True or False) every model
    also gets the checkpoint compared before anything is copied: strict raises
    :class:`~vmae2_mm.checkpoint.report.CheckpointMismatchError` naming keys, expected vs found
    shapes and the likely cause; False loads what matches and logs a summary. Installs once
    per model (a second call updates ``strict`` / ``source``).

    Returns:
        bool: True if a hook is installed on ``model``.
    """
    recognizer = (hasattr(getattr(model, 'backbone', None), 'pos_embed_for')
                  and hasattr(getattr(model, 'cls_head', None), 'fc_cls'))
    if not recognizer and strict is None:
        return False
    state = getattr(model, _HOOK_ATTR + '_state', None)
    if state is not None:
        state.update(strict=strict, source=source)
        return True
    state = dict(strict=strict, source=source)
    setattr(model, _HOOK_ATTR + '_state', state)

    def pre_hook(state_dict, prefix, *args):
        if prefix:  # only the root call sees the whole checkpoint
            return
        if recognizer:
            converted = convert_to_recognizer(model, state_dict, label_map, logger)
            if converted is not None:
                state_dict.clear()
                state_dict.update(converted)
        if state['strict'] is not None:
            check_state_dict(model, state_dict, state['strict'], state['source'], logger)

    setattr(model, _HOOK_ATTR, model._register_load_state_dict_pre_hook(pre_hook))
    return True


__all__ = ['AUTO_LABEL_MAPS', 'is_own_layout', 'check_state_dict', 'resolve_label_map', 'convert_to_recognizer',
           'install_foreign_checkpoint_hook']
