"""tools/extract_features.py on real generated mp4s with a tiny VideoMAE V2 ViT."""
import glob
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import vmae2_mm  # noqa: F401
from vmae2_mm.apis.feature_extraction import atomic_save_npy, build_extractor_from_config
from vmae2_mm.testing.recognition import write_mp4
from vmae2_mm.testing.thumos import generate_mini_thumos
from vmae2_mm.models.backbones import VideoMAEv2ViT
from tests.conftest import load_script

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
TINY = dict(type='VideoMAEv2ViT', arch=dict(embed_dims=32, depth=2, num_heads=2, mlp_ratio=2.0),
            img_size=32, num_frames=16, pos_embed_grid_from=None)


def load_tool():
    return load_script('tools/extract_features.py')


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('tad_extract')
    data = generate_mini_thumos(str(root / 'data'), num_val=1, num_test=2, num_classes=2,
                                size=32, fps=10.0, min_duration=5.0, max_duration=8.0,
                                num_corrupt=1, seed=3)
    # 12 frames < one 16-frame clip
    write_mp4(osp.join(data['video_dir'], 'short_clip.mp4'),
              np.full((12, 32, 32, 3), 128, np.uint8), fps=10.0)
    cfg = root / 'tiny_extract.py'
    cfg.write_text(f'model = {TINY!r}\n'
                   'feature_extraction = dict(stride=4, batch_size=3, chunk_frames=20)\n')
    torch.manual_seed(0)
    model = VideoMAEv2ViT(**{k: v for k, v in TINY.items() if k != 'type'})
    ckpt = root / 'tiny_k710_ft.pth'
    # official fine-tuned layout: nested under "model", with a classification head
    sd = dict(model.state_dict(), **{'head.weight': torch.zeros(5, 32),
                                     'head.bias': torch.zeros(5)})
    torch.save(dict(model=sd), ckpt)
    return dict(root=root, data=data, cfg=str(cfg), ckpt=str(ckpt), model=model)


def reference_features(model, path, stride=4, clip_len=16, size=32):
    """The official loop: decode each clip separately, /255, resize [C, T, H, W], batch 1."""
    from decord import VideoReader
    vr = VideoReader(path, num_threads=1)
    out = []
    for s in range(0, len(vr) - clip_len + 1, stride):
        x = torch.from_numpy(vr.get_batch(list(range(s, s + clip_len))).asnumpy()).float() / 255
        x = F.interpolate(x.permute(3, 0, 1, 2), size=(size, size), mode='bilinear',
                          align_corners=False)
        with torch.no_grad():
            out.append(model.eval()(x[None]))
    return torch.cat(out).numpy(), len(vr)


