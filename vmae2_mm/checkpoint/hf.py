"""The one Hugging Face ``transformers`` VideoMAE key map (both directions).

``VideoMAEModel`` / ``VideoMAEForVideoClassification`` / ``VideoMAEForPreTraining`` (split
``query``/``key``/``value``; v5 ``query.bias``/``value.bias`` or v4 ``q_bias``/``v_bias``;
``classifier``; ``videomae.layernorm``) <-> the official VideoMAE V2 layout. Used by the
backbone / recognizer loaders, the pre-training loader, ``tools/convert_checkpoint.py`` and
``tools/export_hf.py``; every failure is :class:`HFLayoutError`.
"""
import re
from collections import OrderedDict
from typing import Dict, Optional

import torch
from torch import Tensor


class HFLayoutError(KeyError, ValueError):
    """An HF state dict key or tensor with no VideoMAE V2 equivalent."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ''


# HF transformers -> official
_HF_LAYER = re.compile(r'^(?:videomae\.)?encoder\.layer\.(\d+)\.(.+)$')
_HF_DEC_LAYER = re.compile(r'^decoder\.decoder_layers\.(\d+)\.(.+)$')
_HF_BLOCK_MAP = {
    'attention.output.dense.': 'attn.proj.',
    'intermediate.dense.': 'mlp.fc1.',
    'output.dense.': 'mlp.fc2.',
    'layernorm_before.': 'norm1.',
    'layernorm_after.': 'norm2.',
    'attention.attention.q_bias': 'attn.q_bias',
    'attention.attention.v_bias': 'attn.v_bias',
    'attention.attention.query.bias': 'attn.q_bias',
    'attention.attention.value.bias': 'attn.v_bias',
}


def _hf_block(rest: str, prefix: str, v: Tensor, qkv: dict, out: dict) -> Optional[str]:
    """Map one HF layer sub-key; q/k/v weights are collected in ``qkv`` and fused later."""
    m = re.match(r'attention\.attention\.(query|key|value)\.weight$', rest)
    if m:
        qkv.setdefault(prefix, {})[m.group(1)] = v
        return None
    if rest == 'attention.attention.key.bias':
        if v.abs().max() > 0:
            raise HFLayoutError(f'{prefix}: HF key.bias is non-zero, but VideoMAE (V2) attention has '
                             'no k bias; this checkpoint is not a VideoMAE model')
        return None
    for src, dst in _HF_BLOCK_MAP.items():
        if rest.startswith(src):
            out[prefix + dst + rest[len(src):]] = v
            return None
    return rest


def hf_to_official(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """HF ``VideoMAE*`` keys -> official keys (pre-training encoders get ``encoder.``).

    ``VideoMAEForPreTraining`` becomes the official pre-training layout (``encoder.*``,
    ``encoder.norm``, ``decoder.blocks.*``, ...); the classifier models become the fine-tune
    layout (``fc_norm``, ``head``; ``videomae.layernorm`` -> ``norm``).
    """
    pretrain = any(k.startswith(('decoder.', 'encoder_to_decoder', 'mask_token'))
                   for k in state_dict)
    enc = 'encoder.' if pretrain else ''
    out, qkv, unknown = OrderedDict(), OrderedDict(), []
    for k, v in state_dict.items():
        m = _HF_LAYER.match(k)
        if m:
            rest = _hf_block(m.group(2), f'{enc}blocks.{m.group(1)}.', v, qkv, out)
            if rest is not None:
                unknown.append(k)
            continue
        m = _HF_DEC_LAYER.match(k)
        if m:
            rest = _hf_block(m.group(2), f'decoder.blocks.{m.group(1)}.', v, qkv, out)
            if rest is not None:
                unknown.append(k)
            continue
        base = k[len('videomae.'):] if k.startswith('videomae.') else k
        if base.startswith('embeddings.patch_embeddings.projection.'):
            out[enc + 'patch_embed.proj.' + base.rsplit('.', 1)[1]] = v
        elif base.startswith('embeddings.position_embeddings'):
            out[enc + 'pos_embed'] = v
        elif k == 'position_embeddings':
            continue  # VideoMAEForPreTraining's copy of the fixed sinusoid
        elif base.startswith('layernorm.'):
            out[enc + 'norm.' + base.split('.', 1)[1]] = v
        elif k.startswith('classifier.'):
            out['head.' + k.split('.', 1)[1]] = v
        elif k.startswith(('fc_norm.', 'decoder.norm.', 'decoder.head.', 'encoder_to_decoder.',
                           'mask_token')):
            out[k] = v
        else:
            unknown.append(k)
    if unknown:
        raise HFLayoutError(f'HF VideoMAE checkpoint has keys with no VideoMAE V2 equivalent: '
                         f'{unknown[:10]}')
    for prefix, parts in qkv.items():
        if set(parts) != {'query', 'key', 'value'}:
            raise HFLayoutError(f'{prefix}: HF attention needs query, key and value weights, found '
                             f'{sorted(parts)}')
        out[prefix + 'attn.qkv.weight'] = torch.cat(
            [parts['query'], parts['key'], parts['value']], dim=0)
    return out



# official sub-key of one block -> HF sub-key (qkv is split separately)
_BLOCK_TO_HF = OrderedDict([
    ('norm1.', 'layernorm_before.'),
    ('norm2.', 'layernorm_after.'),
    ('attn.proj.', 'attention.output.dense.'),
    ('mlp.fc1.', 'intermediate.dense.'),
    ('mlp.fc2.', 'output.dense.'),
    ('attn.q_bias', 'attention.attention.query.bias'),
    ('attn.v_bias', 'attention.attention.value.bias'),
])
_SHARED = ('mask_token', 'encoder_to_decoder.weight', 'decoder.norm.', 'decoder.head.')


def _rename_block_key(sub: str, table: Dict[str, str]) -> Optional[str]:
    for src, dst in table.items():
        if sub.startswith(src):
            return dst + sub[len(src):]
    return None


def official_to_hf(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
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
                raise HFLayoutError(f'no HF name for official block key {k!r}')
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
            raise HFLayoutError(f'no HF name for official pre-training key {k!r}')
    return out


__all__ = ['HFLayoutError', 'hf_to_official', 'official_to_hf']
