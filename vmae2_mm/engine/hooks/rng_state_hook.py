"""Per-epoch random streams, so that ``--resume`` from an epoch checkpoint continues exactly.

mmengine seeds the global RNGs once, when the Runner is built, and never again: epoch ``e`` of
an uninterrupted run draws from wherever epoch ``e-1`` (and the validation after it) left
python's ``random``, numpy's global RNG and torch's RNG, while a run resumed at epoch ``e``
draws from a freshly seeded state. mmengine does not store RNG states in checkpoints. So after
``--resume`` drop path, augmentation and masks drawn in the main process (``num_workers=0``)
differ from the uninterrupted run, and dataloader workers (reseeded by mmengine's
``worker_init_fn`` with the same ``seed + worker_id + num_workers * rank`` every epoch) repeat
identical random streams in every epoch.

:class:`RNGStateHook` makes each epoch's randomness a function of ``(seed, epoch)`` only:

* epoch 0 keeps the Runner's seeding (every run with the same seed starts it alike, and no
  resume starts there), so a run's first epoch is what plain mmengine draws;
* from epoch 1 on, ``before_train_epoch`` reseeds ``random``, ``numpy.random`` and torch (CPU
  and CUDA) in the main process from ``SeedSequence([seed, epoch, 0])`` (drop path,
  ``num_workers=0`` pipelines, DataLoader base seeds);
* it also gives the train dataloader's mmengine ``worker_init_fn`` a per-epoch seed from
  ``SeedSequence([seed, epoch, 1])`` (worker ``w`` of rank ``r`` gets that seed
  ``+ w + num_workers * r``, mmengine's offsets), so workers draw fresh but reproducible
  augmentations and masks in every epoch. Workers are started per epoch only without
  ``persistent_workers``; persistent workers keep the seed of the epoch they were started in and
  their streams run on across epochs, which a resumed run cannot reproduce (logged at start).
* ``seed`` is ``runner.seed`` (the checkpoint's seed after a resume, mmengine's rule; it already
  includes the rank offset under ``diff_rank_seed``).
* the train sampler's shuffle seed is saved in the checkpoint (``meta['sampler_seed']``) and
  put back on resume. mmengine's ``DefaultSampler(seed=None)`` draws it from numpy when the
  dataloader is built, which happens before the resume restores the run's seed: without a
  fixed ``randomness.seed`` a resumed run would otherwise shuffle every later epoch
  differently (its order per epoch is ``seed + epoch``, set by ``DistSamplerSeedHook``).

Saving the RNG states in the checkpoint instead would not be exact: the state at save time is
not the state the next epoch starts from (validation, its dataloader and hooks after the
checkpoint hook draw in between, and only in the uninterrupted run). Deriving the state from
``(seed, epoch)`` needs no RNG state; the checkpoint records the scheme under
``meta['rng_scheme']`` so a resume can warn about checkpoints written without it.

Exactness needs epoch-end checkpoints (``CheckpointHook(by_epoch=True)``, the default):
mmengine's ``EpochBasedTrainLoop`` has no mid-epoch fast-forward and replays a partly trained
epoch from its first batch, so resuming a mid-epoch checkpoint is warned about and not exact.
Also needed for bitwise equality: ``randomness=dict(seed=..., deterministic=True)`` and the
same thread count in both runs (CPU reductions split work by threads).
"""
import logging
import random
from functools import partial
from typing import Optional, Tuple

import numpy as np
import torch
from mmaction.registry import HOOKS
from mmengine.dataset import worker_init_fn as mmengine_worker_init_fn
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop
from mmengine.runner.base_loop import BaseLoop

RNG_SCHEME = 'seed-epoch-v1'
_MAIN, _WORKERS = 0, 1


def epoch_seeds(seed: int, epoch: int) -> Tuple[int, int]:
    """Seeds of one epoch: ``(main process, dataloader workers)``, both in [0, 2**31).

    Derived with numpy's ``SeedSequence`` so streams of different epochs and of the main
    process / workers are statistically independent (not ``seed + epoch``, which would make
    worker ``w`` of epoch ``e`` share a stream with worker ``w - 1`` of epoch ``e + 1``).
    ``2**31`` leaves room for mmengine's ``+ worker_id + num_workers * rank`` below numpy's
    ``2**32`` limit.

    Args:
        seed (int): The run's seed (``runner.seed``).
        epoch (int): 0-based epoch index.

    Returns:
        tuple[int, int]: Main-process seed and base worker seed.
    """
    if seed is None or epoch is None or seed < 0 or epoch < 0:
        raise ValueError(f'epoch_seeds: seed and epoch must be non-negative ints, got '
                         f'seed={seed!r}, epoch={epoch!r}')
    return tuple(int(np.random.SeedSequence([seed, epoch, role]).generate_state(1)[0] >> 1)
                 for role in (_MAIN, _WORKERS))


