from .autocast_optim_wrapper import AutocastOptimWrapper
from .launcher import enable_amp, setup_distributed

__all__ = ['AutocastOptimWrapper', 'enable_amp', 'setup_distributed']
