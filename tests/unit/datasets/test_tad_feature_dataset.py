import json

import numpy as np
import pytest
from mmaction.registry import DATASETS
from mmengine.registry import init_default_scope

import vmae2_mm  # noqa: F401


def _ann(subset, duration, fps, anns):
    return dict(subset=subset, duration=duration, fps=fps, annotations=[
        dict(segment=list(seg), label=label, label_id=lid) for seg, label, lid in anns])


def make_db(tmp_path, database=None, feats=('vid_a', 'vid_b', 'vid_c'), dim=6):
    database = database or {
        'vid_a': _ann('Validation', 20.0, 30.0, [((1.0, 3.0), 'Jump', 1),
                                                  ((5.0, 9.5), 'Run', 0)]),
        'vid_b': _ann('validation', 12.0, 25.0, [((2.0, 4.0), 'Jump', 1)]),
        'vid_c': _ann('Test', 30.0, 30.0, [((10.0, 12.0), 'Swim', 2)]),
    }
    ann = tmp_path / 'ann.json'
    ann.write_text(json.dumps(dict(database=database)))
    fdir = tmp_path / 'feats'
    fdir.mkdir(exist_ok=True)
    for i, vid in enumerate(feats):
        np.save(fdir / f'pre_{vid}.npy', np.full((8 + i, dim), i, dtype=np.float32))
    return str(ann), str(fdir)


def build(ann, fdir, **kw):
    # the fixture's 8-10 step features are far shorter than duration x fps / stride
    cfg = dict(type='Thumos14FeatureDataset', ann_file=ann, feat_dir=fdir, feat_prefix='pre_',
               subset='validation', length_tolerance=None)
    cfg.update(kw)
    return DATASETS.build(cfg)


def test_subset_labels_and_paths(tmp_path):
    ann, fdir = make_db(tmp_path)
    ds = build(ann, fdir)
    # 'Validation' and 'validation' both match (lower-cased compare); the Test video does not
    assert [ds.get_data_info(i)['video_id'] for i in range(len(ds))] == ['vid_a', 'vid_b']
    info = ds.get_data_info(0)
    assert info['feat_path'].endswith('feats/pre_vid_a.npy')
    np.testing.assert_array_equal(info['gt_segments_seconds'], [[1.0, 3.0], [5.0, 9.5]])
    np.testing.assert_array_equal(info['gt_labels'], [1, 0])
    assert info['gt_labels'].dtype == np.int64
    assert (info['fps'], info['duration'], info['feat_stride'], info['feat_num_frames'],
            info['offset_frames']) == (30.0, 20.0, 4.0, 16.0, 8.0)
    # classes come from every subset, ordered by label_id
    assert ds.metainfo['classes'] == ('Run', 'Jump', 'Swim')
    test = build(ann, fdir, subset='TEST', test_mode=True)
    assert len(test) == 1 and test.get_data_info(0)['video_id'] == 'vid_c'
    both = build(ann, fdir, subset=['validation', 'test'])
    assert len(both) == 3


def test_class_agnostic_offset_and_fineaction_defaults(tmp_path):
    ann, fdir = make_db(tmp_path)
    ds = DATASETS.build(dict(type='FineActionFeatureDataset', ann_file=ann, feat_dir=fdir,
                             feat_prefix='pre_', subset='validation', class_agnostic=True,
                             length_tolerance=None,
                             offset_frames=2.0))
    info = ds.get_data_info(0)
    assert ds.metainfo['classes'] == ('action', )
    np.testing.assert_array_equal(info['gt_labels'], [0, 0])
    assert (info['feat_stride'], info['feat_num_frames'], info['offset_frames']) == (16.0, 16.0,
                                                                                     2.0)


def test_missing_features_error_or_skip(tmp_path):
    ann, fdir = make_db(tmp_path, feats=('vid_a', 'vid_c'))
    with pytest.raises(FileNotFoundError, match=r"1 of 2 videos.*pre_vid_b\.npy"):
        build(ann, fdir)
    ds = build(ann, fdir, missing_features='skip')
    assert len(ds) == 1 and ds.num_missing_features == 1
    assert ds.missing_feature_videos[0].endswith('pre_vid_b.npy')


