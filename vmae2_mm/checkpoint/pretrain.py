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
import re
from collections import OrderedDict
from typing import Dict, Optional

import torch
from torch import Tensor, nn

from .videomaev2 import strip_prefixes, unwrap_state_dict

# official sub-key of one block -> HF sub-key (qkv is split/concatenated separately)
_BLOCK_TO_HF = OrderedDict([
    ('norm1.', 'layernorm_before.'),
    ('norm2.', 'layernorm_after.'),
    ('attn.proj.', 'attention.output.dense.'),
    ('mlp.fc1.', 'intermediate.dense.'),
    ('mlp.fc2.', 'output.dense.'),
    ('attn.q_bias', 'attention.attention.query.bias'),
    ('attn.v_bias', 'attention.attention.value.bias'),
])
_HF_TO_BLOCK = OrderedDict((v, k) for k, v in _BLOCK_TO_HF.items())
# transformers v4 kept separate bias parameters inside the attention module
_HF_TO_BLOCK['attention.attention.q_bias'] = 'attn.q_bias'
_HF_TO_BLOCK['attention.attention.v_bias'] = 'attn.v_bias'

_SHARED = ('mask_token', 'encoder_to_decoder.weight', 'decoder.norm.', 'decoder.head.')


def is_hf_pretrain(state_dict: Dict[str, Tensor]) -> bool:
    """True for HF ``VideoMAEForPreTraining`` keys (``videomae.*``)."""
    return any(k.startswith('videomae.') for k in state_dict)


def _rename_block_key(sub: str, table: Dict[str, str]) -> Optional[str]:
    for src, dst in table.items():
        if sub.startswith(src):
            return dst + sub[len(src):]
    return None


def hf_to_official_pretrain(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """HF ``VideoMAEForPreTraining`` state dict -> official pre-training keys.

    q/k/v weights are concatenated into ``qkv.weight``; HF's ``key.bias`` (if any) must be zero
    because the official attention has no k bias.

    Raises:
        KeyError: on a key the map does not know, or a non-zero ``key.bias``.
    """
    out, qkv = OrderedDict(), {}
    layer = re.compile(r'^(videomae\.encoder\.layer|decoder\.decoder_layers)\.(\d+)\.(.+)$')
    for k, v in state_dict.items():
        m = layer.match(k)
        if m:
            prefix = 'encoder.blocks' if m.group(1).startswith('videomae') else 'decoder.blocks'
            base, sub = f'{prefix}.{m.group(2)}.', m.group(3)
            qm = re.match(r'^attention\.attention\.(query|key|value)\.weight$', sub)
            if qm:
                qkv.setdefault(base, {})[qm.group(1)] = v
                continue
            if sub == 'attention.attention.key.bias':
                if torch.count_nonzero(v):
                    raise KeyError(f'{k}: the official attention has no k bias but this one is '
                                   'non-zero')
                continue
            new = _rename_block_key(sub, _HF_TO_BLOCK)
            if new is None:
                raise KeyError(f'unknown HF VideoMAE block key {k!r}')
            out[base + new] = v
        elif k.startswith('videomae.embeddings.patch_embeddings.projection.'):
            out['encoder.patch_embed.proj.' + k.rsplit('.', 1)[1]] = v
        elif k.startswith('videomae.layernorm.'):
            out['encoder.norm.' + k.rsplit('.', 1)[1]] = v
        elif k.startswith(_SHARED):
            out[k] = v
        elif k.startswith('videomae.embeddings.position_embeddings') or k == 'position_embeddings':
            continue  # fixed sinusoid, rebuilt by the model
        else:
            raise KeyError(f'unknown HF VideoMAE pre-training key {k!r}')
    for base, parts in qkv.items():
        if set(parts) != {'query', 'key', 'value'}:
            raise KeyError(f'{base}: HF checkpoint lacks one of query/key/value weights')
        out[base + 'attn.qkv.weight'] = torch.cat(
            [parts['query'], parts['key'], parts['value']], dim=0)
    return out


def official_to_hf_pretrain(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Official pre-training keys -> HF ``VideoMAEForPreTraining`` (transformers v5) keys.

    ``qkv.weight`` [3C, C] is split into query/key/value; ``key.bias`` is not emitted (HF v5
    builds the key projection without a bias).
    """
    out = OrderedDict()
    layer = re.compile(r'^(encoder|decoder)\.blocks\.(\d+)\.(.+)$')
    for k, v in state_dict.items():
        m = layer.match(k)
        if m:
            prefix = ('videomae.encoder.layer' if m.group(1) == 'encoder'
                      else 'decoder.decoder_layers')
            base, sub = f'{prefix}.{m.group(2)}.', m.group(3)
            if sub == 'attn.qkv.weight':
                for name, part in zip(('query', 'key', 'value'), v.chunk(3, dim=0)):
                    out[f'{base}attention.attention.{name}.weight'] = part
                continue
            new = _rename_block_key(sub, _BLOCK_TO_HF)
            if new is None:
                raise KeyError(f'no HF name for official block key {k!r}')
            out[base + new] = v
        elif k.startswith('encoder.patch_embed.proj.'):
            out['videomae.embeddings.patch_embeddings.projection.' + k.rsplit('.', 1)[1]] = v
        elif k.startswith('encoder.norm.'):
            out['videomae.layernorm.' + k.rsplit('.', 1)[1]] = v
        elif k.startswith(_SHARED):
            out[k] = v
        elif k.endswith('pos_embed'):
            continue
        else:
            raise KeyError(f'no HF name for official pre-training key {k!r}')
    return out


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
    ckpt = torch.load(filename, map_location='cpu', weights_only=False)
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
