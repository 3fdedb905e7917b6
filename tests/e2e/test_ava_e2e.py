"""A tiny VideoMAE V2 FastRCNN trained through tools/train.py on generated mini-AVA and tested
through tools/test.py with AVAFrameMAPMetric beats random scores of the same proposals."""
import os.path as osp

import pytest
import torch

import vmae2_mm  # noqa: F401
from vmae2_mm.testing.ava import generate_mini_ava
from tests.conftest import load_script

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(REPO, 'configs', 'detection', 'videomaev2',
                'vit-tiny-p8_scratch_1xb8-8x4x1-30e_mini-ava-rgb.py')
EPOCHS = 30
#: margin over the random-score baseline the trained detector must reach (mAP points);
#: measured: 0.806 trained vs 0.462 random (+0.34) with this exact setup (8x8 patches, lr 6e-3,
#: the held object inside the person box); 0.635 (+0.17) with the earlier 16x16 patches,
#: lr 2e-3 and half-outside object
MARGIN = 0.25

# the tiny config pointed at the generated data (its own paths are data/mini_ava/...)
CONFIG = '''_base_ = [{base!r}]
ann = {ann!r}
frames = {frames!r}
train_dataloader = dict(dataset=dict(
    ann_file=ann + '/ava_train_v2.2.csv',
    exclude_file=ann + '/ava_train_excluded_timestamps_v2.2.csv',
    proposal_file=ann + '/ava_dense_proposals_train.FAIR.recall_93.9.pkl',
    label_file=ann + '/ava_action_list_v2.2_for_activitynet_2019.pbtxt',
    data_prefix=dict(img=frames)))
test_dataloader = dict(dataset=dict(
    ann_file=ann + '/ava_val_v2.2.csv',
    exclude_file=ann + '/ava_val_excluded_timestamps_v2.2.csv',
    proposal_file=ann + '/ava_dense_proposals_val.FAIR.recall_93.9.pkl',
    label_file=ann + '/ava_action_list_v2.2_for_activitynet_2019.pbtxt',
    data_prefix=dict(img=frames)))
val_dataloader = test_dataloader
test_evaluator = dict(ann_file=ann + '/ava_val_v2.2.csv',
                      label_file=ann + '/ava_action_list_v2.2_for_activitynet_2019.pbtxt',
                      exclude_file=ann + '/ava_val_excluded_timestamps_v2.2.csv')
val_evaluator = test_evaluator
'''


def load_tool(name):
    return load_script(f'tools/{name}.py')


def random_score_map(data, seeds=5):
    """mAP of uniformly random class scores on the val proposals the detector is tested on
    (same dataset thresholding, same metric), averaged over seeds."""
    from mmengine.registry import init_default_scope
    chance_map = load_script('tools/analysis/ava_random_baseline.py').random_score_map
    init_default_scope('mmaction')
    return chance_map(data['val_ann'], data['val_exclude'], data['label_file'],
                      data['val_proposals'], timestamp_start=data['timestamp_start'],
                      timestamp_end=data['timestamp_end'], seeds=seeds)


@pytest.mark.e2e
def test_tiny_detector_beats_random_scores(tmp_path):
    # many short videos (6 s: keyframes 902-904, 903 excluded) give many person tracks, so
    # the tiny ViT learns the motion rather than memorising each person's texture
    data = generate_mini_ava(str(tmp_path / 'data'), num_train_videos=30, num_val_videos=8,
                             seconds=6, height=96, width=128, seed=1)
    cfg = tmp_path / 'tiny_ava.py'
    cfg.write_text(CONFIG.format(base=TINY, ann=osp.join(data['root'], 'annotations'),
                                 frames=osp.join(data['root'], 'rawframes')))
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
