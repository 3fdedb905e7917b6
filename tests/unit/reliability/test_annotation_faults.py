"""Bad annotation files (issue 21 item 4), each reproduced with a real file: the error names
``file:line`` (or file and video) and what was expected; the documented skip policies count."""
import json
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner

import vmae2_mm  # noqa: F401
from mmaction.models import I3DHead
from vmae2_mm.datasets import RecognitionVideoDataset

PIPELINE = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=4, frame_interval=2, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]


@pytest.fixture()
def clips(motion_clips):
    """Absolute paths of three real generated clips."""
    rel = [ln.split()[0] for ln in (motion_clips / 'train.txt').read_text().splitlines()[:3]]
    return [str(motion_clips / r) for r in rel]


def write_list(tmp_path, text, name='list.txt'):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


def build(ann, **kwargs):
    return RecognitionVideoDataset(ann, PIPELINE, **kwargs)


# ---------------------------------------------------------------- recognition lists: errors
@pytest.mark.parametrize('second_line, message', [
    ('{clip} x', r"list.txt:2: label 'x' is not an integer"),
    ('{clip} 2.5', r"list.txt:2: label '2.5' is not an integer"),
    ('{clip}', r'list.txt:2: expected .* no label'),
    ('{clip} -1', r'list.txt:2: label -1 outside \[0, 4\)'),
    ('{clip} 4', r'list.txt:2: label 4 outside \[0, 4\) \(num_classes=4\)'),
])
def test_bad_label_names_file_and_line(tmp_path, clips, second_line, message):
    ann = write_list(tmp_path, f'{clips[0]} 0\n' + second_line.format(clip=clips[1]) + '\n')
    with pytest.raises(ValueError, match=message):
        build(ann, num_classes=4)
    with pytest.raises(ValueError, match=message):
        build(ann, num_classes=4, test_mode=True)


def test_non_utf8_bytes_name_line_and_byte(tmp_path, clips):
    ann = write_list(tmp_path, f'{clips[0]} 0\n'.encode() + b'caf\xe9/clip.mp4 1\n')
    with pytest.raises(ValueError, match=r'list.txt:2: not UTF-8 \(byte 0xe9 at column 4\)'):
        build(ann)


@pytest.mark.parametrize('text', ['', '\n  \n\t\n'])
def test_empty_list(tmp_path, text):
    ann = write_list(tmp_path, text)
    with pytest.raises(ValueError, match='list.txt: the list is empty'):
        build(ann)


def test_line_numbers_count_blank_lines(tmp_path, clips):
    ann = write_list(tmp_path, f'\n{clips[0]} 0\n\n\n{clips[1]} one\n')
    with pytest.raises(ValueError, match="list.txt:5: label 'one'"):
        build(ann)


# --------------------------------------------------------- recognition lists: accepted forms
def test_tabs_double_spaces_and_paths_with_spaces(tmp_path, clips):
    spaced = tmp_path / 'my videos' / 'clip  one.mp4'
    spaced.parent.mkdir()
    shutil.copy(clips[2], spaced)
    ann = write_list(tmp_path, f'  {clips[0]}\t1\n\n{clips[1]}   2  \n{spaced} 3\r\n')
    ds = build(ann, num_classes=4)
    assert [(d['filename'], d['label']) for d in map(ds.get_data_info, range(len(ds)))] == [
        (clips[0], 1), (clips[1], 2), (str(spaced), 3)]
    assert ds[2]['inputs'].shape == (1, 3, 4, 32, 32)  # the path with spaces decodes
    assert ds.max_label == (3, f'{ann}:4')


def test_data_prefix_and_relative_path_with_space(tmp_path, clips):
    (tmp_path / 'a b').mkdir()
    shutil.copy(clips[0], tmp_path / 'a b' / 'c.mp4')
    ann = write_list(tmp_path, 'a b/c.mp4 0\n')
    ds = build(ann, data_prefix=dict(video=str(tmp_path)))
    assert ds.get_data_info(0)['filename'] == osp.join(str(tmp_path), 'a b/c.mp4')


