from .autocast_optim_wrapper import AutocastOptimWrapper
from .fsdp_optim_wrapper import FSDPOptimWrapper
from .fsdp_policies import videomaev2_block_wrap_policy, videomaev2_is_block
from .grouped_fsdp_strategy import GroupedFSDPStrategy
from .hooks import RNGStateHook
from .launcher import build_runner, enable_amp, setup_distributed
from .optimizers import VideoMAEv2LayerDecayOptimWrapperConstructor

__all__ = ['AutocastOptimWrapper', 'FSDPOptimWrapper', 'GroupedFSDPStrategy', 'build_runner',
           'videomaev2_block_wrap_policy', 'videomaev2_is_block',
           'RNGStateHook', 'enable_amp', 'setup_distributed',
           'VideoMAEv2LayerDecayOptimWrapperConstructor']