def seed_global_rngs(seed: int) -> None:
    """Seed python's ``random``, numpy's global RNG and torch (CPU and all CUDA devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Reseed every random stream at each training epoch from ``(seed, epoch)``.

    See the module docstring for what it fixes and why. It runs first in ``before_train_epoch``
    (priority ``VERY_HIGH``), before any hook or the dataloader iterator draws. Set in
    ``configs/_base_/default_runtime.py`` as ``default_hooks.rng_state`` (mmengine's ``None``
    removes only its own default hooks, so a config that must drop it restates
    ``default_hooks`` with ``_delete_=True``). Epoch-based loops only: an
    ``IterBasedTrainLoop`` calls ``before_train_epoch`` once, at the start.

    Args:
        reseed_workers (bool): Also give the train dataloader's workers a per-epoch seed (only
            when the dataloader uses mmengine's default ``worker_init_fn``, i.e. a seed is set
            and no custom ``worker_init_fn``). Defaults to True.
    """

    priority = 'VERY_HIGH'

    def __init__(self, reseed_workers: bool = True) -> None:
        if not isinstance(reseed_workers, bool):
            raise TypeError(f'RNGStateHook: reseed_workers must be a bool, got '
                            f'{reseed_workers!r}')
        self.reseed_workers = reseed_workers
        self._resumed_meta: Optional[dict] = None

    def before_train(self, runner) -> None:
        loader = runner.train_dataloader
        if loader.num_workers > 0 and loader.persistent_workers:
            level = logging.WARNING if runner._resume else logging.INFO
            print_log('RNGStateHook: the train dataloader has persistent_workers=True, so its '
                      'workers keep one random stream across epochs and a resumed run restarts '
                      'it; set persistent_workers=False for an exact --resume',
                      logger='current', level=level)
        if self._resumed_meta is not None:
            self._check_resume_point(runner, self._resumed_meta)
            sampler_seed = self._resumed_meta.get('sampler_seed')
            sampler = getattr(loader, 'sampler', None)
            if sampler_seed is not None and hasattr(sampler, 'seed'):
                sampler.seed = sampler_seed
            self._resumed_meta = None

    def _check_resume_point(self, runner, meta: dict) -> None:
        if meta.get('rng_scheme') != RNG_SCHEME:
            print_log(f'RNGStateHook: the resumed checkpoint was written without '
                      f'rng_scheme={RNG_SCHEME!r} (found {meta.get("rng_scheme")!r}): its '
                      'epochs drew other random streams, so the continuation is not the run '
                      'that would have continued uninterrupted', logger='current',
                      level=logging.WARNING)
        loop = runner.train_loop
        if isinstance(loop, EpochBasedTrainLoop) and 'iter' in meta and 'epoch' in meta:
            per_epoch = len(loop.dataloader)
            if meta['iter'] != meta['epoch'] * per_epoch:
                print_log(f"RNGStateHook: resuming a mid-epoch checkpoint (iter {meta['iter']}, "
                          f"epoch {meta['epoch']}, {per_epoch} iterations per epoch): "
                          'EpochBasedTrainLoop replays this epoch from its first batch, so the '
                          'continuation is not exact; save checkpoints at epoch ends',
                          logger='current', level=logging.WARNING)

    def before_train_epoch(self, runner) -> None:
        if runner.epoch == 0:
            # no resume starts here: epoch 0 keeps the Runner's seeding, so plain mmengine runs
            # keep their first epoch (and, with persistent workers, their worker streams)
            return
        main_seed, worker_seed = epoch_seeds(runner.seed, runner.epoch)
        seed_global_rngs(main_seed)
        if self.reseed_workers:
            loader = runner.train_dataloader
            fn = loader.worker_init_fn
            if isinstance(fn, partial) and fn.func is mmengine_worker_init_fn:
                loader.worker_init_fn = partial(fn.func, *fn.args,
                                                **{**fn.keywords, 'seed': worker_seed})

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.setdefault('meta', {})
        meta['rng_scheme'] = RNG_SCHEME
        loop = runner._train_loop  # not built when saving outside training
        loader = loop.dataloader if isinstance(loop, BaseLoop) else None
        sampler_seed = getattr(getattr(loader, 'sampler', None), 'seed', None)
        if isinstance(sampler_seed, int):
            meta['sampler_seed'] = sampler_seed

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # only a resume continues a run; `load_from` fine-tuning starts a new one
        if runner._resume:
            self._resumed_meta = dict(checkpoint.get('meta', {}))


__all__ = ['RNGStateHook', 'epoch_seeds', 'seed_global_rngs', 'RNG_SCHEME']
