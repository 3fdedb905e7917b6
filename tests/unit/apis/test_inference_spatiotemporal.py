"""Spatio-temporal inference API (issue 24): an mmdet person detector feeds the VideoMAE V2
AVA detector, and the detections come out as an AVA result CSV.

The person detector here is a tiny mmdet RetinaNet with random weights (no detector can be
downloaded and none is trained here), so these tests check the plumbing exactly — boxes equal
to mmdet's own inference, normalised and thresholded; CSV rows equal to the printed results —
not that people are found."""
import csv
import os.path as osp

import cv2
import decord
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from vmae2_mm.apis.inference_spatiotemporal import detect_persons, write_ava_csv
from tests.unit.tools.test_demo_ava import load_demo, setup  # noqa: F401  (fixture)

DET_CONFIG = """model = dict(
    type='RetinaNet',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(type='ResNet', depth=18, base_channels=8, num_stages=4, out_indices=(1, 2, 3),
                  frozen_stages=-1, norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False,
                  style='pytorch', init_cfg=None),
    neck=dict(type='FPN', in_channels=[16, 32, 64], out_channels=16, start_level=0,
              add_extra_convs='on_input', num_outs=3),
    bbox_head=dict(type='RetinaHead', num_classes=1, in_channels=16, stacked_convs=1,
                   feat_channels=16,
                   anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4,
                                         scales_per_octave=1, ratios=[0.5, 1.0, 2.0],
                                         strides=[8, 16, 32]),
                   bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                                   target_stds=[1.0, 1.0, 1.0, 1.0]),
                   loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                                 loss_weight=1.0),
                   loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4,
                                 min_pos_iou=0, ignore_iof_thr=-1),
                   sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1,
                   debug=False),
    test_cfg=dict(nms_pre=100, min_bbox_size=0, score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5),
                  max_per_img=10))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 96), keep_ratio=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                          'scale_factor'))]
test_dataloader = dict(dataset=dict(type='CocoDataset', pipeline=test_pipeline,
                                    metainfo=dict(classes=('person',))))
default_scope = 'mmdet'
"""


@pytest.fixture(scope='module')
def person_detector(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('det')
    cfg_path = tmp / 'tiny_retinanet.py'
    cfg_path.write_text(DET_CONFIG)
    with DefaultScope.overwrite_default_scope('mmdet'):
        import mmdet.models  # noqa: F401  (registration)
        from mmdet.registry import MODELS
        torch.manual_seed(0)
        model = MODELS.build(Config.fromfile(str(cfg_path)).model)
        model.init_weights()
    ckpt = tmp / 'tiny_retinanet.pth'
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(classes=('person', )))), ckpt)
    return str(cfg_path), str(ckpt)


def test_person_boxes_equal_mmdet_inference(person_detector):
    from mmdet.apis import inference_detector, init_detector
    cfg, ckpt = person_detector
    frame = (np.random.default_rng(0).random((96, 128, 3)) * 255).astype(np.uint8)
    thr = 0.01
    got = detect_persons(cfg, ckpt, {5: frame}, score_thr=thr)[5]
    with DefaultScope.overwrite_default_scope('mmdet'):
        ref = inference_detector(init_detector(cfg, ckpt, device='cpu'),
                                 cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)).pred_instances
    keep = (ref.labels == 0) & (ref.scores >= thr)
    want = np.clip(ref.bboxes[keep].numpy() / [128, 96, 128, 96], 0, 1)
    want = want[(want[:, 2] > want[:, 0]) & (want[:, 3] > want[:, 1])]
    assert len(got) > 0
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_write_ava_csv_format(tmp_path):
    res = {902: [(np.array([0.1, 0.2, 0.5, 0.9]), [(12, 'stand', 0.91234), (7, 'walk', 0.5)])],
           903: [(np.array([0.0, 0.0, 1.0, 1.0]), [])]}
    path = tmp_path / 'out.csv'
    assert write_ava_csv(str(path), 'vid_a', res) == 2
    assert path.read_text().splitlines() == [
        'vid_a,0902,0.100,0.200,0.500,0.900,12,0.9123',
        'vid_a,0902,0.100,0.200,0.500,0.900,7,0.5000']


def test_cli_with_person_detector_writes_ava_csv(setup, person_detector, tmp_path,  # noqa: F811
                                                 capsys):
    data, cfg, ckpt, _ = setup
    det_cfg, det_ckpt = person_detector
    video = osp.join(data['root'], 'videos', 'valava00000.mp4')
    out_csv = str(tmp_path / 'ava.csv')
    res = load_demo().main([cfg, ckpt, video, '--det-config', det_cfg, '--det-checkpoint',
                            det_ckpt, '--det-score-thr', '0.01', '--video-start', '900',
                            '--score-thr', '0', '--out-csv', out_csv])
    n = len(decord.VideoReader(video)) / decord.VideoReader(video).get_avg_fps()
    assert sorted(res) and set(res) <= {900 + s for s in range(int(n) + 1)}
    rows = list(csv.reader(open(out_csv)))
    want = [(ts, box, cid, s) for ts in sorted(res) for box, acts in res[ts]
            for cid, _, s in acts]
    assert len(rows) == len(want) > 0
    for row, (ts, box, cid, s) in zip(rows, want):
        assert row[0] == 'valava00000' and int(row[1]) == ts and int(row[6]) == cid
        np.testing.assert_allclose([float(v) for v in row[2:6]], box, atol=5e-4)
        assert abs(float(row[7]) - s) < 5e-5
    assert f'wrote {out_csv} ({len(rows)} rows)' in capsys.readouterr().out


def test_nobody_found_is_a_clear_error(setup, person_detector):  # noqa: F811
    data, cfg, ckpt, _ = setup
    det_cfg, det_ckpt = person_detector
    video = osp.join(data['root'], 'videos', 'valava00000.mp4')
    with pytest.raises(ValueError, match=r'valava00000.mp4: the person detector found nobody'):
        load_demo().main([cfg, ckpt, video, '--det-config', det_cfg, '--det-checkpoint',
                          det_ckpt, '--det-score-thr', '1.01'])
