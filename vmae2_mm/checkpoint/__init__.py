"""Checkpoint reading, key maps (official / HF / mmaction2 / ActionFormer) and label maps.

* :mod:`.io`: the one reader (weights-only torch pickles, safetensors, HF folders), also
  mmengine's local-file ``CheckpointLoader`` scheme (registered on import).
* :mod:`.report`: the one missing / unexpected / mis-shaped key report of every loader.
* :mod:`.videomaev2`: layouts (official, HF, mmaction2) -> canonical ``VideoMAEv2ViT`` keys.
* :mod:`.foreign`: ``load_from`` of foreign layouts and strict checking for mmengine loading.
* :mod:`.pretrain`, :mod:`.actionformer`, :mod:`.label_maps`.

Imports nothing from ``vmae2_mm.models``: models call into this package, never the reverse.
"""
from .io import CheckpointReadError, read_checkpoint, register_mmengine_loader
from .report import CheckpointMismatchError
from .videomaev2 import load_backbone_checkpoint, to_backbone_keys, unwrap_state_dict

register_mmengine_loader()

__all__ = ['load_backbone_checkpoint', 'to_backbone_keys', 'unwrap_state_dict',
           'read_checkpoint', 'CheckpointReadError', 'CheckpointMismatchError',
           'register_mmengine_loader']
