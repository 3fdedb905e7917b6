"""RNGStateHook: per-(seed, epoch) random streams make an epoch-checkpoint resume exact.

A real mmengine Runner on a toy regression task whose randomness is drawn exactly where
VideoMAE's is: augmentation from numpy's global RNG in the main process (``num_workers=0``) or
in dataloader workers, dropout from torch's RNG. Run A trains 4 epochs; run B resumes from A's
epoch-2 checkpoint in a fresh Runner (a fresh process, as far as RNGs go: they are reseeded by
the Runner) and trains to epoch 4.
"""
import glob
import os.path as osp
import random
from functools import partial

import numpy as np
import pytest
import torch
from mmengine.dataset import worker_init_fn as mmengine_worker_init_fn
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

from vmae2_mm.engine.hooks.rng_state_hook import (RNG_SCHEME, RNGStateHook, epoch_seeds,
                                                  seed_global_rngs)

EPOCHS, RESUME_AT, SEED = 4, 2, 7


class NoisyPoints(Dataset):
    """12 points [4] with numpy-global-RNG noise added on every read (an augmentation)."""

    def __len__(self):
        return 12

    def __getitem__(self, idx):
        x = np.full(4, idx / 12.) + np.random.randn(4) * 0.1
        return dict(inputs=torch.tensor(x, dtype=torch.float32),
                    target=torch.tensor(float(idx % 3)), idx=idx)


class DropoutRegressor(BaseModel):
    """Linear regressor behind dropout (torch RNG), loss = MSE."""

    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(4, 1)

    def forward(self, inputs, target=None, idx=None, mode='tensor'):
        out = self.fc(self.drop(torch.stack(inputs))).squeeze(-1)  # [B]
        if mode == 'loss':
            return dict(loss=((out - torch.stack(target)) ** 2).mean())
        return out


class RecordBatches(Hook):
    """Keep every iteration's inputs [B, 4] (in memory) to compare runs batch by batch, and
    each epoch's augmentation noise (inputs minus the clean point)."""

    priority = 'LOWEST'

    def __init__(self):
        self.batches = {}
        self.noise = {}

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        x = torch.stack(data_batch['inputs']).clone()
        self.batches[runner.iter] = x
        clean = torch.tensor(data_batch['idx'], dtype=torch.float32)[:, None] / 12.
        self.noise.setdefault(runner.epoch, []).append(x - clean)

    def epoch_noise(self, epoch):
        """All noise vectors drawn in ``epoch``, sorted (order-free), [12, 4]."""
        noise = torch.cat(self.noise[epoch])
        return noise[noise[:, 0].argsort()]


def _runner(work_dir, name, num_workers, with_hook, resume_from=None, seed=SEED,
            persistent=False):
    hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=-1),
                 logger=dict(type='LoggerHook', interval=1))
    if with_hook:
        hooks['rng_state'] = RNGStateHook()
    record = RecordBatches()
    runner = Runner(
        model=DropoutRegressor(), work_dir=str(work_dir), experiment_name=name,
        train_dataloader=dict(dataset=NoisyPoints(), batch_size=4, num_workers=num_workers,
                              persistent_workers=persistent,
                              sampler=dict(type='DefaultSampler', shuffle=True),
                              collate_fn=dict(type='pseudo_collate')),
        train_cfg=dict(by_epoch=True, max_epochs=EPOCHS),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.05)),
        default_hooks=hooks, custom_hooks=[record],
        randomness=dict(seed=seed, deterministic=True),
        resume=resume_from is not None, load_from=resume_from)
    return runner, record


def _train_and_resume(tmp_path, tag, num_workers, with_hook, seed=SEED):
    full, full_rec = _runner(tmp_path / 'full', f'{tag}_full', num_workers, with_hook, seed=seed)
    full.train()
    ckpt = str(tmp_path / 'full' / f'epoch_{RESUME_AT}.pth')
    resumed, resumed_rec = _runner(tmp_path / 'resumed', f'{tag}_resumed', num_workers,
                                   with_hook, resume_from=ckpt, seed=seed)
    resumed.train()
    return full, full_rec, resumed, resumed_rec


@pytest.mark.parametrize('num_workers,seed', [(0, SEED), (2, SEED), (0, None)])
def test_resume_from_epoch_checkpoint_is_exact(tmp_path, num_workers, seed):
    """seed=None: mmengine draws a seed per process; the resume takes the checkpoint's seed,
    and the hook puts back the sampler's shuffle seed drawn by the first process."""
    full, full_rec, resumed, resumed_rec = _train_and_resume(
        tmp_path, f'exact{num_workers}{seed}', num_workers, with_hook=True, seed=seed)
    per_epoch = 3
    assert sorted(resumed_rec.batches) == list(range(RESUME_AT * per_epoch, EPOCHS * per_epoch))
    for it, batch in resumed_rec.batches.items():
        assert torch.equal(batch, full_rec.batches[it]), it
    for name, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    assert resumed.seed == full.seed
    assert resumed.train_dataloader.sampler.seed == full.train_dataloader.sampler.seed
    # the checkpoint records the scheme
    ckpt = torch.load(osp.join(str(tmp_path / 'full'), f'epoch_{RESUME_AT}.pth'),
                      map_location='cpu', weights_only=False)
    assert ckpt['meta']['rng_scheme'] == RNG_SCHEME
    # fresh noise every epoch (mmengine alone repeats a worker's stream each epoch, below)
    assert not torch.allclose(full_rec.epoch_noise(1), full_rec.epoch_noise(2))


