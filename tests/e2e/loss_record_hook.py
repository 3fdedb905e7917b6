"""Test helper imported by the distributed e2e configs (``custom_imports``): every rank appends
one JSON line per training iteration to ``{work_dir}/losses_rank{rank}.jsonl`` with its world
size, the iteration, this rank's (local-batch mean) loss, the logged gradient norm and a sha1
per sample of the clip it trained on (to check which samples each rank saw)."""
import hashlib
import json
import os.path as osp

from mmaction.registry import HOOKS
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook


@HOOKS.register_module()
class LossRecordHook(Hook):
    """Append one record per train iteration and rank (see module docstring)."""

    priority = 'LOWEST'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        clips = [hashlib.sha1(clip.numpy().tobytes()).hexdigest()[:16]
                 for clip in data_batch['inputs']]
        # DeepSpeed clips inside its engine and logs no gradient norm
        scalars = runner.message_hub.log_scalars
        grad_norm = scalars.get('train/grad_norm')
        record = dict(rank=get_rank(), world_size=get_world_size(), iter=runner.iter,
                      loss=float(outputs['loss']), clips=clips,
                      grad_norm=None if grad_norm is None else float(grad_norm.current()))
        with open(osp.join(runner.work_dir, f'losses_rank{get_rank()}.jsonl'), 'a') as f:
            f.write(json.dumps(record) + '\n')
