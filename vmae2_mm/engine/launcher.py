"""Helpers shared by the ``tools/`` entry points: distributed start-up and common options."""
import os

import torch
import torch.distributed as dist
from mmengine.config import Config


def setup_distributed(cfg: Config, launcher: str) -> None:
    """Prepare ``cfg`` for ``launcher`` and start a gloo process group on CUDA-less machines.

    mmengine 0.10.7's ``pytorch`` launcher calls ``torch.cuda.set_device`` unconditionally and
    dies without CUDA. When CUDA is unavailable we create the gloo process group here, before
    the Runner is built (the Runner then skips ``init_dist``), and make DDP wrap the model
    without ``device_ids``. With CUDA, mmengine's own NCCL path is used unchanged.
    """
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise ValueError(f'launcher {launcher!r} needs CUDA here; on CPU use torchrun with '
                         "--launcher pytorch (tools/dist_train.sh)")
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None)
    if not dist.is_initialized():
        dist.init_process_group('gloo', rank=int(os.environ['RANK']),
                                world_size=int(os.environ['WORLD_SIZE']))


def enable_amp(cfg: Config) -> None:
    """Mixed precision for ``--amp``: mmengine ``AmpOptimWrapper`` (fp16 + dynamic loss scale)
    on CUDA, our bf16 ``AutocastOptimWrapper`` elsewhere."""
    optim_wrapper = cfg.optim_wrapper
    current = optim_wrapper.get('type', 'OptimWrapper')
    if current in ('AmpOptimWrapper', 'AutocastOptimWrapper'):
        return
    if current != 'OptimWrapper':
        raise ValueError(f'--amp only converts OptimWrapper, but the config uses {current}')
    if torch.cuda.is_available():
        optim_wrapper.type = 'AmpOptimWrapper'
        optim_wrapper.loss_scale = 'dynamic'
    else:
        optim_wrapper.type = 'AutocastOptimWrapper'
        optim_wrapper.dtype = 'bfloat16'
