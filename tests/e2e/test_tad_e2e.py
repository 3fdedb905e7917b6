"""End to end TAD as a user runs the shipped tiny recipe
(configs/tad/actionformer_tiny_1xb2-5+35e_mini-thumos.py): generated mini-THUMOS videos ->
VideoMAE V2 clip features (tools/extract_features.py) -> channel statistics
(tools/data/tad_feature_stats.py) -> ActionFormer trained with tools/train.py ->
tools/test.py mAP. What makes the tiny run learn (standardised features, EMA momentum 0.02) is
in the recipe and explained there."""
import re

import pytest
import torch

from tests.conftest import run_python

pytestmark = pytest.mark.e2e

TINY_VIT = dict(type='VideoMAEv2ViT', arch=dict(embed_dims=64, depth=2, num_heads=2,
                                                 mlp_ratio=2.0),
                img_size=32, num_frames=16, pos_embed_grid_from=None)


def _train_config(repo_root, ann_file, feat_dir, work_dir):
    """The demo's tiny ActionFormer config, pointed at this test's annotations and features."""
    base = repo_root / 'configs/tad/actionformer_tiny_1xb2-5+35e_mini-thumos.py'
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


def test_actionformer_on_extracted_mini_thumos_features(tmp_path, repo_root):
    from vmae2_mm.testing.thumos import generate_mini_thumos
    from vmae2_mm.models.backbones import VideoMAEv2ViT
    data = generate_mini_thumos(str(tmp_path / 'data'), num_val=24, num_test=8, num_classes=4,
                                size=32, fps=10.0, min_duration=20.0, max_duration=40.0,
                                seed=0)
    # a randomly initialised tiny ViT in the official fine-tuned checkpoint layout
    torch.manual_seed(0)
    vit = VideoMAEv2ViT(**{k: v for k, v in TINY_VIT.items() if k != 'type'})
    ckpt = tmp_path / 'tiny_vit.pth'
    torch.save(dict(model=vit.state_dict()), ckpt)
    ext_cfg = tmp_path / 'extract.py'
    ext_cfg.write_text(f'model = {TINY_VIT!r}\n'
                       'feature_extraction = dict(stride=4, batch_size=16)\n')
    feat_dir = tmp_path / 'features'
    env = dict(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    run_python(['tools/extract_features.py', str(ext_cfg), str(ckpt), '--videos',
                data['video_dir'], '--out', str(feat_dir), '--no-progress'], env=env)

    run_python(['tools/data/tad_feature_stats.py', str(feat_dir), data['ann_file'],
                '--subset', 'Validation'], env=env)

    work_dir = tmp_path / 'work'
    cfg = tmp_path / 'actionformer_tiny_mini-thumos.py'
    cfg.write_text(_train_config(repo_root, data['ann_file'], str(feat_dir), work_dir))
    run_python(['tools/train.py', str(cfg)], env=env)
    ckpts = sorted(work_dir.glob('epoch_*.pth'))
    assert ckpts, f'no checkpoint in {work_dir}'
    out = run_python(['tools/test.py', str(cfg), str(ckpts[-1]), '--work-dir',
                      str(tmp_path / 'test')], env=env)
    text = out.stdout + out.stderr
    found = re.findall(r'mAP/avg: ([0-9.]+)', text)
    assert found, text[-3000:]
    avg = float(found[-1])
    print(f'mini-THUMOS average mAP (tIoU 0.3:0.7) = {avg:.2f}%')
    assert avg >= 50.0, text[-3000:]
