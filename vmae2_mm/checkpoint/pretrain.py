"""Pre-training checkpoint key maps: official VideoMAE V2 <-> HF ``VideoMAEForPreTraining``.

:class:`~vmae2_mm.models.pretrainers.VideoMAEv2Pretrainer` uses the official parameter names
(``encoder.*``, ``decoder.*``, ``encoder_to_decoder.weight``, ``mask_token``), so official
pre-training checkpoints (``{'model': sd}``, DeepSpeed ``{'module': sd}``, raw, ``_orig_mod.``
from ``torch.compile``) load by unwrapping alone; HF checkpoints are renamed per the mapping in
``videomaev2.md`` section 3.6. Our own pretrainer checkpoints load into ``VideoMAEv2ViT`` through
:func:`vmae2_mm.checkpoint.videomaev2.load_backbone_checkpoint` (``encoder.`` stripped, ``encoder.norm``
dropped under mean pooling as officially).
"""
import logging
from collections import OrderedDict
from typing import Dict, Optional

from torch import Tensor, nn

from .hf import HFLayoutError, hf_to_official, official_to_hf  # noqa: F401  (re-exported)
from .io import read_checkpoint, strip_prefixes, unwrap_state_dict

def is_hf_pretrain(state_dict: Dict[str, Tensor]) -> bool:
    """True for HF ``VideoMAEForPreTraining`` keys (``videomae.*``)."""
    return any(k.startswith('videomae.') for k in state_dict)


def hf_to_official_pretrain(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """HF ``VideoMAEForPreTraining`` -> official pre-training keys (through the one HF map of
    :mod:`.hf`; the fixed position table is dropped, the model rebuilds it).

    Raises:
        HFLayoutError: on a key the map does not know, or a non-zero ``key.bias``.
    """
    sd = dict(state_dict)
    if not any(k.startswith(('decoder.', 'encoder_to_decoder', 'mask_token')) for k in sd):
        raise HFLayoutError('not an HF VideoMAEForPreTraining state dict (no decoder, '
                            f'encoder_to_decoder or mask_token among {list(sd)[:10]})')
    return OrderedDict((k, v) for k, v in hf_to_official(sd).items()
                       if not k.endswith('pos_embed'))


#: Official pre-training keys -> HF ``VideoMAEForPreTraining`` (transformers v5) keys.
official_to_hf_pretrain = official_to_hf


def to_pretrainer_keys(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Any supported pre-training layout (official, ours, HF) -> pretrainer keys in fp32.

    Strips ``_orig_mod.`` / ``module.``, renames HF keys and drops fixed position tables and
    the data preprocessor's (non-learnt) buffers.
    """
    sd = strip_prefixes(state_dict)
    if is_hf_pretrain(sd):
        sd = hf_to_official_pretrain(sd)
    out = OrderedDict()
    for k, v in sd.items():
        if k.endswith('pos_embed') or k.startswith('data_preprocessor.'):
            continue
        out[k] = v.float() if v.is_floating_point() else v
    return out


def load_pretrain_checkpoint(model: nn.Module, filename: str, strict: bool = True,
                             logger: Optional[logging.Logger] = None) -> dict:
    """Load an official / HF / vmae2_mm pre-training checkpoint into a ``VideoMAEv2Pretrainer``.

    Args:
        model (nn.Module): The pretrainer.
        filename (str): Checkpoint path.
        strict (bool): Raise on missing or unexpected keys. Defaults to True.
        logger (Logger, optional): Where the summary goes.

    Returns:
        dict: ``missing`` and ``unexpected`` key lists.

    Raises:
        ValueError: on shape mismatches (key and both shapes named).
        KeyError: on missing/unexpected keys when ``strict``.
    """
    logger = logger or logging.getLogger(__name__)
    ckpt = read_checkpoint(filename)
    sd = to_pretrainer_keys(unwrap_state_dict(ckpt))
    own = model.state_dict()
    bad = [f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
           for k, v in sd.items() if k in own and own[k].shape != v.shape]
    if bad:
        raise ValueError(f'{filename}: shape mismatch for ' + '; '.join(bad))
    result = model.load_state_dict(sd, strict=False)
    report = dict(missing=list(result.missing_keys), unexpected=list(result.unexpected_keys))
    msg = (f'loaded pre-training checkpoint {filename}: {len(sd)} tensors; missing '
           f'{report["missing"]}; unexpected {report["unexpected"]}')
    if strict and (report['missing'] or report['unexpected']):
        raise KeyError(msg)
    logger.info(msg)
    return report


__all__ = ['hf_to_official_pretrain', 'official_to_hf_pretrain', 'to_pretrainer_keys',
           'load_pretrain_checkpoint', 'is_hf_pretrain']
