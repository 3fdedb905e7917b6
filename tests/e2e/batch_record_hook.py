"""Test helper imported by the kill/resume e2e configs (``custom_imports``): records what every
training iteration consumed, so two runs can be compared batch by batch.

One JSON line per iteration in ``{work_dir}/batches.jsonl`` (appended, flushed, so a SIGKILLed
run keeps its lines): process id, iteration, epoch, a sha1 per sample of the augmented clip
(uint8 [C, T, H, W] after the pipeline, so data order and augmentation) and of its masks
(``enc_hidden`` / ``dec_kept`` when present), and sha1s of the main process's torch and numpy
RNG states at the start of the iteration (drop path draws from them).
"""
import hashlib
import json
import os
import os.path as osp

import numpy as np
import torch
from mmaction.registry import HOOKS
from mmengine.hooks import Hook

RECORD_FILE = 'batches.jsonl'
MASK_KEYS = ('enc_hidden', 'dec_kept')


def _sha1(*arrays) -> str:
    h = hashlib.sha1()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


@HOOKS.register_module()
class BatchRecordHook(Hook):
    """Append one record per train iteration (see module docstring)."""

    priority = 'LOWEST'  # after RNGStateHook and every other before_train_iter

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        samples = []
        for clip, sample in zip(data_batch['inputs'], data_batch['data_samples']):
            masks = [np.asarray(sample.get(k)) for k in MASK_KEYS if k in sample]
            samples.append(dict(clip=_sha1(clip.numpy()), masks=_sha1(*masks) if masks else None))
        record = dict(pid=os.getpid(), iter=runner.iter, epoch=runner.epoch, samples=samples,
                      torch_rng=_sha1(torch.get_rng_state().numpy()),
                      numpy_rng=_sha1(np.random.get_state()[1]))
        with open(osp.join(runner.work_dir, RECORD_FILE), 'a') as f:
            f.write(json.dumps(record) + '\n')
