"""End to end TAD as a user runs the shipped tiny recipe
(configs/localization/actionformer_tiny_1xb2-5+35e_mini-thumos.py): generated mini-THUMOS videos ->
VideoMAE V2 clip features (tools/extract_features.py) -> channel statistics
(tools/data/tad_feature_stats.py) -> ActionFormer trained with tools/train.py ->
tools/test.py mAP, and tools/infer_localizer.py on the raw test videos. What makes the tiny run learn (standardised features, EMA momentum 0.02) is
in the recipe and explained there."""
import json
import os
import pickle
import re

import numpy as np
import pytest
import torch

from tests.conftest import run_python

pytestmark = pytest.mark.e2e

TINY_VIT = dict(type='VideoMAEv2ViT', arch=dict(embed_dims=64, depth=2, num_heads=2,
                                                 mlp_ratio=2.0),
                img_size=32, num_frames=16, pos_embed_grid_from=None)


def _train_config(repo_root, ann_file, feat_dir, work_dir):
    """The demo's tiny ActionFormer config, pointed at this test's annotations and features."""
    base = repo_root / 'configs/localization/actionformer_tiny_1xb2-5+35e_mini-thumos.py'
    return f'''
_base_ = [{str(base)!r}]
data_root = ''
ann_file = {ann_file!r}
feat_dir = {feat_dir!r}
data = dict(data_root=data_root, ann_file=ann_file, feat_dir=feat_dir)
train_dataloader = dict(dataset=data)
val_dataloader = dict(dataset=data)
test_dataloader = dict(dataset=data)
val_evaluator = dict(ann_file=ann_file)
test_evaluator = val_evaluator
work_dir = {str(work_dir)!r}
'''


@pytest.fixture(scope='module')
def tad_run(tmp_path_factory, repo_root):
    """Generated mini-THUMOS (plus one unreadable video) -> features -> statistics ->
    ActionFormer trained with tools/train.py -> tools/test.py (with ``--dump``); the outputs
    both tests below read."""
    from vmae2_mm.models.backbones import VideoMAEv2ViT
    from vmae2_mm.testing.thumos import generate_mini_thumos
    tmp_path = tmp_path_factory.mktemp('tad_e2e')
    data = generate_mini_thumos(str(tmp_path / 'data'), num_val=24, num_test=8, num_classes=4,
                                size=32, fps=10.0, min_duration=20.0, max_duration=40.0,
                                num_corrupt=1, seed=0)
    # a randomly initialised tiny ViT in the official fine-tuned checkpoint layout
    torch.manual_seed(0)
    vit = VideoMAEv2ViT(**{k: v for k, v in TINY_VIT.items() if k != 'type'})
    vit_ckpt = tmp_path / 'tiny_vit.pth'
    torch.save(dict(model=vit.state_dict()), vit_ckpt)
    ext_cfg = tmp_path / 'extract.py'
    ext_cfg.write_text(f'model = {TINY_VIT!r}\n'
                       'feature_extraction = dict(stride=4, batch_size=16)\n')
    feat_dir = tmp_path / 'features'
    env = dict(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    # the unreadable video is reported and the others are extracted
    run_python(['tools/extract_features.py', str(ext_cfg), str(vit_ckpt), '--videos',
                data['video_dir'], '--out', str(feat_dir), '--no-progress'], env=env)
    run_python(['tools/data/tad_feature_stats.py', str(feat_dir), data['ann_file'],
                '--subset', 'Validation'], env=env)
    work_dir = tmp_path / 'work'
    cfg = tmp_path / 'actionformer_tiny_mini-thumos.py'
    cfg.write_text(_train_config(repo_root, data['ann_file'], str(feat_dir), work_dir))
    run_python(['tools/train.py', str(cfg)], env=env)
    ckpts = sorted(work_dir.glob('epoch_*.pth'))
    assert ckpts, f'no checkpoint in {work_dir}'
    dump = tmp_path / 'test.pkl'
    out = run_python(['tools/test.py', str(cfg), str(ckpts[-1]), '--work-dir',
                      str(tmp_path / 'test'), '--dump', str(dump)], env=env)
    return dict(data=data, cfg=cfg, ckpt=ckpts[-1], ext_cfg=ext_cfg, vit_ckpt=vit_ckpt,
                feat_dir=feat_dir, dump=dump, log=out.stdout + out.stderr, env=env)


def test_actionformer_on_extracted_mini_thumos_features(tad_run):
    text = tad_run['log']
    found = re.findall(r'mAP/avg: ([0-9.]+)', text)
    assert found, text[-3000:]
    avg = float(found[-1])
    print(f'mini-THUMOS average mAP (tIoU 0.3:0.7) = {avg:.2f}%')
    assert avg >= 50.0, text[-3000:]


def tiou(a, b):
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    return inter / (max(a[1], b[1]) - min(a[0], b[0]))


def test_infer_localizer_finds_the_planted_actions(tad_run, tmp_path):
    """tools/infer_localizer.py on the raw test videos (and the unreadable one, reported while
    the others run): the planted actions are found, and the segments equal tools/test.py's on
    the extracted feature files."""
    data = tad_run['data']
    database = json.loads(open(data['ann_file']).read())['database']
    test_ids = sorted(v for v, e in database.items() if e['subset'] == 'Test')
    listing = tmp_path / 'test_videos.txt'
    listing.write_text('\n'.join([data['videos'][v] for v in test_ids] + data['corrupt']))
    out = tmp_path / 'out'
    proc = run_python(['tools/infer_localizer.py', str(listing), str(tad_run['cfg']),
                       str(tad_run['ckpt']), '--extractor-config', str(tad_run['ext_cfg']),
                       '--extractor-checkpoint', str(tad_run['vit_ckpt']),
                       '--feat-stats', str(tad_run['feat_dir'] / 'channel_stats.npz'),
                       '--label-file', data['classes_file'], '--out-dir', str(out),
                       '--no-progress'], env=tad_run['env'])
    print(proc.stdout)
    assert '8 videos localised' in proc.stdout and '1 videos FAILED' in proc.stdout
    results = json.loads((out / 'results.json').read_text())['results']
    assert sorted(results) == test_ids

    # recall of the planted actions: a same-class segment scoring >= 0.3 with tIoU >= 0.5
    found, total = 0, 0
    for vid in test_ids:
        dets = [d for d in results[vid] if d['score'] >= 0.3]
        for ann in database[vid]['annotations']:
            total += 1
            found += any(d['label'] == ann['label'] and tiou(d['segment'], ann['segment']) >= 0.5
                         for d in dets)
    print(f'planted actions found (tIoU >= 0.5, score >= 0.3): {found}/{total}')
    assert found / total >= 0.8

    # the same segments as tools/test.py on the extracted feature files
    with open(tad_run['dump'], 'rb') as f:
        preds = {p['video_id']: p['pred_instances'] for p in pickle.load(f)}
    for vid in test_ids:
        ref = preds[vid]
        order = np.argsort(-np.asarray(ref['scores']), kind='stable')[:20]
        ours = results[vid][:20]
        np.testing.assert_allclose([d['segment'] for d in ours],
                                   np.asarray(ref['segments'])[order], atol=2e-3)
        np.testing.assert_allclose([d['score'] for d in ours],
                                   np.asarray(ref['scores'])[order], atol=2e-6)
    srt = (out / f'{test_ids[0]}.srt').read_text()
    assert srt.startswith('1\n00:00:') and ' --> ' in srt
    assert os.path.getsize(out / f'{test_ids[0]}_timeline.png') > 0
