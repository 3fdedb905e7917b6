"""One way to read a checkpoint file: torch pickles as weights only, safetensors, HF folders.

Every loader of the package (backbone ``init_cfg``, recognizer, head, pre-training, distiller,
``tools/convert_checkpoint.py``) and mmengine itself (``load_from``, ``--resume``,
``tools/test.py``: :func:`register_mmengine_loader` replaces mmengine's local-file scheme of
``CheckpointLoader``) read through :func:`read_checkpoint`:

* ``.pth`` / ``.pt`` / ``.bin``: ``torch.load(..., weights_only=True)``. The only globals a
  pickle may name are torch's own plus the allow-list of
  :func:`vmae2_mm.utils.compat.torch_load_safe_globals` (what mmengine Runner checkpoints hold:
  ``HistoryBuffer``, numpy arrays / scalars / dtypes); a pickle naming anything else (code a
  ``__reduce__`` would run) is refused, never executed.
* ``.safetensors``: read with ``safetensors``.
* a folder: Hugging Face ``save_pretrained`` output (``model.safetensors`` or
  ``pytorch_model.bin``, next to a ``config.json``).

Corrupt, truncated, empty and non-checkpoint files raise :class:`CheckpointReadError` naming the
file and the reason. mmengine's ``CheckpointLoader`` keeps its URL / ``open-mmlab://`` schemes;
only local paths come here.
"""
import os
import os.path as osp
import pickle
import re
import zipfile
from collections import OrderedDict
from typing import Dict

import torch
from torch import Tensor

NESTING_KEYS = ('state_dict', 'model', 'module')
HF_WEIGHT_FILES = ('model.safetensors', 'pytorch_model.bin')


class CheckpointReadError(ValueError):
    """A checkpoint file cannot be read (missing, empty, corrupt, unsafe, not a checkpoint)."""


def _hf_weight_file(folder: str) -> str:
    for name in HF_WEIGHT_FILES:
        if osp.isfile(osp.join(folder, name)):
            return osp.join(folder, name)
    raise CheckpointReadError(
        f'{folder}: a checkpoint folder must be a Hugging Face save_pretrained folder with one '
        f'of {HF_WEIGHT_FILES}; found {sorted(os.listdir(folder))[:20]}')


def read_checkpoint(filename: str, map_location='cpu') -> dict:
    """Read a checkpoint file or HF folder without running any code it may contain.

    Args:
        filename (str): ``.pth``/``.pt``/``.bin`` (torch), ``.safetensors`` or a folder.
        map_location: As for ``torch.load``. Defaults to ``'cpu'``.

    Returns:
        dict: What the file holds (a safetensors file gives its flat tensor dict).

    Raises:
        FileNotFoundError: ``filename`` does not exist.
        CheckpointReadError: empty, truncated, corrupt, unsafe or not a checkpoint.
    """
    filename = osp.expanduser(str(filename))
    if osp.isdir(filename):
        filename = _hf_weight_file(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename!r} not found')
    if osp.getsize(filename) == 0:
        raise CheckpointReadError(f'{filename}: cannot read checkpoint: the file is empty (0 bytes)')
    if filename.endswith('.safetensors'):
        from safetensors.torch import load_file
        try:
            return dict(load_file(filename, device='cpu'))
        except Exception as e:  # safetensors raises its own SafetensorError types
            raise CheckpointReadError(f'{filename}: cannot read checkpoint: not a safetensors file '
                                      f'({type(e).__name__}: {e})') from e
    try:
        ckpt = torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e)
        unsafe = re.search(r'(Unsupported global: GLOBAL [^\s]+|unsupported GLOBAL [^\n]+|'
                           r'unrecognized function [^\n]+|getattr\([^\n]+is not allowed)', msg)
        if unsafe:
            raise CheckpointReadError(
                f'{filename}: cannot read checkpoint: refused to unpickle it, the file names '
                'Python objects outside the weights-only allow-list (tensors, containers, numpy, '
                'mmengine HistoryBuffer), so it is not a plain checkpoint; nothing in it was '
                f'executed ({unsafe.group(0)[:200]})') from e
        detail = msg.split('WeightsUnpickler error:')[-1].strip().split('\n')[0]
        raise CheckpointReadError(f'{filename}: cannot read checkpoint: corrupt or not a torch '
                                  f'checkpoint (UnpicklingError: {detail[:300]})') from e
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError,
            IndexError, TypeError) as e:
        # a truncated zip surfaces as RuntimeError ("failed finding central directory"),
        # a truncated legacy pickle as EOFError / UnpicklingError
        raise CheckpointReadError(f'{filename}: cannot read checkpoint: corrupt or truncated '
                                  f'({type(e).__name__}: {str(e)[:300]})') from e
    if not isinstance(ckpt, dict):
        raise CheckpointReadError(f'{filename}: cannot read checkpoint: it must hold a dict (a state dict or '
                                  f'mmengine {{"state_dict": ..., "meta": ...}}), this file '
                                  f'holds a {type(ckpt).__name__}')
    return ckpt


def unwrap_state_dict(ckpt: dict) -> Dict[str, Tensor]:
    """Return the tensor dict inside a checkpoint nested under ``state_dict``/``model``/``module``
    or given raw (the official loaders' fallback order, plus mmengine's ``state_dict``)."""
    if not isinstance(ckpt, dict):
        raise TypeError(f'checkpoint must be a dict, got {type(ckpt).__name__}')
    for key in NESTING_KEYS:
        inner = ckpt.get(key)
        if isinstance(inner, dict) and inner and all(isinstance(v, Tensor) for v in inner.values()):
            return OrderedDict(inner)
    if ckpt and all(isinstance(v, Tensor) for v in ckpt.values()):
        return OrderedDict(ckpt)
    raise KeyError('no state dict found in checkpoint: expected a dict of tensors, raw or under '
                   f'one of {NESTING_KEYS}; top-level keys are {sorted(map(str, ckpt))[:20]}')


def strip_prefixes(state_dict: Dict[str, Tensor],
                   prefixes=('_orig_mod.', 'module.')) -> Dict[str, Tensor]:
    """Remove each of ``prefixes`` from the start of every key (in order).

    A ``model.`` prefix on *every* key (OpenGVLab hub repos' remote-code wrapper) is removed too.
    """
    out = OrderedDict()
    for k, v in state_dict.items():
        for p in prefixes:
            if k.startswith(p):
                k = k[len(p):]
        out[k] = v
    if out and all(k.startswith('model.') for k in out):
        out = OrderedDict((k[len('model.'):], v) for k, v in out.items())
    return out


def load_from_local(filename: str, map_location=None) -> dict:
    """mmengine ``CheckpointLoader`` scheme for local paths, through :func:`read_checkpoint`."""
    return read_checkpoint(filename, map_location=map_location or 'cpu')


def register_mmengine_loader() -> None:
    """Make mmengine's ``CheckpointLoader`` read local files through :func:`read_checkpoint`
    (weights only, safetensors, HF folders, clear errors). Idempotent."""
    from mmengine.runner.checkpoint import CheckpointLoader
    if CheckpointLoader._schemes.get('') is load_from_local:
        return
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)


__all__ = ['NESTING_KEYS', 'CheckpointReadError', 'read_checkpoint', 'unwrap_state_dict',
           'strip_prefixes', 'load_from_local', 'register_mmengine_loader']
