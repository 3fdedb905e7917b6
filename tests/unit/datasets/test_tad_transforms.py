import random

import numpy as np
import pytest
import torch
from mmaction.structures import ActionDataSample

from vmae2_mm.datasets.transforms.tad_transforms import (DropOutsideTADSegments, LoadTADFeatures,
                                                         PackTADInputs,
                                                         RandomTruncateTADFeatures,
                                                         ResizeTADFeatures)


def results_for(tmp_path, feats, segments, labels=None, fps=30.0, duration=None, stride=4,
                num_frames=16, offset=None):
    path = tmp_path / 'v.npy'
    np.save(path, feats)
    return dict(video_id='v', feat_path=str(path), fps=fps,
                duration=duration if duration is not None else 1000.0,
                feat_stride=float(stride), feat_num_frames=float(num_frames),
                offset_frames=0.5 * num_frames if offset is None else offset,
                gt_segments_seconds=np.asarray(segments, dtype=np.float64).reshape(-1, 2),
                gt_labels=np.asarray(labels if labels is not None else [0] * len(segments)))


def test_load_converts_seconds_to_grid(tmp_path):
    feats = np.arange(20, dtype=np.float64).reshape(10, 2)  # float64 on disk -> float32
    r = LoadTADFeatures()(results_for(tmp_path, feats, [[10.0, 12.0]]))
    assert r['feats'].dtype == np.float32 and r['feats'].shape == (10, 2)
    assert r['feat_len'] == 10
    # (10 * 30 - 8) / 4 = 73, (12 * 30 - 8) / 4 = 88
    np.testing.assert_array_equal(r['gt_segments'], [[73.0, 88.0]])


def test_load_fixed_length_features_case3(tmp_path):
    # feat_stride <= 0: stride = duration * fps / T = 10 * 30 / 10 = 30 frames, offset 15
    r = LoadTADFeatures()(results_for(tmp_path, np.zeros((10, 3), np.float32), [[1.5, 4.5]],
                                      duration=10.0, stride=-1))
    assert (r['feat_stride'], r['feat_num_frames'], r['offset_frames']) == (30.0, 30.0, 15.0)
    # (1.5 * 30 - 15) / 30 = 1, (4.5 * 30 - 15) / 30 = 4
    np.testing.assert_allclose(r['gt_segments'], [[1.0, 4.0]])


def test_load_errors_name_the_file(tmp_path):
    r = results_for(tmp_path, np.zeros((4, 3), np.float32), [])
    (tmp_path / 'v.npy').write_bytes(b'not a numpy file')
    with pytest.raises(ValueError, match='v.npy: cannot read'):
        LoadTADFeatures()(dict(r))
    np.save(tmp_path / 'v.npy', np.zeros(5, np.float32))
    with pytest.raises(ValueError, match=r'v.npy: features must be a float array \[T, C\]'):
        LoadTADFeatures()(dict(r))
    r['feat_path'] = str(tmp_path / 'absent.npy')
    with pytest.raises(FileNotFoundError, match='absent.npy'):
        LoadTADFeatures()(r)


def test_resize_hand_checked(tmp_path):
    # 10 features (stride 16, 16 frames) -> 20: stride' = (9 * 16 + 16) / 20 = 8 frames
    feats = np.stack([np.arange(10.0), 2 * np.arange(10.0)], axis=1)
    r = LoadTADFeatures()(results_for(tmp_path, feats, [[2.0, 4.0]], fps=20.0, stride=16))
    r = ResizeTADFeatures(seq_len=20)(r)
    assert (r['feat_stride'], r['feat_num_frames'], r['offset_frames'], r['feat_len']) == (
        8.0, 8.0, 4.0, 20)
    # linear, align_corners=False: out[i] samples x at i / 2 - 0.25, clamped to [0, 9]
    expect = np.clip(np.arange(20) / 2 - 0.25, 0, 9)
    np.testing.assert_allclose(r['feats'][:, 0], expect, atol=1e-6)
    np.testing.assert_allclose(r['feats'][:, 1], 2 * expect, atol=1e-6)
    # on the new grid: (2 * 20 - 4) / 8 = 4.5, (4 * 20 - 4) / 8 = 9.5
    np.testing.assert_allclose(r['gt_segments'], [[4.5, 9.5]])


def test_resize_same_length_keeps_values(tmp_path):
    feats = np.random.default_rng(0).random((12, 3)).astype(np.float32)
    r = ResizeTADFeatures(seq_len=12)(LoadTADFeatures()(results_for(tmp_path, feats, [])))
    np.testing.assert_array_equal(r['feats'], feats)
    assert r['feat_stride'] == (11 * 4 + 16) / 12


