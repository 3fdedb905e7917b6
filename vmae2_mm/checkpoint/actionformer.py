"""Official ActionFormer checkpoints (happyharrycn/actionformer_release) <-> our ActionFormer.

Upstream ``train.py`` saves ``{'epoch', 'state_dict', 'state_dict_ema', 'optimizer',
'scheduler'}`` from a ``DataParallel`` model, so keys start with ``module.``; evaluation uses
``state_dict_ema``. The official ``PtTransformer`` layout maps to ours as:

==========================================  ==========================================
official                                    ours
==========================================  ==========================================
``backbone.embd.i.conv.weight``             same
``backbone.embd_norm.i.{weight,bias}``      same
``backbone.{stem,branch}.i.ln1.*``          ``backbone.{stem,branch}.i.norm1.*``
``backbone.{stem,branch}.i.ln2.*``          ``backbone.{stem,branch}.i.norm2.*``
``backbone.{stem,branch}.i.mlp.0.*``        ``backbone.{stem,branch}.i.mlp.fc1.*``
``backbone.{stem,branch}.i.mlp.3.*``        ``backbone.{stem,branch}.i.mlp.fc2.*``
``backbone.*.attn.*`` (``{query,key,value}_conv.conv``, ``*_norm``, ``query``, ``key``,
``value``, ``proj``), ``backbone.*.drop_path_{attn,mlp}.scale``       same
``neck.fpn_norms.i.*``                      same
``cls_head.head.i.conv.*``                  ``head.cls_convs.i.conv.*``
``cls_head.norm.i.*``                       ``head.cls_norms.i.*``
``cls_head.cls_head.conv.*``                ``head.cls_out.conv.*``
``reg_head.head.i.conv.*``                  ``head.reg_convs.i.conv.*``
``reg_head.norm.i.*``                       ``head.reg_norms.i.*``
``reg_head.offset_head.conv.*``             ``head.reg_out.conv.*``
``reg_head.scale.i.scale``                  ``head.scales.i.scale``
==========================================  ==========================================

Upstream keeps the loss normaliser as a plain float attribute of ``PtTransformer`` (set to
``init_loss_norm``, updated as an EMA, never saved), so official checkpoints have no
``head.loss_normalizer``; our model lists it in ``ActionFormer.optional_state_keys`` and keeps
its current value when a checkpoint lacks it (upstream restarts from ``init_loss_norm`` on every
load too), so official and converted files load with ``strict=True``. Options upstream has and
we do not (``backbone.proj`` for multi-input features, ``attn.rel_pe``) surface as unexpected
keys.
"""
import re
from typing import Dict, List, Tuple, Union

import torch
from torch import Tensor, nn

from .io import read_checkpoint

_TO_OURS: List[Tuple[str, str]] = [
    (r'^backbone\.(stem|branch)\.(\d+)\.ln1\.', r'backbone.\1.\2.norm1.'),
    (r'^backbone\.(stem|branch)\.(\d+)\.ln2\.', r'backbone.\1.\2.norm2.'),
    (r'^backbone\.(stem|branch)\.(\d+)\.mlp\.0\.', r'backbone.\1.\2.mlp.fc1.'),
    (r'^backbone\.(stem|branch)\.(\d+)\.mlp\.3\.', r'backbone.\1.\2.mlp.fc2.'),
    (r'^cls_head\.head\.', 'head.cls_convs.'),
    (r'^cls_head\.norm\.', 'head.cls_norms.'),
    (r'^cls_head\.cls_head\.', 'head.cls_out.'),
    (r'^reg_head\.head\.', 'head.reg_convs.'),
    (r'^reg_head\.norm\.', 'head.reg_norms.'),
    (r'^reg_head\.offset_head\.', 'head.reg_out.'),
    (r'^reg_head\.scale\.', 'head.scales.'),
]
_TO_OFFICIAL: List[Tuple[str, str]] = [
    (r'^backbone\.(stem|branch)\.(\d+)\.norm1\.', r'backbone.\1.\2.ln1.'),
    (r'^backbone\.(stem|branch)\.(\d+)\.norm2\.', r'backbone.\1.\2.ln2.'),
    (r'^backbone\.(stem|branch)\.(\d+)\.mlp\.fc1\.', r'backbone.\1.\2.mlp.0.'),
    (r'^backbone\.(stem|branch)\.(\d+)\.mlp\.fc2\.', r'backbone.\1.\2.mlp.3.'),
    (r'^head\.cls_convs\.', 'cls_head.head.'),
    (r'^head\.cls_norms\.', 'cls_head.norm.'),
    (r'^head\.cls_out\.', 'cls_head.cls_head.'),
    (r'^head\.reg_convs\.', 'reg_head.head.'),
    (r'^head\.reg_norms\.', 'reg_head.norm.'),
    (r'^head\.reg_out\.', 'reg_head.offset_head.'),
    (r'^head\.scales\.', 'reg_head.scale.'),
]
# ours only: upstream's normaliser is a float attribute, not in its state dict
_OURS_ONLY = ('head.loss_normalizer', )


