"""AVAKeyframeDataset / AVAKineticsKeyframeDataset (old names AVADatasetChecked /
AVAKineticsDatasetChecked) on generated mini-AVA, incl. bad input."""
import os
import os.path as osp
import pickle
import shutil

import numpy as np
import pytest

import vmae2_mm  # noqa: F401
from mmengine.registry import init_default_scope
from vmae2_mm.datasets import AVADatasetChecked, AVAKineticsDatasetChecked, BadAVASampleError
from vmae2_mm.testing.ava import ACTIONS, generate_mini_ava
from vmae2_mm.evaluation.ava_metric import read_labelmap

PIPELINE = [
    dict(type='SampleAVAFrames', clip_len=4, frame_interval=2, test_mode=True),
    dict(type='RawFrameDecode'),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackActionInputs'),
]


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    init_default_scope('mmaction')
    root = tmp_path_factory.mktemp('mini_ava')
    return generate_mini_ava(str(root), num_train_videos=2, num_val_videos=1, seconds=5,
                             kinetics_clips=1, height=64, width=96, seed=0)


def build(data, cls=AVADatasetChecked, split='train', **kwargs):
    args = dict(ann_file=data[f'{split}_ann'], exclude_file=data[f'{split}_exclude'],
                label_file=data['label_file'], proposal_file=data[f'{split}_proposals'],
                data_prefix=dict(img=osp.join(data['root'], 'rawframes')), pipeline=PIPELINE,
                timestamp_start=data['timestamp_start'], timestamp_end=data['timestamp_end'])
    if cls is AVADatasetChecked:
        # the mini-AVA CSV also holds a Kinetics clip row, outside the plain AVA time range
        args['keyframe_outside'] = 'skip'
    args.update(kwargs)
    return cls(**args)


def copy_ann(data, tmp_path, edit):
    """Copy the train CSV with ``edit(lines) -> lines``."""
    lines = open(data['train_ann']).read().splitlines()
    path = tmp_path / 'ann.csv'
    path.write_text('\n'.join(edit(lines)) + '\n')
    return str(path)


def test_generated_formats(data):
    """Real AVA formats: 8-column rows with normalised boxes, %04d timestamps, 11-char ids,
    label map with the real ids, exclusion rows, proposal keys and float [K, 5] arrays."""
    rows = [line.split(',') for line in open(data['train_ann']).read().splitlines()]
    assert all(len(r) == 8 for r in rows)
    ava_rows = [r for r in rows if not r[0].startswith('kinvid')]
    assert {len(r[0]) for r in ava_rows} == {11} and {r[1] for r in ava_rows} == {
        '0902', '0903'}
    assert all(0 <= float(v) <= 1 for r in rows for v in r[2:6])
    assert {int(r[6]) for r in rows} <= {cid for cid, _ in ACTIONS.values()}
    cats, ids = read_labelmap(data['label_file'])
    assert ids == {7, 12, 14, 17} and dict(id=7, name='jump/leap') in cats
    kin = [r for r in rows if r[0].startswith('kinvid')]
    assert kin and kin[0][0] == 'kinvid00000_000010_000015' and kin[0][1] == '0012'
    props = pickle.load(open(data['train_proposals'], 'rb'))
    assert 'kinvid00000,0012' in props and 'traava00000,0902' in props
    arr = props['traava00000,0902']
    assert arr.dtype == np.float32 and arr.ndim == 2 and arr.shape[1] == 5
    assert open(data['train_exclude']).read().splitlines()[0] == 'traava00000,0903'
    frames = sorted(os.listdir(osp.join(data['root'], 'rawframes', 'traava00000')))
    assert frames[0] == 'img_00001.jpg' and len(frames) == 150


def test_movement_actions_differ_in_motion(data):
    """The GT boxes of a jumper move vertically, a walker horizontally, a stander not at all
    (measured on the generated boxes over all keyframes)."""
    rows = [line.split(',') for line in open(data['val_ann']).read().splitlines()]
    tracks = {}
    for vid, ts, x1, y1, x2, y2, cid, pid in rows:
        if int(cid) != 17:
            tracks.setdefault((vid, pid, int(cid)), []).append((float(x1), float(y1)))
    for (_, _, cid), pts in tracks.items():
        pts = np.array(pts)
        spread_x, spread_y = np.ptp(pts[:, 0]), np.ptp(pts[:, 1])
        if cid == 12:
            assert spread_x == 0 and spread_y == 0
        elif cid == 7:
            assert spread_x == 0 and spread_y > 0
        else:
            assert cid == 14 and spread_x > 0 and spread_y == 0


def test_loads_like_mmaction(data):
    # 2 videos x 2 keyframes (902, 903), 903 excluded in each; the Kinetics clip's keyframe
    # (t = 12 s) lies outside the AVA range [900, 905] s: skipped here, an error by default
    with pytest.raises(ValueError, match=r'ava_train_v2.2.csv:\d+: keyframe '
                       r'kinvid00000_000010_000015,12 is outside its video \(900 to 905 s\)'):
        build(data, keyframe_outside='error')
    ds = build(data)
    assert len(ds) == 2 and ds.counts['keyframes_outside_video'] == 1
    sample = ds[0]
    assert tuple(sample['inputs'].shape) == (3, 4, 64, 96)
    gt = sample['data_samples'].gt_instances
    assert gt.labels.shape[1] == 81 and set(gt.labels.nonzero()[:, 1].tolist()) <= {7, 12, 14, 17}
    assert sample['data_samples'].proposals.bboxes.shape[1] == 4
    kin = build(data, AVAKineticsDatasetChecked)
    assert len(kin) == 3
    assert kin.get_data_info(2)['img_key'] == 'kinvid00000_000010_000015,0012'
    assert kin[2]['inputs'].shape[1] == 4


