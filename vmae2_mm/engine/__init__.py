from .autocast_optim_wrapper import AutocastOptimWrapper
from .fsdp_optim_wrapper import FSDPOptimWrapper
from .fsdp_policies import videomaev2_block_wrap_policy, videomaev2_is_block
from .grouped_fsdp_strategy import GroupedFSDPStrategy
from .hooks import RNGStateHook
from .launcher import (add_runner_args, build_runner, enable_amp, load_runner_config,
                       parse_runner_args, setup_distributed)
from .optimizers import VideoMAEv2LayerDecayOptimWrapperConstructor

__all__ = ['AutocastOptimWrapper', 'FSDPOptimWrapper', 'GroupedFSDPStrategy', 'build_runner',
           'videomaev2_block_wrap_policy', 'videomaev2_is_block',
           'RNGStateHook', 'enable_amp', 'setup_distributed', 'add_runner_args',
           'parse_runner_args', 'load_runner_config',
           'VideoMAEv2LayerDecayOptimWrapperConstructor']
