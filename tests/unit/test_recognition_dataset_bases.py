"""The recognition dataset bases share the Kinetics-400 pipeline and differ only where the
official recipes do: paths, HMDB51's sampling rate 2, SSv2's TSN-style sampling and no flip."""
import os.path as osp

import pytest
from mmengine.config import Config

ROOT = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
                '_base_', 'datasets')
SPLITS = ('train', 'val', 'test')


def _load(name):
    return Config.fromfile(osp.join(ROOT, f'recognition_{name}.py'))


def _pipelines(cfg):
    return {s: [dict(t) for t in cfg[f'{s}_dataloader'].dataset.pipeline] for s in SPLITS}


@pytest.mark.parametrize('name', ['kinetics600', 'kinetics710', 'ucf101', 'hmdb51', 'sthv2'])
def test_bases_inherit_kinetics400(name):
    with open(osp.join(ROOT, f'recognition_{name}.py')) as f:
        assert "_base_ = ['./recognition_kinetics400.py']" in f.read()
    cfg, k400 = _load(name), _load('kinetics400')
    for split in SPLITS:
        ds = cfg[f'{split}_dataloader'].dataset
        assert ds.ann_file == cfg[f'ann_file_{split}'] and name.rstrip('0123456789') in ds.ann_file
        assert cfg[f'{split}_dataloader'].batch_size == k400[f'{split}_dataloader'].batch_size
    assert cfg.train_dataloader.dataset.type == 'RepeatAugDataset'


def test_hmdb51_differs_from_kinetics_only_in_sampling_rate():
    hmdb, k400 = _pipelines(_load('hmdb51')), _pipelines(_load('kinetics400'))
    for split in SPLITS:
        for ours, ref in zip(hmdb[split], k400[split], strict=True):
            if ref['type'] == 'SampleFrames':
                assert ref['frame_interval'] == 4 and ours == dict(ref, frame_interval=2)
            else:
                assert ours == ref


def test_sthv2_uses_uniform_sampling_and_no_flip():
    ssv2, k400 = _pipelines(_load('sthv2')), _pipelines(_load('kinetics400'))
    expected_clips = dict(train=1, val=1, test=2)  # test: 2 temporal views x 3 crops
    for split in SPLITS:
        ref = [t for t in k400[split] if t['type'] != 'Flip']
        assert len(ssv2[split]) == len(ref)
        for ours, r in zip(ssv2[split], ref):
            if r['type'] == 'SampleFrames':
                assert ours['type'] == 'UniformSample' and ours['clip_len'] == 16
                assert ours['num_clips'] == expected_clips[split]
                assert ours.get('test_mode', False) == (split != 'train')
            else:
                assert ours == r
    assert not any(t['type'] == 'Flip' for s in SPLITS for t in ssv2[s])