def test_extract_shapes_values_failures_and_resume(setup, tmp_path):
    tool = load_tool()
    out = tmp_path / 'feats'
    args = [setup['cfg'], setup['ckpt'], '--videos', setup['data']['video_dir'], '--out',
            str(out), '--no-progress']
    assert tool.main(args) == 0
    videos = setup['data']['videos']
    for vid, path in videos.items():
        feats = np.load(out / f'{vid}.npy')
        ref, frames = reference_features(setup['model'], path)
        assert feats.dtype == np.float32
        assert feats.shape == ((frames - 16) // 4 + 1, 32)
        np.testing.assert_allclose(feats, ref, rtol=1e-4, atol=1e-5)
        meta = json.loads((out / f'{vid}.json').read_text())
        assert (meta['frames'], meta['clip_len'], meta['stride'], meta['num_features']) == (
            frames, 16, 4, feats.shape[0])
        assert meta['fps'] == pytest.approx(10.0)
        assert meta['preprocessing']['mode'] == 'official'
        # every frame up to the last clip's end is decoded exactly once
        assert meta['frames_decoded'] == (feats.shape[0] - 1) * 4 + 16
        # real clip times from the container: clip i spans frames [4i, 4i + 16) at 10 fps
        assert meta['vfr'] is False
        np.testing.assert_allclose(meta['clip_times_s'],
                                   [[0.4 * i, 0.4 * i + 1.6] for i in range(feats.shape[0])],
                                   atol=1e-3)
    report = json.loads((out / 'failures.json').read_text())
    failed = {osp.basename(f['video']): f for f in report['failures']}
    assert set(failed) == {'video_corrupt_0000001.mp4', 'short_clip.mp4'}
    assert failed['short_clip.mp4']['error'] == 'TooShortVideoError'
    assert '12 frames' in failed['short_clip.mp4']['reason']
    assert (report['done'], report['failed']) == (3, 2)
    assert not (out / 'short_clip.npy').exists()
    assert sorted(p for p in os.listdir(out) if '.tmp' in p) == []

    # resume: finished videos are skipped (files untouched), a deleted one is redone
    first = sorted(videos)[0]
    mtimes = {v: os.stat(out / f'{v}.npy').st_mtime_ns for v in videos}
    os.remove(out / f'{first}.npy')
    (out / f'{first}.npy.tmp.99999').write_bytes(b'partial write of a killed run')
    assert tool.main(args) == 0
    report = json.loads((out / 'failures.json').read_text())
    assert (report['done'], report['skipped'], report['failed']) == (1, 2, 2)
    for v in videos:
        if v != first:
            assert os.stat(out / f'{v}.npy').st_mtime_ns == mtimes[v]
    assert np.load(out / f'{first}.npy').shape[1] == 32


def test_shards_split_the_work(setup, tmp_path):
    tool = load_tool()
    out = tmp_path / 'feats'
    listing = tmp_path / 'videos.txt'
    names = sorted(osp.basename(p) for p in setup['data']['videos'].values())
    listing.write_text('# video list\n' + '\n'.join(names) + '\n')
    common = [setup['cfg'], setup['ckpt'], '--videos', str(listing), '--video-root',
              setup['data']['video_dir'], '--out', str(out), '--no-progress', '--stride', '16']
    tool.main(common + ['--shard', '0/2'])
    part0 = sorted(p for p in os.listdir(out) if p.endswith('.npy'))
    assert part0 == [names[0].replace('.mp4', '.npy'), names[2].replace('.mp4', '.npy')]
    tool.main(common + ['--shard', '1/2'])
    assert sorted(p for p in os.listdir(out) if p.endswith('.npy')) == [
        n.replace('.mp4', '.npy') for n in names]
    assert (out / 'failures.shard0of2.json').exists() and (out / 'failures.shard1of2.json').exists()
    meta = json.loads((out / names[1].replace('.mp4', '.json')).read_text())
    assert meta['stride'] == 16 and meta['num_features'] == (meta['frames'] - 16) // 16 + 1


def test_bf16_autocast_is_close_to_fp32(setup):
    from mmengine.config import Config
    cfg = Config.fromfile(setup['cfg'])
    path = sorted(setup['data']['videos'].values())[0]
    fp32, _ = build_extractor_from_config(cfg, setup['ckpt']).extract(path)
    bf16, info = build_extractor_from_config(cfg, setup['ckpt'], dict(amp='bf16')).extract(path)
    assert bf16.dtype == np.float32 and bf16.shape == fp32.shape
    # features are LayerNorm outputs (unit scale): bf16 keeps ~2-3 significant digits
    assert np.abs(bf16 - fp32).max() < 0.1
    assert np.corrcoef(bf16.ravel(), fp32.ravel())[0, 1] > 0.999


def test_config_errors(setup, tmp_path):
    from mmengine.config import Config
    cfg = Config.fromfile(setup['cfg'])
    with pytest.raises(ValueError, match='clip_len=8 differs'):
        build_extractor_from_config(cfg, None, dict(clip_len=8))
    with pytest.raises(ValueError, match='preprocess must be one of'):
        build_extractor_from_config(cfg, None, dict(preprocess='imagenet'))
    with pytest.raises(ValueError, match='unknown keys'):
        build_extractor_from_config(cfg, None, dict(strides=4))
    bad = tmp_path / 'bad.pth'
    torch.save(dict(model={'blocks.0.attn.qkv.weight': torch.zeros(3, 3)}), bad)
    with pytest.raises(ValueError, match='shape mismatch'):
        build_extractor_from_config(cfg, str(bad))


def test_atomic_save_leaves_no_partial_file(tmp_path):
    target = tmp_path / 'x.npy'
    # object arrays are refused after the header has been written: a real mid-write failure
    with pytest.raises(ValueError, match='Object arrays'):
        atomic_save_npy(str(target), np.array([object()], dtype=object))
    assert os.listdir(tmp_path) == []
    atomic_save_npy(str(target), np.ones((3, 2), np.float32))
    assert os.listdir(tmp_path) == ['x.npy']
    np.testing.assert_array_equal(np.load(target), np.ones((3, 2)))


def test_chain_extract_dataset_metric(setup, tmp_path):
    """Generated videos -> extracted features -> dataset samples -> oracle predictions on the
    feature grid -> seconds -> metric: the round trip must give 100 mAP."""
    from mmaction.registry import DATASETS
    from mmengine.registry import init_default_scope

    from vmae2_mm.utils.tad_time import grid_to_seconds
    from vmae2_mm.evaluation.tad_metric import TADmAPMetric
    init_default_scope('mmaction')
    out = tmp_path / 'feats'
    load_tool().main([setup['cfg'], setup['ckpt'], '--videos', setup['data']['video_dir'],
                      '--out', str(out), '--no-progress'])
    ds = DATASETS.build(dict(
        type='Thumos14FeatureDataset', ann_file=setup['data']['ann_file'], feat_dir=str(out),
        subset='test', test_mode=True,
        pipeline=[dict(type='LoadTADFeatures'), dict(type='PackTADInputs')]))
    assert len(ds) == 2
    metric = TADmAPMetric(ann_file=setup['data']['ann_file'], subset='test')
    for i in range(len(ds)):
        item = ds[i]
        s = item['data_samples']
        frames = json.loads((out / f'{s.video_id}.json').read_text())['frames']
        assert item['inputs'].shape == (32, (frames - 16) // 4 + 1) == (32, s.feat_len)
        segs = s.gt_instances.segments
        pred = s.clone()
        pred.pred_instances = s.gt_instances.new(
            segments=grid_to_seconds(segs, s.fps, s.feat_stride, s.offset_frames, s.duration),
            scores=torch.linspace(0.9, 0.5, len(segs)), labels=s.gt_instances.labels)
        metric.process(None, [pred])
    res = metric.evaluate(len(ds))
    assert res['mAP/avg'] == pytest.approx(100.0)


FE_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'localization', 'feature_extraction', '*.py')))