def test_without_hook_the_resume_diverges(tmp_path):
    """Negative control: mmengine alone seeds once per process, so the resumed run's main-process
    augmentation differs from the uninterrupted run's (what the hook fixes)."""
    full, full_rec, resumed, resumed_rec = _train_and_resume(tmp_path, 'nohook', 0,
                                                             with_hook=False)
    first = RESUME_AT * 3
    assert not torch.equal(resumed_rec.batches[first], full_rec.batches[first])
    assert any(not torch.equal(v, resumed.model.state_dict()[k])
               for k, v in full.model.state_dict().items())


def test_without_hook_workers_repeat_their_noise_every_epoch(tmp_path):
    """Negative control for the worker reseeding: mmengine's worker_init_fn seeds each worker
    with the same seed in every epoch, so every epoch draws the same set of noise vectors."""
    runner, record = _runner(tmp_path, 'nohook_workers', 2, with_hook=False)
    runner.train()
    assert torch.allclose(record.epoch_noise(1), record.epoch_noise(2), atol=1e-6)


def test_state_at_epoch_start_round_trips_through_resume(tmp_path):
    """Each epoch starts from the RNG state derived from (seed, epoch), in both runs."""
    states = {}

    class Snapshot(Hook):
        priority = 'LOW'  # after RNGStateHook (VERY_HIGH)

        def __init__(self, tag):
            self.tag = tag

        def before_train_epoch(self, runner):
            states[(self.tag, runner.epoch)] = (random.getstate(), np.random.get_state()[1].copy(),
                                                torch.get_rng_state().clone())

    for tag, resume_from in (('full', None), ('resumed', str(tmp_path / 'full' / 'epoch_1.pth'))):
        runner, _ = _runner(tmp_path / tag, f'roundtrip_{tag}', 0, True, resume_from)
        runner.register_hook(Snapshot(tag))
        runner.train()
    for epoch in range(1, EPOCHS):
        py, npy, tch = states[('full', epoch)]
        py2, npy2, tch2 = states[('resumed', epoch)]
        assert py == py2 and np.array_equal(npy, npy2) and torch.equal(tch, tch2), epoch
        seed_global_rngs(epoch_seeds(SEED, epoch)[0])
        assert torch.equal(torch.get_rng_state(), tch) and random.getstate() == py
    assert ('resumed', 0) not in states


def test_epoch_seeds_are_deterministic_independent_and_in_range():
    seeds = [epoch_seeds(SEED, e) for e in range(50)]
    assert seeds == [epoch_seeds(SEED, e) for e in range(50)]
    flat = [s for pair in seeds for s in pair]
    assert len(set(flat)) == len(flat)  # no epoch/role shares a stream
    assert all(0 <= s < 2 ** 31 for s in flat)
    assert epoch_seeds(SEED + 1, 0) != epoch_seeds(SEED, 0)
    with pytest.raises(ValueError, match='non-negative'):
        epoch_seeds(None, 0)
    with pytest.raises(ValueError, match='non-negative'):
        epoch_seeds(0, -1)


def test_worker_seed_follows_the_epoch(tmp_path):
    runner, _ = _runner(tmp_path, 'workers', 2, True)
    hook = next(h for h in runner.hooks if isinstance(h, RNGStateHook))
    loader = runner.train_dataloader
    assert isinstance(loader.worker_init_fn, partial)
    assert loader.worker_init_fn.func is mmengine_worker_init_fn
    hook.before_train_epoch(runner)  # epoch 0: mmengine's own worker seeding
    assert loader.worker_init_fn.keywords['seed'] == SEED
    for epoch in (1, 3):
        runner.train_loop._epoch = epoch
        hook.before_train_epoch(runner)
        assert loader.worker_init_fn.keywords['seed'] == epoch_seeds(SEED, epoch)[1]
        assert loader.worker_init_fn.keywords['num_workers'] == 2


def test_warns_on_mid_epoch_and_foreign_checkpoints(tmp_path):
    full, _ = _runner(tmp_path / 'full', 'warn_full', 0, True)
    full.train()
    ckpt = torch.load(str(tmp_path / 'full' / 'epoch_2.pth'), map_location='cpu',
                      weights_only=False)
    ckpt['meta']['iter'] += 1  # as if saved by an iteration-based CheckpointHook mid-epoch
    del ckpt['meta']['rng_scheme']  # as if written without the hook
    torch.save(ckpt, str(tmp_path / 'odd.pth'))
    resumed, _ = _runner(tmp_path / 'resumed', 'warn_resumed', 0, True,
                         resume_from=str(tmp_path / 'odd.pth'))
    resumed.train()
    (log,) = glob.glob(str(tmp_path / 'resumed' / '*' / '*.log'))
    text = open(log).read()
    assert 'resuming a mid-epoch checkpoint (iter 7, epoch 2, 3 iterations per epoch)' in text
    assert "written without rng_scheme='seed-epoch-v1'" in text


def test_logs_that_persistent_workers_break_exactness(tmp_path):
    runner, _ = _runner(tmp_path, 'persistent', 2, True, persistent=True)
    hook = next(h for h in runner.hooks if isinstance(h, RNGStateHook))
    hook.before_train(runner)
    (log,) = glob.glob(str(tmp_path / '*' / '*.log'))
    assert 'set persistent_workers=False for an exact --resume' in open(log).read()


def test_bad_argument():
    with pytest.raises(TypeError, match='reseed_workers must be a bool'):
        RNGStateHook(reseed_workers='yes')
