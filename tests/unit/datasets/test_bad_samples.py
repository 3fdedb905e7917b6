"""The shared bad-sample policy: one classifier (loading transforms only), skips carried from
dataloader workers to BadSampleHook, totals per epoch in the MessageHub, and the cap."""
import os

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.runner import Runner

import vmae2_mm  # noqa: F401
from mmaction.datasets.transforms import DecordInit, SampleFrames
from mmaction.registry import DATASETS
from vmae2_mm.datasets import (AVADatasetChecked, AVAKeyframeDataset, BadSampleError,
                               BadSampleHook, BadVideoError, RecognitionVideoDataset,
                               UnlabeledHybridDataset, VideoDatasetChecked)
from vmae2_mm.datasets.bad_samples import SKIPPED_KEY, run_pipeline
from vmae2_mm.testing.recognition import render_motion_clip, write_mp4

PIPELINE = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=4, frame_interval=2, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]


@pytest.fixture()
def bad_list(motion_clips, tmp_path):
    """Two good clips, then a missing, a corrupt and a too-short video."""
    (tmp_path / 'corrupt.mp4').write_bytes(os.urandom(2048))
    write_mp4(str(tmp_path / 'short.mp4'),
              render_motion_clip(np.random.default_rng(0), 0, 4, num_frames=5, size=32))
    good = [ln.split()[0] for ln in (motion_clips / 'train.txt').read_text().splitlines()[:2]]
    lines = [f'{motion_clips / g} 0' for g in good] + [
        f'{tmp_path / "missing.mp4"} 1', f'{tmp_path / "corrupt.mp4"} 2',
        f'{tmp_path / "short.mp4"} 3']
    ann = tmp_path / 'list.txt'
    ann.write_text('\n'.join(lines) + '\n')
    return ann, tmp_path


def test_new_names_and_old_aliases_are_one_class():
    assert VideoDatasetChecked is RecognitionVideoDataset
    assert AVADatasetChecked is AVAKeyframeDataset
    for old, new in (('VideoDatasetChecked', 'RecognitionVideoDataset'),
                     ('AVADatasetChecked', 'AVAKeyframeDataset'),
                     ('AVAKineticsDatasetChecked', 'AVAKineticsKeyframeDataset')):
        assert DATASETS.get(old) is DATASETS.get(new)
    assert issubclass(BadVideoError, BadSampleError)


def test_only_loading_transforms_mark_bad_samples(tmp_path):
    missing = str(tmp_path / 'nothere.mp4')
    with pytest.raises(BadVideoError, match=r'nothere.mp4: cannot be loaded by DecordInit'):
        run_pipeline([DecordInit()], dict(filename=missing), missing, BadVideoError)
    # SampleFrames is not a loading transform: its KeyError is a bug and propagates as is
    with pytest.raises(KeyError):
        run_pipeline([SampleFrames(4)], dict(filename=missing), missing, BadVideoError)


def test_skips_ride_on_the_next_sample(bad_list):
    ann, root = bad_list
    ds = RecognitionVideoDataset(str(ann), PIPELINE)
    np.random.seed(0)
    sample = ds[3]  # corrupt -> refetched
    carried = sample['data_samples'].metainfo[SKIPPED_KEY]
    assert len(carried) >= 1 and all(str(root) in m for m in carried)
    assert 'corrupt.mp4: cannot be loaded by DecordInit' in carried[0]
    assert SKIPPED_KEY not in ds[0]['data_samples'].metainfo  # nothing pending any more


class _MeanModel(BaseModel):
    """Smallest real trainable model over packed recognition samples."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = torch.stack([i.float().mean() for i in inputs])
        return dict(loss=(x * self.w).sum()) if mode == 'loss' else x


def _runner(ann, work_dir, hook):
    return Runner(
        model=_MeanModel(), work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=dict(type='RecognitionVideoDataset', ann_file=str(ann), pipeline=PIPELINE),
            sampler=dict(type='DefaultSampler', shuffle=False), batch_size=1, num_workers=2,
            persistent_workers=False, collate_fn=dict(type='pseudo_collate')),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.0)),
        custom_hooks=[hook], default_hooks=dict(checkpoint=None), default_scope='mmaction',
        randomness=dict(seed=0))


def test_hook_totals_skips_of_all_workers_per_epoch(bad_list, tmp_path):
    ann, root = bad_list
    hook = dict(type='BadSampleHook', max_skipped=None)
    runner = _runner(ann, tmp_path / 'work', hook)
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, BadSampleHook))
    hub = MessageHub.get_current_instance()
    # 5 samples per epoch, 3 bad: each bad index is skipped at least once per epoch, in
    # worker processes; the main process sees every one of them
    names = {m.split(':')[0].rsplit('/', 1)[-1] for m in hook.epoch_skipped}
    assert names == {'missing.mp4', 'corrupt.mp4', 'short.mp4'}
    assert hub.get_info('bad_samples/epoch') == len(hook.epoch_skipped) >= 3
    assert hub.get_info('bad_samples/total') == hook.total >= 6  # two epochs


def test_hook_cap_stops_the_run_naming_files(bad_list, tmp_path):
    ann, _ = bad_list
    runner = _runner(ann, tmp_path / 'work', dict(type='BadSampleHook', max_skipped=2))
    with pytest.raises(BadSampleError, match=r'more than max_skipped=2 .*\.mp4'):
        runner.train()


def test_hook_rejects_bad_cap():
    with pytest.raises(ValueError, match='max_skipped'):
        BadSampleHook(max_skipped=1.5)


def test_pretrain_dataset_uses_the_same_log(bad_list):
    ann, root = bad_list
    ds = UnlabeledHybridDataset(sources=[dict(ann_file=str(ann))], pipeline=[
        dict(type='FormatShape', input_format='NCTHW'), dict(type='PackActionInputs')],
        clip_len=4, frame_interval=2)
    np.random.seed(0)
    (view,) = ds[2]  # missing -> refetched
    assert 'missing.mp4: file not found' in view['data_samples'].metainfo[SKIPPED_KEY][0]
    assert sum(ds.skipped.values()) == len(ds.bad_sample_log) >= 1