@pytest.mark.parametrize('path', FE_CONFIGS, ids=[osp.basename(p) for p in FE_CONFIGS])
def test_feature_extraction_configs(path):
    from mmengine.config import Config

    from vmae2_mm.models.backbones import resolve_arch
    cfg = Config.fromfile(path)
    name = osp.basename(path)
    backbone = cfg.model.backbone if 'backbone' in cfg.model else cfg.model
    arch = resolve_arch(backbone.arch)
    expect = {'vit-small-p16': (384, 16), 'vit-base-p16': (768, 16), 'vit-giant-p14': (1408, 14)}
    assert (arch['embed_dims'], arch['patch_size']) == expect[name.split('_')[0]]
    fe = cfg.feature_extraction
    stride = 4 if ('thumos-14' in name or 'mini-thumos' in name) else 16
    assert f'feat-16x{stride}' in name
    # released-feature recipes reproduce the official preprocessing; the demo one matches the
    # normalisation its recognizer was trained with
    demo = 'synthetic-motion' in name
    size, mode = (64, 'normalized') if demo else (224, 'official')
    assert (fe.clip_len, fe.stride, fe.img_size, fe.preprocess) == (16, stride, size, mode)
    # features are fc_norm(mean(tokens)) (mean pooling is the backbone default)
    assert backbone.get('use_mean_pooling', True)
    assert backbone.num_frames == 16 and backbone.img_size == size
    # the full recipe builds (with a tiny width so that the test stays cheap)
    backbone.arch = dict(embed_dims=16, depth=1, num_heads=1, mlp_ratio=1.0,
                         patch_size=arch['patch_size'])
    ex = build_extractor_from_config(cfg, None)
    assert (ex.clip_len, ex.stride, ex.img_size, ex.preprocess_mode) == (16, stride, size, mode)


@pytest.mark.parametrize('stride,batch_size,chunk_frames', [(4, 3, 20), (4, 16, 16), (5, 2, 17),
                                                            (24, 2, 18)])
