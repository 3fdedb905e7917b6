"""RecognitionVideoDataset (registered also as VideoDatasetChecked): missing, corrupt and
too-short videos are reported by path."""
import os

import pytest
import torch

import vmae2_mm  # noqa: F401
from vmae2_mm.datasets import BadVideoError, VideoDatasetChecked
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
    """A list with one good clip, then a missing, a corrupt and a too-short video."""
    import numpy as np
    (tmp_path / 'corrupt.mp4').write_bytes(os.urandom(2048))
    write_mp4(str(tmp_path / 'short.mp4'),
              render_motion_clip(np.random.default_rng(0), 0, 4, num_frames=5, size=32))
    good = (motion_clips / 'train.txt').read_text().splitlines()[0].split()[0]
    lines = [f'{motion_clips / good} 0', f'{tmp_path / "missing.mp4"} 1',
             f'{tmp_path / "corrupt.mp4"} 2', f'{tmp_path / "short.mp4"} 3']
    ann = tmp_path / 'list.txt'
    ann.write_text('\n'.join(lines) + '\n')
    return ann, tmp_path


def test_min_frames_from_pipeline(bad_list):
    ann, _ = bad_list
    ds = VideoDatasetChecked(str(ann), PIPELINE)
    assert ds.min_frames == 8  # clip_len 4 x frame_interval 2


@pytest.mark.parametrize('idx, reason', [(1, 'file not found'),
                                         (2, 'cannot be loaded by DecordInit'),
                                         (3, '5 frames, shorter than the sampled clip')])
def test_fail_fast_names_path_and_reason(bad_list, idx, reason):
    ann, root = bad_list
    ds = VideoDatasetChecked(str(ann), PIPELINE, on_bad_video='error')
    with pytest.raises(BadVideoError, match=reason) as info:
        ds.prepare_data(idx)
    assert str(root) in str(info.value)


def test_skip_and_count_in_training(bad_list):
    ann, root = bad_list
    ds = VideoDatasetChecked(str(ann), PIPELINE, on_bad_video='skip')
    for idx in (1, 2, 3):
        assert ds.prepare_data(idx) is None
    assert len(ds.bad_videos) == 3
    assert all(str(root) in msg for msg in ds.bad_videos)
    # __getitem__ replaces a bad sample by a good one (mmengine refetch)
    sample = ds[2]
    assert sample['inputs'].shape == (1, 3, 4, 32, 32)


def test_check_on_init_drops_bad_videos_for_testing(bad_list):
    ann, _ = bad_list
    ds = VideoDatasetChecked(str(ann), PIPELINE, test_mode=True, check_on_init=True)
    assert len(ds) == 1 and len(ds.bad_videos) == 3
    with pytest.raises(BadVideoError, match='missing.mp4'):
        VideoDatasetChecked(str(ann), PIPELINE, test_mode=True, check_on_init=True,
                            on_bad_video='error')


def test_test_mode_without_scan_fails_clearly(bad_list):
    ann, _ = bad_list
    ds = VideoDatasetChecked(str(ann), PIPELINE, test_mode=True)
    with pytest.raises(BadVideoError, match='check_on_init=True'):
        ds[2]


def test_error_reaches_main_process_from_a_worker(bad_list):
    ann, _ = bad_list
    ds = VideoDatasetChecked(str(ann), PIPELINE, on_bad_video='error', indices=[2])
    loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=1,
                                         collate_fn=lambda b: b)
    with pytest.raises(BadVideoError, match='corrupt.mp4'):
        next(iter(loader))


class _ExplodingTransform:
    """Stands in for a buggy (non-decoding) transform."""

    def __call__(self, results):
        raise ValueError('boom: a bug, not a bad video')


def test_bugs_in_other_transforms_are_not_hidden(bad_list):
    ann, _ = bad_list
    pipeline = PIPELINE[:3] + [_ExplodingTransform()] + PIPELINE[3:]
    ds = VideoDatasetChecked(str(ann), pipeline, on_bad_video='skip')
    with pytest.raises(ValueError, match='boom'):
        ds.prepare_data(0)
    assert ds.bad_videos == []


def test_invalid_policy_rejected(bad_list):
    ann, _ = bad_list
    with pytest.raises(ValueError, match='on_bad_video'):
        VideoDatasetChecked(str(ann), PIPELINE, on_bad_video='ignore')
    with pytest.raises(ValueError, match='min_frames'):
        VideoDatasetChecked(str(ann), PIPELINE, min_frames=0)
