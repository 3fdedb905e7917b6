"""TAD on raw videos: SRT / JSON formats exactly, grid -> seconds, parity of the in-memory
path with extract_features.py + the feature dataset (what tools/test.py runs), the feature
cache, batches past bad videos and the timeline PNG (random-weight tiny models)."""
import json
import os

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from tests.conftest import REPO_ROOT, run_python
from vmae2_mm.apis.feature_extraction import build_extractor_from_config, extract_videos
from vmae2_mm.apis.inference_localizer import (VideoLocalizer, anet_results, build_localizer,
                                               class_colour, draw_timeline, feature_meta,
                                               format_table, localize_videos,
                                               localizer_class_names, srt_time, to_srt)

TAD_CONFIG = str(REPO_ROOT / 'configs/localization/actionformer_tiny_1xb2-5+35e_mini-thumos.py')
TINY_VIT = dict(type='VideoMAEv2ViT', arch=dict(embed_dims=64, depth=2, num_heads=2,
                                                 mlp_ratio=2.0),
                img_size=32, num_frames=16, pos_embed_grid_from=None)
NAMES = ['action_00_disc', 'action_01_square', 'action_02_ring', 'action_03_disc']


def test_srt_time_exact():
    assert srt_time(0) == '00:00:00,000'
    assert srt_time(3661.2346) == '01:01:01,235'
    assert srt_time(59.9996) == '00:01:00,000'
    assert srt_time(-0.2) == '00:00:00,000'


SEGS = [dict(label=1, name='jump', score=0.9, segment=[12.5, 14.0]),
        dict(label=0, name='run', score=0.25, segment=[1.0, 2.0]),
        dict(label=0, name='run', score=0.5, segment=[3.0, 7.25])]


def test_srt_format_exact():
    assert to_srt(SEGS, min_score=0.3) == (
        '1\n00:00:03,000 --> 00:00:07,250\nrun (0.50)\n\n'
        '2\n00:00:12,500 --> 00:00:14,000\njump (0.90)\n')
    assert to_srt(SEGS, min_score=0.95) == ''


def test_anet_json_schema_exact():
    rec = dict(video_id='v1', segments=[dict(label=1, name='jump', score=0.91234567,
                                             segment=[12.34567, 14.0])])
    assert anet_results([rec, dict(video_id='v2', segments=[])]) == dict(
        version='vmae2_mm',
        results=dict(v1=[dict(label='jump', score=0.912346, segment=[12.346, 14.0])], v2=[]),
        external_data={})


def test_grid_to_seconds_of_the_feature_meta():
    """Feature i covers frames [4i, 4i + 16): its centre 4i + 8 frames is grid point i."""
    model, _ = build_localizer(TAD_CONFIG, None)
    meta = feature_meta('v', num_frames=200, fps=10.0, clip_len=16, stride=4)
    assert (meta['duration'], meta['feat_stride'], meta['offset_frames']) == (20.0, 4.0, 8.0)
    secs = model._to_seconds(meta)(torch.tensor([0.0, 10.0, 2.5, 60.0]))
    # (g * 4 + 8) / 10, clamped to the 20 s duration
    assert secs.tolist() == pytest.approx([0.8, 4.8, 1.8, 20.0])


def test_class_names_checked_against_the_head(tmp_path):
    cfg = Config.fromfile(TAD_CONFIG)
    assert localizer_class_names(cfg) == [f'class_{i}' for i in range(4)]  # no ann file
    labels = tmp_path / 'labels.txt'
    labels.write_text('a\nb\nc\n')
    with pytest.raises(ValueError, match=r'labels\.txt: 3 class names, .* 4 classes'):
        localizer_class_names(cfg, str(labels))


