from .foreign_checkpoint_hook import ForeignCheckpointHook
from .rng_state_hook import RNGStateHook

__all__ = ['ForeignCheckpointHook', 'RNGStateHook']