def test_skip_policy_drops_and_counts_bad_lines(tmp_path, clips):
    ann = write_list(tmp_path, f'{clips[0]} 0\n{clips[1]} 9\n{clips[2]}\n{clips[2]} 1\n')
    for test_mode in (False, True):
        ds = build(ann, num_classes=4, on_bad_line='skip', test_mode=test_mode)
        assert [ds.get_data_info(i)['label'] for i in range(len(ds))] == [0, 1]
        assert [m.split(': ')[0] for m in ds.bad_lines] == [f'{ann}:2', f'{ann}:3']
    only_bad = write_list(tmp_path, f'{clips[0]} 7\n', name='bad.txt')
    with pytest.raises(ValueError, match=r'bad.txt: no usable line left \(1 skipped'):
        build(only_bad, num_classes=4, on_bad_line='skip')


# ------------------------------------------------- recognition lists: the model's head size
class _HeadModel(BaseModel):
    """Real trainable model with a real mmaction2 head (the hook reads ``cls_head``)."""

    def __init__(self, num_classes):
        super().__init__()
        self.cls_head = I3DHead(num_classes=num_classes, in_channels=3)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = torch.stack([i.float().mean(dim=(0, 2, 3, 4)) for i in inputs])  # [B, 3]
        scores = self.cls_head.fc_cls(x)  # [B, K]
        labels = torch.cat([s.gt_label for s in data_samples])
        return dict(loss=torch.nn.functional.cross_entropy(scores, labels))


def _runner(tmp_path, train_ann, val_ann, num_classes):
    loader = dict(sampler=dict(type='DefaultSampler', shuffle=False), batch_size=2,
                  num_workers=0, collate_fn=dict(type='pseudo_collate'))
    return Runner(
        model=_HeadModel(num_classes), work_dir=str(tmp_path / 'work'),
        train_dataloader=dict(loader, dataset=dict(type='RecognitionVideoDataset',
                                                   ann_file=train_ann, pipeline=PIPELINE)),
        val_dataloader=dict(loader, dataset=dict(type='RecognitionVideoDataset',
                                                 ann_file=val_ann, pipeline=PIPELINE,
                                                 test_mode=True)),
        val_evaluator=dict(type='AccMetric'), val_cfg=dict(),
        train_cfg=dict(by_epoch=True, max_epochs=1, val_begin=100),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.0)),
        default_hooks=dict(checkpoint=None),
        custom_hooks=[dict(type='DatasetModelCheckHook')], default_scope='mmaction')


def test_head_smaller_than_labels_fails_before_any_step(tmp_path, clips):
    train = write_list(tmp_path, f'{clips[0]} 0\n{clips[1]} 1\n', name='train.txt')
    val = write_list(tmp_path, f'{clips[0]} 0\n\n{clips[2]} 5\n', name='val.txt')
    # without the check this is cross_entropy's "Target 5 is out of bounds" (an IndexError)
    # in training, or a silently scored impossible label at validation
    runner = _runner(tmp_path, train, val, num_classes=3)
    with pytest.raises(ValueError, match=r'val.txt:3: label 5 does not exist for the model '
                       r'head \(num_classes=3'):
        runner.train()
    assert runner.iter == 0


