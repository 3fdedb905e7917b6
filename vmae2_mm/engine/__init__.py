from .autocast_optim_wrapper import AutocastOptimWrapper
from .launcher import enable_amp, setup_distributed
from .optimizers import VideoMAEv2LayerDecayOptimWrapperConstructor

__all__ = ['AutocastOptimWrapper', 'enable_amp', 'setup_distributed',
           'VideoMAEv2LayerDecayOptimWrapperConstructor']