@pytest.fixture(scope='module')
def tad_setup(tmp_path_factory):
    """Two generated test videos, a random tiny ViT extractor, its features written by
    extract_videos (as tools/extract_features.py) and channel statistics."""
    from vmae2_mm.testing.thumos import generate_mini_thumos
    root = tmp_path_factory.mktemp('tad_infer')
    data = generate_mini_thumos(str(root / 'data'), num_val=0, num_test=2, num_classes=4,
                                size=32, fps=10.0, min_duration=12.0, max_duration=16.0,
                                num_corrupt=1, seed=3)
    ext_cfg = Config(dict(model=TINY_VIT, feature_extraction=dict(stride=4, batch_size=16)))
    torch.manual_seed(0)
    extractor = build_extractor_from_config(ext_cfg, None)
    vit_ckpt = root / 'vit.pth'
    torch.save(dict(model=extractor.model.state_dict()), vit_ckpt)
    feat_dir = root / 'features'
    videos = sorted(data['videos'].values())
    extract_videos(extractor, videos, str(feat_dir), progress=False)
    feats = np.concatenate([np.load(feat_dir / f'{os.path.basename(v)[:-4]}.npy')
                            for v in videos])
    stats = feat_dir / 'channel_stats.npz'
    np.savez(stats, mean=feats.mean(0), std=feats.std(0) + 1e-3)
    torch.manual_seed(1)
    model, cfg = build_localizer(TAD_CONFIG, None)
    return dict(data=data, extractor=extractor, ext_cfg=ext_cfg, vit_ckpt=str(vit_ckpt),
                feat_dir=feat_dir, stats=str(stats), videos=videos, model=model, cfg=cfg)


def test_in_memory_path_equals_feature_files_and_dataset(tad_setup):
    from mmaction.registry import DATASETS
    s = tad_setup
    runner = VideoLocalizer(s['model'], s['cfg'], s['extractor'], NAMES, s['stats'])
    ds_cfg = s['cfg'].test_dataloader.dataset.copy()
    ds_cfg.update(data_root='', ann_file=s['data']['ann_file'], feat_dir=str(s['feat_dir']),
                  subset='test')
    dataset = DATASETS.build(ds_cfg)
    assert len(dataset) == 2
    for i, video in enumerate(s['videos']):
        feats, info = runner.features(video)
        vid = os.path.basename(video)[:-4]
        np.testing.assert_array_equal(feats, np.load(s['feat_dir'] / f'{vid}.npy'))
        rec = runner(video)
        assert rec['video_id'] == vid and rec['duration'] == info['frames'] / 10.0
        sample = dataset[i]
        assert sample['data_samples'].metainfo['video_id'] == vid
        with torch.no_grad():
            ref = s['model'].test_step(dict(inputs=[sample['inputs']],
                                            data_samples=[sample['data_samples']]))[0]
        ref = ref.pred_instances
        order = torch.argsort(ref.scores, descending=True, stable=True)
        assert len(rec['segments']) == len(order) > 0
        np.testing.assert_allclose([x['segment'] for x in rec['segments']],
                                   ref.segments[order].numpy(), atol=1e-5)
        np.testing.assert_allclose([x['score'] for x in rec['segments']],
                                   ref.scores[order].numpy(), atol=1e-6)
        assert [x['label'] for x in rec['segments']] == ref.labels[order].tolist()
        assert all(0 <= x['segment'][0] <= x['segment'][1] <= rec['duration']
                   for x in rec['segments'])


def test_standardising_config_needs_the_stats(tad_setup):
    s = tad_setup
    with pytest.raises(ValueError, match=r"standardises features with 'channel_stats.npz'"):
        VideoLocalizer(s['model'], s['cfg'], s['extractor'], NAMES)


def test_feature_cache_is_written_and_reused(tad_setup, tmp_path):
    import shutil
    s = tad_setup
    video = str(tmp_path / 'copy.mp4')
    shutil.copy(s['videos'][0], video)
    cache = tmp_path / 'cache'
    runner = VideoLocalizer(s['model'], s['cfg'], s['extractor'], NAMES, s['stats'],
                            str(cache))
    first = runner(video)
    meta = json.loads((cache / 'copy.json').read_text())
    ref_meta = json.loads((s['feat_dir'] / (os.path.basename(s['videos'][0])[:-4] + '.json'))
                          .read_text())
    assert set(meta) == set(ref_meta)  # the keys extract_features.py writes
    assert meta['shape'] == list(np.load(cache / 'copy.npy').shape)
    os.remove(video)  # now only the cache can give the features
    second = runner(video)
    assert second['segments'] == first['segments']


