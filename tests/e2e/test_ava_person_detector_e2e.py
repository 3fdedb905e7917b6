"""AVA inference from a raw video with a person detector trained here (issue 24 item 3):
a tiny mmdet RetinaNet is trained on the GT person boxes of generated mini-AVA train keyframes
(300 AdamW steps, about a CPU-minute), then tools/demo_ava.py runs it on the held-out val
videos (mp4, re-encoded, never seen in training) and the VideoMAE V2 action head scores each
person it found. Bar: the boxes it hands to the action head cover >= 80% of the GT people of
the val keyframes at IoU >= 0.5 (measured 27/30), and every found person
gets AVA CSV rows."""
import csv
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope

from tests.conftest import load_script
from tests.unit.apis.test_inference_spatiotemporal import DET_CONFIG
from tests.unit.tools.test_demo_ava import write_tiny_ava_config
from vmae2_mm.testing.ava import generate_mini_ava

pytestmark = pytest.mark.e2e
H, W, FPS, START = 96, 128, 30, 900


def keyframe_boxes(csv_path):
    """{(video_id, timestamp): set of normalised GT boxes} of an AVA CSV."""
    boxes = {}
    for row in csv.reader(open(csv_path)):
        boxes.setdefault((row[0], int(row[1])), set()).add(
            tuple(round(float(v), 3) for v in row[2:6]))
    return boxes


def train_person_detector(data, cfg_path, steps=300, batch=8):
    """mmdet's RetinaNet loss on the train keyframes' GT boxes, AdamW: what mmdet's own
    train tool does with these images as a COCO file, in a loop short enough for a test."""
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    items = []
    for (vid, ts), boxes in sorted(keyframe_boxes(data['train_ann']).items()):
        img = cv2.imread(osp.join(data['root'], 'rawframes', vid,
                                  f'img_{(ts - START) * FPS + 1:05d}.jpg'))
        b = np.array(sorted(boxes), np.float32) * [W, H, W, H]
        items.append((torch.from_numpy(img).permute(2, 0, 1).contiguous(), torch.from_numpy(b)))
    rng = np.random.default_rng(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        import mmdet.models  # noqa: F401  (registration)
        torch.manual_seed(0)
        model = MODELS.build(Config.fromfile(cfg_path).model)
        model.init_weights()
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
        meta = dict(img_shape=(H, W), ori_shape=(H, W), pad_shape=(H, W), scale_factor=(1., 1.),
                    batch_input_shape=(H, W))
        step, losses = 0, []
        while step < steps:
            perm = rng.permutation(len(items))
            for s in range(0, len(items), batch):
                chosen = [items[i] for i in perm[s:s + batch]]
                samples = []
                for _, b in chosen:
                    sample = DetDataSample(metainfo=meta)
                    sample.gt_instances = InstanceData(
                        bboxes=b, labels=torch.zeros(len(b), dtype=torch.long))
                    samples.append(sample)
                packed = model.data_preprocessor(
                    dict(inputs=[x for x, _ in chosen], data_samples=samples), training=True)
                loss, _ = model.parse_losses(model.loss(packed['inputs'],
                                                        packed['data_samples']))
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
                step += 1
                if step == steps:
                    break
    return model, losses


def iou(a, b):
    x1, y1 = np.maximum(a[:, None, :2], b[None, :, :2]).transpose(2, 0, 1)
    x2, y2 = np.minimum(a[:, None, 2:], b[None, :, 2:]).transpose(2, 0, 1)
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter)


def test_demo_ava_with_a_trained_person_detector_finds_the_people(tmp_path):
    data = generate_mini_ava(str(tmp_path / 'data'), num_train_videos=6, num_val_videos=2,
                             seconds=8, height=H, width=W, fps=FPS, timestamp_start=START,
                             videos=True, seed=1)
    det_cfg = tmp_path / 'tiny_retinanet.py'
    det_cfg.write_text(DET_CONFIG)
    model, losses = train_person_detector(data, str(det_cfg))
    print(f'detector loss {np.mean(losses[:20]):.3f} -> {np.mean(losses[-20:]):.3f}')
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])
    det_ckpt = tmp_path / 'tiny_retinanet.pth'
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(classes=('person', )))), det_ckpt)

    # the VideoMAE V2 action detector (tiny, random weights: the people are what is tested)
    ava_cfg = write_tiny_ava_config(tmp_path / 'tiny_ava.py', data['label_file'], H)
    init_default_scope('mmaction')
    from mmaction.registry import MODELS
    torch.manual_seed(0)
    ava = MODELS.build(Config.fromfile(str(ava_cfg)).model)
    ava.init_weights()
    ava_ckpt = tmp_path / 'tiny_ava.pth'
    torch.save(dict(state_dict=ava.state_dict()), ava_ckpt)

    gt = keyframe_boxes(data['val_ann'])
    demo = load_script('tools/demo_ava.py')
    found = total = 0
    for vid in sorted({v for v, _ in gt}):
        out_csv = tmp_path / f'{vid}.csv'
        res = demo.main([str(ava_cfg), str(ava_ckpt),
                         osp.join(data['root'], 'videos', f'{vid}.mp4'),
                         '--det-config', str(det_cfg), '--det-checkpoint', str(det_ckpt),
                         '--det-score-thr', '0.5', '--video-start', str(START),
                         '--timestamps', *[str(t) for v, t in sorted(gt) if v == vid],
                         '--score-thr', '0', '--out-csv', str(out_csv)])
        rows = list(csv.reader(open(out_csv)))
        for (v, ts), boxes in gt.items():
            if v != vid:
                continue
            pred = np.array([box for box, _ in res.get(ts, [])]).reshape(-1, 4)
            g = np.array(sorted(boxes)).reshape(-1, 4)
            total += len(g)
            if len(pred):
                found += int((iou(g, pred).max(1) >= 0.5).sum())
            # every person found has its rows in the CSV (all classes, --score-thr 0)
            assert sum(int(r[1]) == ts for r in rows) >= len(pred)
    print(f'GT people of the val keyframes found (IoU >= 0.5): {found}/{total}')
    assert total >= 20 and found / total >= 0.8
