"""UnlabeledHybridDataset on real generated files: strides, frames, repeated aug, bad videos."""
import logging
import os

import cv2
import numpy as np
import pytest
import torch

import vmae2_mm  # noqa: F401
from mmaction.registry import DATASETS
from mmengine.dataset import COLLATE_FUNCTIONS
from mmengine.logging import MMLogger
from vmae2_mm.testing.recognition import render_motion_clip, write_mp4

GRID = (4, 2, 2)


def pipeline(size=32, meta=('frame_inds', 'filename', 'frame_dir', 'crop_bbox')):
    return [
        dict(type='MultiScaleCrop', input_size=size, scales=(1, .875, .75, .66),
             random_crop=False, max_wh_scale_gap=1, num_fixed_crops=13),
        dict(type='Resize', scale=(size, size), keep_ratio=False),
        dict(type='FormatShape', input_format='NCTHW'),
        dict(type='TubeMasking', grid=GRID, ratio=0.75),
        dict(type='RunningCellMasking', grid=GRID, ratio=0.5),
        dict(type='PackActionInputs', algorithm_keys=('enc_hidden', 'dec_kept'),
             meta_keys=meta),
    ]


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('hybrid')
    rng = np.random.default_rng(0)
    for i in range(2):
        write_mp4(str(root / f'k/vid{i}.mp4'), render_motion_clip(rng, i, 4, 40, 64))
    write_mp4(str(root / 'ssv2/SomethingV2_0.mp4'), render_motion_clip(rng, 1, 4, 30, 64))
    write_mp4(str(root / 'k/short.mp4'), render_motion_clip(rng, 2, 4, 5, 64))
    (root / 'k/corrupt.mp4').write_bytes(os.urandom(2048))
    frames = root / 'ava/clip0'
    frames.mkdir(parents=True)
    for j, img in enumerate(render_motion_clip(rng, 3, 4, 36, 64), start=1):
        cv2.imwrite(str(frames / f'image_{j:06d}.jpg'), img[..., ::-1])
    (root / 'kinetics.txt').write_text('k/vid0.mp4 0 -1\nk/vid1.mp4 3\n')
    (root / 'ssv2.txt').write_text('ssv2/SomethingV2_0.mp4\n')
    (root / 'ava.txt').write_text('ava/clip0 1 36\n')
    (root / 'bad.txt').write_text('k/corrupt.mp4 0 -1\nk/short.mp4 0 -1\nk/missing.mp4\n'
                                  'k/vid0.mp4\n')
    return root


def build(root, sources, **kw):
    srcs = [dict(ann_file=str(root / f'{name}.txt'), data_prefix=str(root), **extra)
            for name, extra in sources]
    return DATASETS.build(dict(type='UnlabeledHybridDataset', sources=srcs, clip_len=8,
                               pipeline=kw.pop('pipeline', pipeline()), **kw))


def test_sources_strides_and_raw_frames(data_root):
    ds = build(data_root, [('kinetics', {}), ('ssv2', dict(frame_interval=2)),
                           ('ava', dict(filename_tmpl='image_{:06}.jpg', frame_interval=3))])
    assert len(ds) == 4
    for idx, stride in ((0, 4), (1, 4), (2, 2), (3, 3)):
        (view,) = ds[idx]
        inds = view['data_samples'].frame_inds
        assert (np.diff(inds) == stride).all(), (idx, inds)
        assert view['inputs'].shape == (1, 3, 8, 32, 32)
        assert view['inputs'].dtype == torch.uint8
        assert view['data_samples'].enc_hidden.shape == (16,)
    frames_view = ds[3][0]['data_samples']
    assert frames_view.frame_dir.endswith('ava/clip0') and frames_view.frame_inds.min() >= 1
    assert ds.skipped == {}


def test_repeated_augmentation_shares_frames_not_crops_or_masks(data_root):
    np.random.seed(0)
    ds = build(data_root, [('kinetics', {})], num_sample=4)
    views = ds[0]
    assert len(views) == 4
    inds = [v['data_samples'].frame_inds for v in views]
    assert all((i == inds[0]).all() for i in inds)
    crops = {tuple(v['data_samples'].crop_bbox) for v in views}
    masks = {v['data_samples'].enc_hidden.tobytes() for v in views}
    assert len(crops) > 1 and len(masks) > 1
    batch = COLLATE_FUNCTIONS.get('repeat_pseudo_collate')([ds[0], ds[1]])
    assert len(batch['inputs']) == 8 and len(batch['data_samples']) == 8


class ListHandler(logging.Handler):

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_bad_videos_are_skipped_and_counted(data_root):
    np.random.seed(1)
    ds = build(data_root, [('bad', dict(name='bad-list'))])
    handler = ListHandler()
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        for idx in range(3):  # corrupt, too short, missing -> each replaced by the good video
            (view,) = ds[idx]
            assert view['data_samples'].filename.endswith('k/vid0.mp4')
    finally:
        logger.removeHandler(handler)
    assert ds.skipped['bad-list'] >= 3
    text = '\n'.join(handler.messages)
    assert 'corrupt.mp4: cannot be opened' in text
    assert 'short.mp4: 5 frames, fewer than min_frames=8' in text
    assert 'missing.mp4: file not found' in text
    assert 'skipped so far in this process' in text


def test_dataloader_with_workers_survives_corrupt_videos(data_root):
    from torch.utils.data import DataLoader
    ds = build(data_root, [('bad', {}), ('kinetics', {})], num_sample=2)
    loader = DataLoader(ds, batch_size=3, num_workers=2, shuffle=True,
                        collate_fn=COLLATE_FUNCTIONS.get('repeat_pseudo_collate'))
    seen = 0
    for batch in loader:
        seen += len(batch['inputs'])
        assert all(x.shape == (1, 3, 8, 32, 32) for x in batch['inputs'])
    assert seen == 2 * len(ds) == 12


def test_list_and_config_errors_name_file_and_field(data_root, tmp_path):
    bad = tmp_path / 'broken.txt'
    bad.write_text('a.mp4\nb.mp4 1 2 3\n')
    with pytest.raises(ValueError, match=r'broken.txt:2: expected'):
        DATASETS.build(dict(type='UnlabeledHybridDataset', pipeline=[],
                            sources=[dict(ann_file=str(bad))]))
    with pytest.raises(ValueError, match=r'sources\[0\].frame_interval'):
        DATASETS.build(dict(type='UnlabeledHybridDataset', pipeline=[],
                            sources=[dict(ann_file=str(bad), frame_interval=0)]))
    with pytest.raises(ValueError, match='unknown keys'):
        DATASETS.build(dict(type='UnlabeledHybridDataset', pipeline=[],
                            sources=[dict(ann_file=str(bad), stride=2)]))
    with pytest.raises(FileNotFoundError, match='nothere.txt'):
        DATASETS.build(dict(type='UnlabeledHybridDataset', pipeline=[],
                            sources=[dict(ann_file=str(tmp_path / 'nothere.txt'))]))