def test_empty_gt_filtered_in_training_only(tmp_path):
    db = {'v1': _ann('Test', 10.0, 30.0, []), 'v2': _ann('Test', 10.0, 30.0,
                                                          [((1.0, 2.0), 'A', 0)])}
    ann, fdir = make_db(tmp_path, db, feats=('v1', 'v2'))
    assert len(build(ann, fdir, subset='test')) == 1
    assert len(build(ann, fdir, subset='test', test_mode=True)) == 2


@pytest.mark.parametrize('entry, match', [
    (dict(subset='Test', duration=-1, fps=30, annotations=[]), 'field "duration"'),
    (dict(subset='Test', duration=10, fps=0, annotations=[]), 'field "fps"'),
    (dict(duration=10, fps=30, annotations=[]), 'field "subset"'),
    (dict(subset='Test', duration=10, fps=30, annotations=[dict(segment=[1], label='A',
                                                                label_id=0)]),
     r'annotations\[0\]: field "segment"'),
    (dict(subset='Test', duration=10, fps=30, annotations=[dict(segment=[3, 1], label='A',
                                                                label_id=0)]),
     'ends before it starts'),
    (dict(subset='Test', duration=10, fps=30, annotations=[dict(segment=[1, 2], label='A',
                                                                label_id='0')]),
     'field "label_id"'),
])
def test_bad_json_fields_name_file_video_and_field(tmp_path, entry, match):
    ann, fdir = make_db(tmp_path, {'bad_vid': entry}, feats=('bad_vid', ))
    with pytest.raises(ValueError, match=match) as e:
        build(ann, fdir, subset='test')
    assert 'ann.json' in str(e.value) and 'bad_vid' in str(e.value)


def test_label_conflict_and_missing_fps(tmp_path):
    db = {'v1': _ann('Test', 10.0, 30.0, [((1.0, 2.0), 'A', 0), ((3.0, 4.0), 'B', 0)])}
    ann, fdir = make_db(tmp_path, db, feats=('v1', ))
    with pytest.raises(ValueError, match='conflicts'):
        build(ann, fdir, subset='test')
    db = {'v1': dict(subset='Test', duration=10.0, annotations=[])}
    ann, fdir = make_db(tmp_path, db, feats=('v1', ))
    with pytest.raises(ValueError, match='no "fps" field'):
        build(ann, fdir, subset='test', test_mode=True)
    ds = build(ann, fdir, subset='test', test_mode=True, default_fps=15.0)
    assert ds.get_data_info(0)['fps'] == 15.0


def test_bad_config_values(tmp_path):
    ann, fdir = make_db(tmp_path)
    with pytest.raises(ValueError, match='missing_features'):
        build(ann, fdir, missing_features='ignore')
    with pytest.raises(ValueError, match='no video of subset'):
        build(ann, fdir, subset='training')
    with pytest.raises(ValueError, match='num_classes=2'):
        build(ann, fdir, num_classes=2)
    (tmp_path / 'broken.json').write_text('{"database": ')
    with pytest.raises(ValueError, match='broken.json: not valid JSON'):
        build(str(tmp_path / 'broken.json'), fdir)


def test_pipeline_end_to_end(tmp_path):
    init_default_scope('mmaction')  # pipelines are built from the scoped registry
    ann, fdir = make_db(tmp_path)
    ds = build(ann, fdir, pipeline=[dict(type='LoadTADFeatures'), dict(type='PackTADInputs')])
    out = ds[0]
    assert out['inputs'].shape == (6, 8)  # [C, T]
    sample = out['data_samples']
    assert sample.video_id == 'vid_a' and sample.feat_len == 8
    # (1 s * 30 - 8) / 4 = 5.5, (3 * 30 - 8) / 4 = 20.5, (150 - 8) / 4 = 35.5, (285 - 8)/4
    np.testing.assert_allclose(sample.gt_instances.segments.numpy(),
                               [[5.5, 20.5], [35.5, 69.25]])
    assert sample.gt_instances.labels.tolist() == [1, 0]
