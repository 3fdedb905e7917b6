"""Checkpoint reading, key maps (official / HF / mmaction2 / ActionFormer) and label maps.

Imports nothing from ``vmae2_mm.models``: models call into this package, never the reverse.
"""
from .videomaev2 import load_backbone_checkpoint, to_backbone_keys, unwrap_state_dict

__all__ = ['load_backbone_checkpoint', 'to_backbone_keys', 'unwrap_state_dict']