def test_unknown_label(data, tmp_path):
    ann = copy_ann(data, tmp_path, lambda ls: ls[:3] + [ls[3].rsplit(',', 2)[0] + ',81,0'])
    with pytest.raises(ValueError, match=r'ann.csv:4: action id 81 outside \[1, 80\]'):
        build(data, ann_file=ann)
    ds = build(data, ann_file=ann, unknown_label='skip')
    assert ds.counts['unknown_label_rows'] == 1


def test_bad_rows_name_file_and_line(data, tmp_path):
    ann = copy_ann(data, tmp_path, lambda ls: ls[:1] + [ls[1].rsplit(',', 1)[0]])
    with pytest.raises(ValueError, match='ann.csv:2: expected 8 columns'):
        build(data, ann_file=ann)
    ann = copy_ann(data, tmp_path, lambda ls: [ls[0].replace(',0902,', ',09o2,')] + ls[1:])
    with pytest.raises(ValueError, match='ann.csv:1: bad number'):
        build(data, ann_file=ann)


def test_box_outside_image(data, tmp_path):
    def outside(ls):
        p = ls[0].split(',')
        p[4] = '1.250'  # x2
        return [','.join(p)] + ls[1:]
    ann = copy_ann(data, tmp_path, outside)
    ds = build(data, ann_file=ann)
    assert ds.counts['clipped_gt_boxes'] == 1
    assert ds.get_data_info(0)['gt_bboxes'].max() <= 1
    with pytest.raises(ValueError, match=r'ann.csv:1: box .* leaves the normalised range'):
        build(data, ann_file=ann, bad_box='error')


def test_proposal_problems(data, tmp_path):
    props = pickle.load(open(data['train_proposals'], 'rb'))
    props['traava00000,0902'] = np.zeros((0, 5), dtype=np.float32)  # empty list
    props['traava00001,0902'][0, 2] = 1.4  # outside the image
    path = tmp_path / 'props.pkl'
    pickle.dump(props, open(path, 'wb'))
    ds = build(data, AVAKineticsDatasetChecked, proposal_file=str(path))
    assert ds.counts['keyframes_missing_from_proposal_file'] == 0
    assert ds.counts['empty_proposals'] == 1 and ds.counts['clipped_proposals'] == 1
    info = {ds.get_data_info(i)['img_key']: ds.get_data_info(i) for i in range(len(ds))}
    np.testing.assert_array_equal(info['traava00000,0902']['proposals'], [[0, 0, 1, 1]])
    assert info['traava00001,0902']['proposals'].max() <= 1
    ds = build(data, AVAKineticsDatasetChecked, proposal_file=str(path),
               empty_proposals='drop')
    assert len(ds) == 2 and ds.counts['dropped_keyframes_without_proposals'] == 1
    del props['traava00000,0902']
    pickle.dump(props, open(path, 'wb'))
    ds = build(data, AVAKineticsDatasetChecked, proposal_file=str(path))
    assert ds.counts['keyframes_missing_from_proposal_file'] == 1


def test_missing_frames(data, tmp_path):
    root = tmp_path / 'rawframes'
    for vid in ('traava00000', 'traava00001'):
        shutil.copytree(osp.join(data['root'], 'rawframes', vid), root / vid)
    # keyframe 902 of traava00000 reads frames 58, 60, 62, 64 (SampleAVAFrames(4, 2))
    os.remove(root / 'traava00000' / 'img_00060.jpg')
    kwargs = dict(data_prefix=dict(img=str(root)))
    ds = build(data, **kwargs)
    assert ds.get_data_info(0)['img_key'] == 'traava00000,0902'
    # training: the bad keyframe is reported and replaced by another sample
    assert ds[0]['data_samples'].metainfo['video_id'] == 'traava00001'
    assert 'traava00000' in ds.bad_samples[0] and 'RawFrameDecode' in ds.bad_samples[0]
    test_ds = build(data, test_mode=True, **kwargs)
    with pytest.raises(BadAVASampleError, match='traava00000: keyframe traava00000,0902: '
                       'cannot be loaded by RawFrameDecode'):
        test_ds[0]
    checked = build(data, test_mode=True, check_frames_on_init=True, **kwargs)
    assert len(checked) == 1 and checked[0]['data_samples'].metainfo['video_id'] == \
        'traava00001'
    assert checked.bad_samples[0].endswith('img_00060.jpg: frame not found (keyframe '
                                           'traava00000,0902)')
    with pytest.raises(BadAVASampleError, match='img_00060.jpg: frame not found'):
        build(data, check_frames_on_init=True, bad_sample='error', **kwargs)
    kin = build(data, AVAKineticsDatasetChecked, test_mode=True, check_frames_on_init=True,
                **kwargs)
    assert any(m.endswith('kinvid00000_000010_000015: frame directory not found (keyframe '
                          'kinvid00000_000010_000015,0012)') for m in kin.bad_samples)


def test_policy_validation(data):
    with pytest.raises(ValueError, match="unknown_label must be one of"):
        build(data, unknown_label='ignore')
    with pytest.raises(FileNotFoundError, match='proposal_file: file not found'):
        build(data, proposal_file='nope.pkl')