def test_head_larger_than_labels_is_logged(tmp_path, clips):
    train = write_list(tmp_path, f'{clips[0]} 0\n{clips[1]} 1\n', name='train.txt')
    runner = _runner(tmp_path, train, train, num_classes=4)
    messages = []
    handler_level = runner.logger.level
    import logging

    class _Keep(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    keep = _Keep(logging.WARNING)
    runner.logger.addHandler(keep)
    try:
        runner.train()
    finally:
        runner.logger.removeHandler(keep)
        runner.logger.setLevel(handler_level)
    assert runner.iter == 1
    assert any('labels go up to 1 but the head has num_classes=4; classes 2..3 never appear'
               in m for m in messages)


# ---------------------------------------------------------------------------- AVA keyframes
@pytest.fixture(scope='module')
def mini_ava(tmp_path_factory):
    from vmae2_mm.testing.ava import generate_mini_ava
    root = tmp_path_factory.mktemp('ava_faults')
    return generate_mini_ava(str(root), num_train_videos=1, num_val_videos=1, seconds=5,
                             kinetics_clips=0, height=32, width=48, seed=0)


def _ava(data, ann, **kwargs):
    from vmae2_mm.datasets import AVAKeyframeDataset
    return AVAKeyframeDataset(
        ann_file=ann, label_file=data['label_file'],
        data_prefix=dict(img=osp.join(data['root'], 'rawframes')),
        pipeline=[dict(type='SampleAVAFrames', clip_len=4, frame_interval=2, test_mode=True),
                  dict(type='RawFrameDecode'),
                  dict(type='FormatShape', input_format='NCTHW', collapse=True),
                  dict(type='PackActionInputs')],
        timestamp_start=data['timestamp_start'], timestamp_end=data['timestamp_end'],
        **kwargs)


def test_ava_keyframe_outside_video_is_an_error_or_a_skip(mini_ava, tmp_path):
    lines = open(mini_ava['train_ann']).read().splitlines()
    vid, ts = lines[0].split(',')[:2]
    late = lines[0].replace(f'{vid},{ts},', f'{vid},{mini_ava["timestamp_end"] + 40},', 1)
    ann = write_list(tmp_path, '\n'.join(lines + [late]) + '\n', name='ava.csv')
    with pytest.raises(ValueError, match=rf'ava.csv:{len(lines) + 1}: keyframe {vid},'
                       rf'{mini_ava["timestamp_end"] + 40} is outside its video'):
        _ava(mini_ava, ann)
    ds = _ava(mini_ava, ann, keyframe_outside='skip', test_mode=True)
    assert ds.counts['keyframes_outside_video'] == 1
    assert len(ds) == len({tuple(ln.split(',')[:2]) for ln in lines})
    # what is left are real clips: 4 different frames around each keyframe, not one repeated
    clip = ds[0]['inputs']  # [3, 4, H, W]
    assert all(not torch.equal(clip[:, i], clip[:, i + 1]) for i in range(3))


# ------------------------------------------------------------------------------- TAD JSON
def _tad(tmp_path, videos, metas=None, label_id=0, **kwargs):
    """ActionFormer JSON + ``.npy`` features (+ the metadata JSON extract_features writes).

    ``videos``: vid -> (duration s, fps, segments, T, C); ``metas``: vid -> metadata dict.
    """
    from mmaction.registry import DATASETS
    database, fdir = {}, tmp_path / 'feats'
    fdir.mkdir(exist_ok=True)
    for vid, (duration, fps, segments, t, c) in videos.items():
        database[vid] = dict(subset='Validation', duration=duration, fps=fps, annotations=[
            dict(segment=list(s), label='Jump', label_id=label_id) for s in segments])
        np.save(fdir / f'{vid}.npy', np.zeros((t, c), np.float32))
    for vid, meta in (metas or {}).items():
        (fdir / f'{vid}.json').write_text(json.dumps(meta))
    ann = tmp_path / 'tad.json'
    ann.write_text(json.dumps(dict(database=database)))
    cfg = dict(type='Thumos14FeatureDataset', ann_file=str(ann), feat_dir=str(fdir),
               subset='validation')
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def _meta(frames, fps, clip_len=16, stride=4):
    return dict(video='v.mp4', frames=frames, fps=fps, clip_len=clip_len, stride=stride,
                num_features=(frames - clip_len) // stride + 1)


# 20 s at 30 fps, clips of 16 frames every 4: (600 - 16) // 4 + 1 = 147 features
GOOD = (20.0, 30.0, [(1.0, 3.0)], 147, 8)


def test_tad_segments_outside_duration_clip_or_error(tmp_path):
    videos = dict(v=(20.0, 30.0, [(-1.0, 2.0), (5.0, 7.0), (18.0, 25.0), (21.0, 22.0)], 147, 8))
    ds = _tad(tmp_path, videos)
    np.testing.assert_array_equal(ds.get_data_info(0)['gt_segments_seconds'],
                                  [[0.0, 2.0], [5.0, 7.0], [18.0, 20.0]])
    assert (ds.counts['clipped_segments'], ds.counts['dropped_segments']) == (3, 1)
    with pytest.raises(ValueError, match=r"tad.json: video 'v': annotations\[0\] segment "
                       r'\[-1.0, 2.0\] s leaves \[0, duration=20.0\]'):
        _tad(tmp_path, videos, bad_segments='error')


def test_tad_feature_length_vs_duration_fps_stride(tmp_path):
    assert len(_tad(tmp_path, dict(v=(20.0, 30.0, [(1, 3)], 147 - 7, 8)))) == 1  # 5%: 7.35
    with pytest.raises(ValueError, match=r"v.npy: video 'v' has 73 features, but duration 20.0 "
                       r's x fps 30 with clip_len 16 / stride 4 gives 147'):
        _tad(tmp_path, dict(v=(20.0, 30.0, [(1, 3)], 73, 8)))  # stride-8 features


def test_tad_fps_in_json_vs_feature_metadata(tmp_path):
    with pytest.raises(ValueError, match=r"v.json: video 'v' was decoded at fps=25.0 but "
                       r'.*tad.json says fps=30.0'):
        _tad(tmp_path, dict(v=GOOD), dict(v=_meta(500, 25.0)))
    assert len(_tad(tmp_path, dict(v=GOOD), dict(v=_meta(600, 29.97)))) == 1  # within 1%


def test_tad_reads_timing_from_metadata_and_raises_on_mismatch(tmp_path):
    with pytest.raises(ValueError, match=r"v.json: features of video 'v' were extracted with "
                       r'stride=8 but the dataset config has feat_stride=4'):
        _tad(tmp_path, dict(v=GOOD), dict(v=_meta(600, 30.0, stride=8)))
    with pytest.raises(ValueError, match=r'clip_len=32 but the dataset config has '
                       r'feat_num_frames=16'):
        _tad(tmp_path, dict(v=GOOD), dict(v=_meta(600, 30.0, clip_len=32)))
    # a resampled grid: features at 10 fps (stride 4 at 10 fps), video at 30 fps
    grid = dict(_meta(600, 30.0), grid_fps=10.0)
    ds = _tad(tmp_path, dict(v=(20.0, 30.0, [(1, 3)], (200 - 16) // 4 + 1, 8)), dict(v=grid))
    assert ds.get_data_info(0)['fps'] == 10.0


def test_tad_without_metadata_uses_config_and_logs_once(tmp_path):
    import logging
    from mmengine.logging import MMLogger
    messages = []

    class _Keep(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    logger = MMLogger.get_current_instance()
    keep = _Keep(logging.INFO)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(keep)
    try:
        ds = _tad(tmp_path, dict(a=GOOD, b=GOOD))
    finally:
        logger.removeHandler(keep)
        logger.setLevel(old_level)
    hits = [m for m in messages if 'have no metadata JSON' in m]
    assert len(hits) == 1 and hits[0].startswith('Thumos14FeatureDataset: 2 feature files')
    assert 'feat_stride=4, feat_num_frames=16' in hits[0]
    assert ds.get_data_info(0)['feat_stride'] == 4.0


def test_tad_feature_width_names_the_video(tmp_path):
    with pytest.raises(ValueError, match=r"v.npy: features of video 'v' are 8 wide, the model "
                       r'expects feat_dim=1408'):
        _tad(tmp_path, dict(v=GOOD), feat_dim=1408)
    with pytest.raises(ValueError, match=r"b.npy: features of video 'b' are 6 wide but .*a.npy "
                       r'is 8 wide'):
        _tad(tmp_path, dict(a=GOOD, b=GOOD[:4] + (6, )))


def test_tad_no_annotations_in_subset_is_worded_truthfully(tmp_path):
    videos = dict(a=(20.0, 30.0, [], 147, 8), b=(20.0, 30.0, [], 147, 8))
    with pytest.raises(ValueError, match=r"none of the 2 videos of subset \['validation'\] .* "
                       r'is usable: 2 have no annotation \(dropped because filter_empty_gt'):
        _tad(tmp_path, videos)
    assert len(_tad(tmp_path, videos, test_mode=True)) == 2
    with pytest.raises(ValueError, match=r"no video of subset \['test'\] in .*tad.json "
                       r"\(subsets present: \['Validation'\]\)"):
        _tad(tmp_path, videos, subset='test')


def test_tad_non_finite_features_named_by_file(tmp_path):
    ds = _tad(tmp_path, dict(v=GOOD), pipeline=[dict(type='LoadTADFeatures')])
    feats = np.zeros((147, 8), np.float32)
    feats[10, 3], feats[20] = np.nan, np.inf
    np.save(tmp_path / 'feats' / 'v.npy', feats)
    with pytest.raises(ValueError, match=r'v.npy: 9 NaN/inf feature values in 2 of 147 time '
                       r'steps \(first at step 10\)'):
        ds[0]


def test_tad_feature_width_vs_the_localizer(tmp_path, repo_root):
    from mmaction.registry import MODELS
    from mmengine.config import Config
    from vmae2_mm.datasets.model_checks import DatasetModelCheckHook, input_channels
    cfg = Config.fromfile(str(repo_root / 'configs' / 'localization' /
                              'actionformer_tiny_1xb2-5+35e_mini-thumos.py'))
    model = MODELS.build(cfg.model)  # in_channels 64, 4 classes
    assert input_channels(model) == 64
    wide = _tad(tmp_path, dict(v=GOOD[:4] + (32, )))
    with pytest.raises(ValueError, match=r'v.npy: train features are 32 wide but the model '
                       r'takes in_channels=64'):
        DatasetModelCheckHook._check_features('train', wide, model, 4)
    ok = _tad(tmp_path, dict(v=GOOD[:4] + (64, )))
    DatasetModelCheckHook._check_features('train', ok, model, 4)
    five = _tad(tmp_path, dict(v=GOOD[:4] + (64, )), label_id=4)
    with pytest.raises(ValueError, match=r'tad.json: test annotations have 5 classes '
                       r'\(label_id up to 4\) but the head has num_classes=4'):
        DatasetModelCheckHook._check_features('test', five, model, 4)


def test_tad_default_fps_uses_metadata_or_skips_the_length_check(tmp_path):
    from mmaction.registry import DATASETS
    _tad(tmp_path, dict(v=GOOD))  # writes the files; then the annotation loses its fps
    ann = json.loads((tmp_path / 'tad.json').read_text())
    del ann['database']['v']['fps']
    (tmp_path / 'tad.json').write_text(json.dumps(ann))
    kwargs = dict(type='Thumos14FeatureDataset', ann_file=str(tmp_path / 'tad.json'),
                  feat_dir=str(tmp_path / 'feats'), subset='validation', default_fps=15.0)
    ds = DATASETS.build(kwargs)  # 147 features do not fit 15 fps, but 15 is only a guess
    assert ds.counts['length_unchecked'] == 1 and ds.get_data_info(0)['fps'] == 15.0
    (tmp_path / 'feats' / 'v.json').write_text(json.dumps(_meta(600, 30.0)))
    ds = DATASETS.build(kwargs)  # the metadata's fps is the truth
    assert ds.counts['length_unchecked'] == 0 and ds.get_data_info(0)['fps'] == 30.0