def test_drop_outside_segments():
    r = dict(feat_len=10, offset_frames=8.0, feat_stride=4.0,  # map ends at 10 + 2 = 12
             gt_segments=np.array([[1, 3], [8, 14], [11, 20], [12, 13]], np.float32),
             gt_labels=np.array([0, 1, 2, 3]))
    r = DropOutsideTADSegments(trunc_thresh=0.5)(r)
    # [8, 14]: 4/6 inside -> clipped to [8, 12]; [11, 20]: 1/9 -> dropped; [12, 13] starts at end
    np.testing.assert_array_equal(r['gt_segments'], [[1, 3], [8, 12]])
    assert r['gt_labels'].tolist() == [0, 1]


def _truncate_input(feat_len, segments, offset_frames=0.0):
    return dict(feats=np.arange(feat_len, dtype=np.float32)[:, None].repeat(2, 1),
                feat_len=feat_len, feat_stride=4.0, offset_frames=offset_frames,
                gt_segments=np.asarray(segments, np.float32).reshape(-1, 2),
                gt_labels=np.arange(len(segments)))


def test_truncate_window_must_hold_the_action():
    # only windows starting at 8, 9 or 10 keep all of [10, 12] (trunc_thresh 1, no offset)
    t = RandomTruncateTADFeatures(max_seq_len=4, trunc_thresh=1.0)
    starts = set()
    for seed in range(30):
        random.seed(seed)
        r = t(_truncate_input(20, [[10.0, 12.0]]))
        st = r['trunc_start']
        starts.add(st)
        assert st in (8, 9, 10)
        assert r['feat_len'] == 4 and r['feats'][:, 0].tolist() == [st, st + 1, st + 2, st + 3]
        np.testing.assert_array_equal(r['gt_segments'], [[10 - st, 12 - st]])
    assert starts == {8, 9, 10}


def test_truncate_clips_to_window_plus_offset():
    # offset 8 frames / stride 4 = 2 cells; window [st, st + 6) widened to [st - 2, st + 8)
    t = RandomTruncateTADFeatures(max_seq_len=6, trunc_thresh=0.5)
    for seed in range(20):
        random.seed(seed)
        r = t(_truncate_input(30, [[3.0, 9.0], [20.0, 24.0]], offset_frames=8.0))
        st = r['trunc_start']
        segs = np.array([[3.0, 9.0], [20.0, 24.0]])
        left = np.maximum(segs[:, 0], st - 2)
        right = np.minimum(segs[:, 1], st + 8)
        keep = np.clip(right - left, 0, None) / (segs[:, 1] - segs[:, 0]) >= 0.5
        assert keep.any()  # has_action
        np.testing.assert_allclose(r['gt_segments'],
                                   np.stack([left, right], 1)[keep] - st)
        assert r['gt_labels'].tolist() == np.nonzero(keep)[0].tolist()


def test_truncate_short_sequences():
    short = _truncate_input(10, [[2.0, 5.0]])
    r = RandomTruncateTADFeatures(max_seq_len=16)(dict(short))
    assert r['feat_len'] == 10 and r['trunc_start'] == 0
    lengths = set()
    for seed in range(40):
        random.seed(seed)
        r = RandomTruncateTADFeatures(max_seq_len=16, crop_ratio=(0.5, 1.0))(dict(short))
        lengths.add(r['feat_len'])
        assert r['feats'].shape[0] == r['feat_len']
    assert lengths == set(range(5, 11))  # round(0.5 * 10) .. 10
    with pytest.raises(ValueError, match='crop_ratio'):
        RandomTruncateTADFeatures(crop_ratio=(0.9, 1.2))


def test_pack_interface():
    r = dict(video_id='v', duration=12.5, fps=30.0, feat_stride=4.0, feat_num_frames=16.0,
             offset_frames=8.0, feat_len=5, sample_idx=3,
             feats=np.arange(15, dtype=np.float32).reshape(5, 3),
             gt_segments=np.array([[1.0, 2.5]], np.float32), gt_labels=np.array([4]))
    out = PackTADInputs()(r)
    x, s = out['inputs'], out['data_samples']
    assert x.dtype == torch.float32 and x.shape == (3, 5)
    assert torch.equal(x, torch.arange(15.).reshape(5, 3).T)
    assert isinstance(s, ActionDataSample)
    assert s.metainfo == dict(video_id='v', duration=12.5, fps=30.0, feat_stride=4.0,
                              feat_num_frames=16.0, offset_frames=8.0, feat_len=5, sample_idx=3)
    assert s.gt_instances.segments.dtype == torch.float32
    assert s.gt_instances.segments.tolist() == [[1.0, 2.5]]
    assert s.gt_instances.labels.dtype == torch.long and s.gt_instances.labels.tolist() == [4]
    empty = PackTADInputs()(dict(r, gt_segments=np.zeros((0, 2), np.float32),
                                 gt_labels=np.zeros(0, np.int64)))
    assert empty['data_samples'].gt_instances.segments.shape == (0, 2)
    with pytest.raises(KeyError, match='LoadTADFeatures'):
        PackTADInputs()(dict(video_id='v'))
