"""Resume after SIGKILL: ``tools/train.py`` is killed mid-run, restarted with ``--resume``, and
must end bitwise where an uninterrupted run ends.

Two runs per case on the same generated data, fixed seed, ``deterministic=True``, one thread:
(A) uninterrupted; (B) SIGKILLed right after an epoch checkpoint was written (before the end),
then ``--resume`` (the latest checkpoint in the work dir). Checked:

* B resumed from its last checkpoint: the log says so, and B's first resumed iteration is the
  checkpoint's iteration (no replayed or skipped batches);
* every iteration of B (before the kill and after the resume) consumed exactly A's batch: the
  same clips in the same order, the same augmentation and the same masks, from the same
  main-process RNG state (drop path is on);
* the final checkpoints are equal: model, EMA, optimizer state (AdamW moments, and step counts
  of the whole run, i.e. restored, not restarted), param schedulers.

Cases: the dual-masking pretrainer with two dataloader workers (masks and crops drawn in
workers; EMA via mmengine's EMAHook) and the tiny recognizer with ``num_workers=0`` (sampling
drawn in the main process) validating after every epoch, i.e. between the checkpoint and the
next epoch, which only the uninterrupted run does.
"""
import json
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import REPO_ROOT, run_python

pytestmark = pytest.mark.e2e

PT_CONFIG = (REPO_ROOT / 'configs/pretrain/videomaev2/'
             'vit-tiny-p16_videomaev2-tube90-cell50_1xb8-8x2x1-25e_synthetic-ramps.py')
REC_CONFIG = (REPO_ROOT / 'configs/recognition/videomaev2/'
              'vit-tiny-p8_scratch_1xb16-8x2x1-20e_synthetic-motion-32px.py')
EPOCHS = 4
KILL_AFTER_EPOCH = 2
# same thread count in every run: CPU reductions are split by thread
ENV = dict(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')

COMMON = f'''
custom_imports = dict(imports=['vmae2_mm', 'tests.e2e.batch_record_hook'],
                      allow_failed_imports=False)
custom_hooks = [dict(type='EMAHook', ema_type='ExponentialMovingAverage', momentum=0.05,
                     update_buffers=True),
                dict(type='BatchRecordHook')]
randomness = dict(seed=3, deterministic=True)
max_epochs = {EPOCHS}
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=-1),
                     logger=dict(interval=1))
'''


def pretrain_config(data):
    # 12 clips x 2 views, batch 4 clips -> 3 iterations per epoch; 2 workers started per epoch
    return f'''_base_ = [{str(PT_CONFIG)!r}]
{COMMON}
model = dict(encoder=dict(drop_path_rate=0.2))
train_dataloader = dict(batch_size=4, num_workers=2, persistent_workers=False,
                        dataset=dict(sources=[dict(ann_file={data + '/train.txt'!r},
                                                   data_prefix={data!r})]))
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min_ratio=0.01,
                        by_epoch=True, begin=0, end=max_epochs, convert_to_iter_based=True)]
'''


def recognition_config(data):
    # 8 clips, batch 4 -> 2 iterations per epoch; validation after every epoch
    return f'''_base_ = [{str(REC_CONFIG)!r}]
{COMMON}
model = dict(backbone=dict(drop_path_rate=0.2))
default_hooks.update(checkpoint=dict(interval=1, max_keep_ckpts=-1, save_best=None))
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=dict(ann_file={data + '/train.txt'!r},
                                     data_prefix=dict(video={data!r})))
val_dataloader = dict(dataset=dict(ann_file={data + '/val.txt'!r},
                                   data_prefix=dict(video={data!r})))
train_cfg = dict(max_epochs=max_epochs, val_begin=1, val_interval=1)
param_scheduler = [dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=1e-6,
                        by_epoch=True, begin=0, end=max_epochs, convert_to_iter_based=True)]
'''


def records(work_dir):
    with open(osp.join(work_dir, 'batches.jsonl')) as f:
        return [json.loads(line) for line in f if line.strip()]


def last_checkpoint(work_dir):
    path = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return f.read().strip() or None


def train_and_kill(config, work_dir, kill_after_epoch, timeout=300):
    """Start tools/train.py, SIGKILL it once ``epoch_{kill_after_epoch}.pth`` is the last
    checkpoint; return the checkpoint path recorded at the kill."""
    log = open(osp.join(osp.dirname(work_dir), 'killed_run.log'), 'w')
    proc = subprocess.Popen(
        [sys.executable, 'tools/train.py', config, '--work-dir', work_dir], cwd=REPO_ROOT,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT), **ENV), stdout=log,
        stderr=subprocess.STDOUT)
    target = f'epoch_{kill_after_epoch}.pth'
    deadline = time.monotonic() + timeout
    try:
        while not (last_checkpoint(work_dir) or '').endswith(target):
            assert proc.poll() is None, f'training exited ({proc.returncode}) before {target}'
            assert time.monotonic() < deadline, f'no {target} within {timeout} s'
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    return last_checkpoint(work_dir)


