from .foreign_checkpoint_hook import ForeignCheckpointHook
from .non_finite_check_hook import NonFiniteCheckHook
from .rng_state_hook import RNGStateHook

__all__ = ['ForeignCheckpointHook', 'NonFiniteCheckHook', 'RNGStateHook']
