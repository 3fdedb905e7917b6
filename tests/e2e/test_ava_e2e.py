"""A tiny VideoMAE V2 FastRCNN trained through tools/train.py on generated mini-AVA and tested
through tools/test.py with AVAFrameMAPMetric beats random scores of the same proposals."""
import importlib.util
import os.path as osp

import numpy as np
import pytest
import torch

import vmae2_mm  # noqa: F401
from vmae2_mm.datasets.synthetic.ava import generate_mini_ava

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASE = osp.join(REPO, 'configs', 'detection', 'videomaev2',
                'vit-small-p16_videomaev2-vit-g-dist-k710-pre_16xb8-16x4x1-10e-adamw_ava22-rgb.py')
EPOCHS = 30
#: margin over the random-score baseline the trained detector must reach (mAP points);
#: measured: 0.635 trained vs 0.462 random (+0.17) with this exact setup
MARGIN = 0.12

CONFIG = '''_base_ = [{base!r}]
ann = {ann!r}
frames = {frames!r}
E = {epochs}
model = dict(
    backbone=dict(arch=dict(_delete_=True, embed_dims=64, depth=2, num_heads=2, mlp_ratio=2),
                  num_frames=8, drop_path_rate=0.0, init_cfg=None),
    roi_head=dict(bbox_head=dict(in_channels=64, dropout_ratio=0.0)))
train_pipeline = [
    dict(type='SampleAVAFrames', clip_len=8, frame_interval=4),
    dict(type='RawFrameDecode'),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackActionInputs')]
val_pipeline = [
    dict(type='SampleAVAFrames', clip_len=8, frame_interval=4, test_mode=True),
    dict(type='RawFrameDecode'),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackActionInputs')]
common = dict(label_file=ann + '/ava_action_list_v2.2_for_activitynet_2019.pbtxt',
              data_prefix=dict(img=frames), timestamp_start=900, timestamp_end=906)
train_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False, dataset=dict(
    ann_file=ann + '/ava_train_v2.2.csv',
    exclude_file=ann + '/ava_train_excluded_timestamps_v2.2.csv',
    proposal_file=ann + '/ava_dense_proposals_train.FAIR.recall_93.9.pkl',
    pipeline=train_pipeline, **common))
test_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(
    ann_file=ann + '/ava_val_v2.2.csv',
    exclude_file=ann + '/ava_val_excluded_timestamps_v2.2.csv',
    proposal_file=ann + '/ava_dense_proposals_val.FAIR.recall_93.9.pkl',
    pipeline=val_pipeline, **common))
val_dataloader = test_dataloader
test_evaluator = dict(ann_file=ann + '/ava_val_v2.2.csv', label_file=common['label_file'],
                      exclude_file=ann + '/ava_val_excluded_timestamps_v2.2.csv')
val_evaluator = test_evaluator
train_cfg = dict(max_epochs=E, val_interval=E + 1)
optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=E - 2, eta_min=1e-5, by_epoch=True, begin=2, end=E,
         convert_to_iter_based=True)]
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=E, save_best=None))
randomness = dict(seed=0)
'''


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_score_map(data, seeds=5):
    """mAP of uniformly random class scores on the val proposals the detector is tested on
    (same dataset thresholding, same metric), averaged over seeds."""
    from mmengine.registry import init_default_scope
    from vmae2_mm.datasets import AVADatasetChecked
    from vmae2_mm.evaluation import AVAFrameMAPMetric
    init_default_scope('mmaction')
    ds = AVADatasetChecked(ann_file=data['val_ann'], exclude_file=data['val_exclude'],
                           label_file=data['label_file'], proposal_file=data['val_proposals'],
                           pipeline=[], test_mode=True, timestamp_start=900,
                           timestamp_end=906)
    maps = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        metric = AVAFrameMAPMetric(ann_file=data['val_ann'], label_file=data['label_file'],
                                   exclude_file=data['val_exclude'])
        samples = []
        for i in range(len(ds)):
            info = ds.get_data_info(i)
            props = info['proposals']
            samples.append(dict(video_id=info['video_id'], timestamp=info['timestamp'],
                                pred_instances=dict(
                                    bboxes=torch.from_numpy(props),
                                    scores=torch.from_numpy(rng.uniform(size=(len(props), 81))))))
        metric.process(None, samples)
        maps.append(metric.compute_metrics(metric.results)['overall'])
    return float(np.mean(maps))


@pytest.mark.e2e
def test_tiny_detector_beats_random_scores(tmp_path):
    # many short videos (6 s: keyframes 902-904, 903 excluded) give many person tracks, so
    # the tiny ViT learns the motion rather than memorising each person's texture
    data = generate_mini_ava(str(tmp_path / 'data'), num_train_videos=30, num_val_videos=8,
                             seconds=6, height=96, width=128, seed=1)
    cfg = tmp_path / 'tiny_ava.py'
    cfg.write_text(CONFIG.format(base=BASE, ann=osp.join(data['root'], 'annotations'),
                                 frames=osp.join(data['root'], 'rawframes'), epochs=EPOCHS))
    work_dir = str(tmp_path / 'work')
    torch.set_num_threads(2)
    load_tool('train').main([str(cfg), '--work-dir', work_dir, '--no-validate'])
    ckpt = osp.join(work_dir, f'epoch_{EPOCHS}.pth')
    metrics = load_tool('test').main([str(cfg), ckpt, '--work-dir', work_dir])
    baseline = random_score_map(data)
    print(f'mini-AVA frame mAP: trained {metrics["mAP/overall"]:.4f}, random scores '
          f'{baseline:.4f}; per class: ' + ', '.join(
              f'{k[7:]} {v:.3f}' for k, v in metrics.items() if k.startswith('mAP/AP/')))
    assert 0.3 < baseline < 0.6  # prevalence of the actions among the proposals
    assert metrics['mAP/overall'] >= baseline + MARGIN