def test_features_bit_identical_to_the_official_loop(setup, tmp_path, stride, batch_size,
                                                     chunk_frames):
    """fp32 'official' preprocessing resizes the channel-major [3, T, H, W] frames as the
    official clip loop does, so every clip tensor is equal bit for bit, whatever the chunking,
    batching and stride (including stride > clip_len, where frames between clips are skipped).
    The model runs clip by clip here so that only the inputs are compared (a batched GEMM may
    round differently from batch 1 on some CPUs)."""
    from vmae2_mm.apis.feature_extraction import ClipFeatureExtractor

    class OneByOne(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, clips):      # [B, 3, 16, S, S] -> [B, C]
            return torch.cat([self.model(c[None]) for c in clips])

    # 40x56 frames: the squash-resize to 32x32 runs (both axes, different factors)
    path = str(tmp_path / 'wide.mp4')
    rng = np.random.default_rng(stride)
    write_mp4(path, rng.integers(0, 256, (70, 40, 56, 3), dtype=np.uint8), fps=10.0)
    ex = ClipFeatureExtractor(OneByOne(setup['model']), clip_len=16, stride=stride, img_size=32,
                              batch_size=batch_size, chunk_frames=chunk_frames)
    feats, info = ex.extract(path)
    ref, frames = reference_features(setup['model'], path, stride=stride)
    assert feats.shape == ref.shape == ((frames - 16) // stride + 1, 32)
    np.testing.assert_array_equal(feats, ref)
    assert info['frames_decoded'] == (feats.shape[0] - 1) * stride + 16


def test_variable_frame_rate_video_records_real_clip_times(tmp_path):
    """30 fps for 1 s then 10 fps for 2 s: features stay on the frame grid, and the metadata
    gives each clip's real start/end from the container's timestamps."""
    from mmengine.config import Config
    from vmae2_mm.testing.video_variants import write_variants
    variant = write_variants(str(tmp_path), ['vfr'])['vfr']
    cfg = Config(dict(model=dict(TINY, img_size=32),
                      feature_extraction=dict(stride=4, batch_size=4)))
    feats, info = build_extractor_from_config(cfg, None).extract(variant['path'])
    ts = np.asarray(variant['timestamps'])
    assert info['vfr'] is True and feats.shape[0] == (50 - 16) // 4 + 1
    starts = np.asarray(info['clip_times_s'])[:, 0]
    np.testing.assert_allclose(starts, ts[np.arange(feats.shape[0]) * 4], atol=2e-3)
    # the last clip (frames 32..47) lies in the 10 fps part: 1.6 s of frames, not 0.53 s
    end_frame = (feats.shape[0] - 1) * 4 + 15
    assert info['clip_times_s'][-1][1] == pytest.approx(ts[end_frame] + 0.1, abs=2e-3)


def _features_of_source_frames(model, path, index, stride=4, clip_len=16, size=32):
    """The official per-clip loop over the grid frames ``index`` (source frame numbers)."""
    from decord import VideoReader
    frames = VideoReader(path, num_threads=1).get_batch(list(map(int, index))).asnumpy()
    x = torch.from_numpy(frames).float() / 255
    out = []
    for s in range(0, len(index) - clip_len + 1, stride):
        clip = F.interpolate(x[s:s + clip_len].permute(3, 0, 1, 2), size=(size, size),
                             mode='bilinear', align_corners=False)
        with torch.no_grad():
            out.append(model.eval()(clip[None]))
    return torch.cat(out).numpy()


def test_fps_resampling_puts_features_on_a_fixed_time_grid(setup, tmp_path):
    """--fps: a 10 fps video at 5 fps uses every second frame; the VFR video (1 s at 30 fps
    then 2 s at 10 fps) at 10 fps takes every third frame of its first second, then every
    frame; the grid is recorded (grid_fps), and features of another grid are redone."""
    from mmengine.config import Config
    from vmae2_mm.apis.feature_extraction import finished_features_problem
    from vmae2_mm.testing.video_variants import write_variants
    cfg = Config.fromfile(setup['cfg'])
    path = sorted(setup['data']['videos'].values())[0]
    native, ninfo = build_extractor_from_config(cfg, setup['ckpt']).extract(path)
    feats, info = build_extractor_from_config(cfg, setup['ckpt'], dict(fps=5.0)).extract(path)
    assert (info['grid_fps'], info['source_fps'], info['fps']) == (5.0, 10.0, 5.0)
    assert info['frames'] == ninfo['frames'] // 2
    np.testing.assert_allclose(
        feats, _features_of_source_frames(setup['model'], path, 2 * np.arange(info['frames'])),
        rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(info['clip_times_s'][1], [0.8, 4.0])  # clip 1: grid 4..19

    variant = write_variants(str(tmp_path), ['vfr'])['vfr']
    tiny = Config(dict(model=dict(TINY), feature_extraction=dict(stride=4, batch_size=4)))
    ext = build_extractor_from_config(tiny, None, dict(fps=10.0))
    feats, info = ext.extract(variant['path'])
    assert info['frames'] == 30 and feats.shape[0] == (30 - 16) // 4 + 1
    index = [3 * k for k in range(10)] + [20 + k for k in range(10, 30)]
    np.testing.assert_allclose(feats, _features_of_source_frames(ext.model, variant['path'],
                                                                 index), rtol=1e-4, atol=1e-5)

    out = tmp_path / 'feats'
    tool = load_tool()
    args = [setup['cfg'], setup['ckpt'], '--videos', path, '--out', str(out), '--no-progress']
    # a single video path is not a folder or list: use a list file
    listing = tmp_path / 'one.txt'
    listing.write_text(path + '\n')
    args[3] = str(listing)
    assert tool.main(args) == 0
    npy = str(out / (osp.splitext(osp.basename(path))[0] + '.npy'))
    assert finished_features_problem(npy, 16, 4) is None
    assert 'was extracted at fps native, this run uses 5.0' in \
        finished_features_problem(npy, 16, 4, 5.0)
    assert tool.main(args + ['--fps', '5']) == 0
    meta = json.loads(open(npy[:-4] + '.json').read())
    assert meta['grid_fps'] == 5.0 and meta['fps_used'].startswith('5 (resampled')
    assert json.loads((out / 'failures.json').read_text())['redone'] == 1
