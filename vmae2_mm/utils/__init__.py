from .checkpoint import load_backbone_checkpoint, to_backbone_keys, unwrap_state_dict
from .compat import apply_compat_patches

__all__ = ['apply_compat_patches', 'load_backbone_checkpoint', 'to_backbone_keys',
           'unwrap_state_dict']