def assert_state_equal(a, b, where):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype, where
        assert torch.equal(a, b), f'{where}: max |diff| {(a.double() - b.double()).abs().max()}'
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f'{where}: keys differ'
        for k in a:
            assert_state_equal(a[k], b[k], f'{where}.{k}')
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f'{where}: lengths differ'
        for i, (x, y) in enumerate(zip(a, b)):
            assert_state_equal(x, y, f'{where}[{i}]')
    else:
        assert a == b, f'{where}: {a!r} != {b!r}'


@pytest.mark.parametrize('case', ['pretrain', 'recognition'])
def test_resume_after_sigkill_matches_uninterrupted_run(case, tmp_path, request):
    if case == 'pretrain':
        from vmae2_mm.testing.pretrain import generate_ramp_dataset
        data = str(tmp_path / 'ramps')
        generate_ramp_dataset(data, num_classes=4, train_per_class=3, val_per_class=1,
                              num_frames=20, size=64, seed=0)
        config_text, iters_per_epoch = pretrain_config(data), 3
    else:
        data = str(request.getfixturevalue('motion_clips'))
        config_text, iters_per_epoch = recognition_config(data), 2
    config = tmp_path / f'resume_{case}.py'
    config.write_text(config_text)
    full_dir, killed_dir = str(tmp_path / 'full'), str(tmp_path / 'killed')

    t0 = time.monotonic()
    run_python(['tools/train.py', str(config), '--work-dir', full_dir], env=ENV, timeout=600)
    t1 = time.monotonic()
    ckpt = train_and_kill(str(config), killed_dir, KILL_AFTER_EPOCH)
    t2 = time.monotonic()
    assert not osp.exists(osp.join(killed_dir, f'epoch_{EPOCHS}.pth')), 'killed after the end'
    resumed_epoch = int(re.search(r'epoch_(\d+)\.pth$', ckpt).group(1))
    assert KILL_AFTER_EPOCH <= resumed_epoch < EPOCHS
    killed_records = records(killed_dir)
    resume = run_python(['tools/train.py', str(config), '--work-dir', killed_dir, '--resume'],
                        env=ENV, timeout=600)
    print(f'{case}: uninterrupted run {t1 - t0:.1f} s, killed run {t2 - t1:.1f} s, '
          f'resumed run {time.monotonic() - t2:.1f} s (from {osp.basename(ckpt)})')

    # continued from the last checkpoint
    resume_iter = resumed_epoch * iters_per_epoch
    assert f'resumed epoch: {resumed_epoch}, iter: {resume_iter}' in resume.stdout + resume.stderr
    full = records(full_dir)
    both = records(killed_dir)
    resumed = both[len(killed_records):]
    assert [r['iter'] for r in full] == list(range(EPOCHS * iters_per_epoch))
    assert [r['iter'] for r in resumed] == list(range(resume_iter, EPOCHS * iters_per_epoch))
    assert len({r['pid'] for r in resumed}) == 1
    assert resumed[0]['pid'] not in {r['pid'] for r in killed_records}
    # same batches (order, augmentation, masks) and RNG state as the uninterrupted run, before
    # the kill and after the resume
    by_iter = {r['iter']: r for r in full}
    fields = ('epoch', 'samples', 'torch_rng', 'numpy_rng')
    for r in killed_records + resumed:
        for field in fields:
            assert r[field] == by_iter[r['iter']][field], (case, r['iter'], field)
    # sanity: fingerprints change between epochs (order, crops, masks, RNG), so equal ones mean
    # something
    assert by_iter[0]['samples'] != by_iter[iters_per_epoch]['samples']
    assert by_iter[0]['torch_rng'] != by_iter[iters_per_epoch]['torch_rng']

    # final weights, EMA, optimizer and schedulers equal the uninterrupted run's, exactly
    final = f'epoch_{EPOCHS}.pth'
    a = torch.load(osp.join(full_dir, final), map_location='cpu', weights_only=False)
    b = torch.load(osp.join(killed_dir, final), map_location='cpu', weights_only=False)
    for key in ('state_dict', 'ema_state_dict', 'optimizer', 'param_schedulers'):
        assert_state_equal(a[key], b[key], key)
    assert a['meta']['iter'] == b['meta']['iter'] == EPOCHS * iters_per_epoch
    # restored, not restarted: AdamW and EMA counted every iteration of the whole run
    steps = {float(s['step']) for s in b['optimizer']['state'].values()}
    assert steps == {float(EPOCHS * iters_per_epoch)}, steps
    assert int(b['ema_state_dict']['steps']) == EPOCHS * iters_per_epoch