def _rename(key: str, rules: List[Tuple[str, str]]) -> str:
    for pattern, repl in rules:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    return key


def is_official_layout(state_dict: Dict[str, Tensor]) -> bool:
    """True if keys look like upstream ``PtTransformer`` (``cls_head.``/``reg_head.``)."""
    return any(k.split('module.', 1)[-1].startswith(('cls_head.', 'reg_head.'))
               for k in state_dict)


def official_to_ours(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Rename official keys (optionally ``module.``-prefixed) to ours."""
    out = {}
    for k, v in state_dict.items():
        k = k[len('module.'):] if k.startswith('module.') else k
        out[_rename(k, _TO_OURS)] = v
    return out


def ours_to_official(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Rename our keys to the official layout (drops ours-only buffers)."""
    return {_rename(k, _TO_OFFICIAL): v for k, v in state_dict.items() if k not in _OURS_ONLY}


def select_state_dict(ckpt: dict, use_ema: bool = True) -> Dict[str, Tensor]:
    """The weights inside a checkpoint: ``state_dict_ema`` (if ``use_ema``), then
    ``state_dict``, then mmengine's ``ema_state_dict`` / ``state_dict``, else the dict itself."""
    if use_ema and 'state_dict_ema' in ckpt:
        return ckpt['state_dict_ema']
    if 'state_dict' in ckpt:
        return ckpt['state_dict']
    return ckpt


def load_actionformer_checkpoint(model: nn.Module, checkpoint: Union[str, dict],
                                 use_ema: bool = True, strict: bool = True) -> Dict[str, list]:
    """Load an official or a vmae2_mm ActionFormer checkpoint into ``model``.

    Args:
        model (nn.Module): Our ``ActionFormer``.
        checkpoint (str | dict): Path or loaded checkpoint.
        use_ema (bool): Prefer upstream's ``state_dict_ema``. Defaults to True.
        strict (bool): Raise on missing / unexpected / mis-shaped keys. Defaults to True.

    Returns:
        dict: ``missing``, ``unexpected`` and ``mismatched`` (``(key, ckpt shape, model
        shape)``) lists, after mapping.

    Raises:
        KeyError / ValueError: naming the offending keys when ``strict``.
    """
    name = checkpoint if isinstance(checkpoint, str) else '<dict>'
    if isinstance(checkpoint, str):
        checkpoint = read_checkpoint(checkpoint)
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{name}: expected a dict checkpoint, got {type(checkpoint).__name__}')
    sd = select_state_dict(checkpoint, use_ema)
    if is_official_layout(sd):
        sd = official_to_ours(sd)
    else:
        sd = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in sd.items()}
    # keys the model fills in itself when absent (see ActionFormer.optional_state_keys)
    optional = set(getattr(model, 'optional_state_keys', ()))
    own = model.state_dict()
    missing = [k for k in own if k not in sd and k not in optional]
    unexpected = [k for k in sd if k not in own]
    mismatched = [(k, tuple(sd[k].shape), tuple(own[k].shape)) for k in own
                  if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    report = dict(missing=missing, unexpected=unexpected, mismatched=mismatched)
    if strict and (missing or unexpected or mismatched):
        lines = [f'{name}: checkpoint does not match the ActionFormer model']
        if missing:
            lines.append(f'  missing in checkpoint ({len(missing)}): {missing[:10]}')
        if unexpected:
            lines.append(f'  unexpected in checkpoint ({len(unexpected)}): {unexpected[:10]}')
        if mismatched:
            lines.append('  shape mismatch (key, checkpoint, model): '
                         f'{mismatched[:10]} (e.g. input_dim / num_classes differ)')
        raise KeyError('\n'.join(lines))
    bad = {m[0] for m in mismatched}
    model.load_state_dict({k: v for k, v in sd.items() if k in own and k not in bad},
                          strict=strict)
    return report


def convert_official_checkpoint(src: str, dst: str, use_ema: bool = True) -> Dict[str, Tensor]:
    """Write an upstream checkpoint as ``{'state_dict': ours, 'meta': {...}}`` so that
    ``tools/test.py CONFIG dst`` / ``load_from=dst`` work (mmengine cannot map the layout),
    strictly: like the source, the file has no ``head.loss_normalizer`` (the model keeps its
    ``init_loss_norm``).

    Args:
        src (str): Upstream ``*.pth.tar``.
        dst (str): Output path.
        use_ema (bool): Take ``state_dict_ema`` when present. Defaults to True.

    Returns:
        dict: The converted state dict.
    """
    ckpt = read_checkpoint(src)
    if not isinstance(ckpt, dict):
        raise ValueError(f'{src}: expected a dict checkpoint, got {type(ckpt).__name__}')
    sd = select_state_dict(ckpt, use_ema)
    if not is_official_layout(sd):
        raise ValueError(f'{src}: keys do not look like the official ActionFormer layout '
                         f'(no cls_head./reg_head. keys; first keys: {list(sd)[:3]})')
    out = official_to_ours(sd)
    torch.save(dict(state_dict=out, meta=dict(source=src, ema=use_ema and
                                              'state_dict_ema' in ckpt)), dst)
    return out