def test_timeline_png_bars_where_the_segments_are(tmp_path):
    rec = dict(video_id='v', duration=20.0, segments=[
        dict(label=0, name='a', score=0.9, segment=[2.0, 6.0]),
        dict(label=2, name='c', score=0.8, segment=[10.0, 18.0]),
        dict(label=1, name='b', score=0.1, segment=[0.0, 20.0])])  # below min_score
    path = str(tmp_path / 't.png')
    draw_timeline(rec, ['a', 'b', 'c'], path, min_score=0.3)
    img = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB).astype(int)
    w = img.shape[1]
    x0, x1 = 0.22 * w, 0.96 * w  # the axes span; 0 s .. 20 s

    def columns(label):
        hit = (np.abs(img - class_colour(label)).sum(-1) <= 3)
        cols = np.flatnonzero(hit.sum(0) >= 5)  # bars are rows of >= 5 px
        return cols

    a, c = columns(0), columns(2)
    assert len(columns(1)) == 0  # the low-score segment is not drawn
    assert abs(a.min() - (x0 + 2 / 20 * (x1 - x0))) <= 2
    assert abs(a.max() - (x0 + 6 / 20 * (x1 - x0))) <= 2
    assert abs(c.min() - (x0 + 10 / 20 * (x1 - x0))) <= 2
    assert abs(c.max() - (x0 + 18 / 20 * (x1 - x0))) <= 2
    # class a's row is above class c's
    rows_a = np.flatnonzero((np.abs(img - class_colour(0)).sum(-1) <= 3).sum(1) >= 5)
    rows_c = np.flatnonzero((np.abs(img - class_colour(2)).sum(-1) <= 3).sum(1) >= 5)
    assert rows_a.max() < rows_c.min()


def test_table_lists_segments_in_time_order():
    table = format_table([dict(video_id='v1', segments=SEGS), dict(video_id='v2',
                                                                   segments=[])], 0.3)
    lines = table.splitlines()
    assert lines[1].split() == ['v1', '3.00', '7.25', '0.500', 'run']
    assert lines[2].split() == ['v1', '12.50', '14.00', '0.900', 'jump']
    assert lines[3].startswith('v2') and 'no segment' in lines[3]


def test_cli_batch_continues_past_bad_videos(tad_setup, tmp_path):
    s = tad_setup
    ckpt = tmp_path / 'af.pth'
    torch.save(dict(state_dict=s['model'].state_dict()), ckpt)
    ext_cfg = tmp_path / 'extract.py'
    ext_cfg.write_text(f'model = {TINY_VIT!r}\nfeature_extraction = dict(stride=4)\n')
    listing = tmp_path / 'videos.txt'
    listing.write_text('\n'.join([s['videos'][0], str(tmp_path / 'missing.mp4'),
                                  s['data']['corrupt'][0], s['videos'][1]]) + '\n')
    out = tmp_path / 'out'
    proc = run_python(['tools/infer_localizer.py', str(listing), TAD_CONFIG, str(ckpt),
                       '--extractor-config', str(ext_cfg), '--extractor-checkpoint',
                       s['vit_ckpt'], '--feat-stats', s['stats'], '--out-dir', str(out),
                       '--min-score', '0.0', '--no-progress'], timeout=300)
    text = proc.stdout
    assert '2 videos localised' in text and '2 videos FAILED' in text
    assert 'missing.mp4' in text and 'video_corrupt_0000001.mp4' in text
    results = json.loads((out / 'results.json').read_text())['results']
    vids = [os.path.basename(v)[:-4] for v in s['videos']]
    assert sorted(results) == vids
    for vid in vids:
        assert json.loads((out / f'{vid}.json').read_text())['results'][vid] == results[vid]
        assert (out / f'{vid}.srt').read_text().startswith('1\n00:00:')
        assert cv2.imread(str(out / f'{vid}_timeline.png')) is not None
    failures = json.loads((out / 'failures.json').read_text())
    assert [os.path.basename(f['video']) for f in failures] == ['missing.mp4',
                                                                'video_corrupt_0000001.mp4']
