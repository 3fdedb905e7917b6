"""Spatio-temporal action detection (AVA) on a video: person boxes -> actions per person.

Person boxes come from an mmdet detector (``detect_persons``: the user's detector config +
checkpoint, e.g. mmdet's Faster R-CNN on COCO, person = class 0 by default), from normalised
boxes per timestamp (``read_boxes``: JSON or CSV) or from an AVA proposals pickle
(``read_proposals``). For each keyframe timestamp a clip is sampled around it as the config's
test ``SampleAVAFrames`` does, run through the config's test transforms and the VideoMAE V2
detector (``build_detector`` / ``detect``), giving per-person scores [K, C] over the AVA
classes; ``write_ava_csv`` writes them in AVA's result CSV format
(``video_id,timestamp,x1,y1,x2,y2,action_id,score``, the format ``AVAFrameMAPMetric`` and the
official evaluator read) and ``draw`` puts boxes and labels on a frame. ``tools/demo_ava.py``
is the thin CLI over these functions.
"""
import csv
import json
import pickle
from typing import Dict, List, Optional

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.runner import load_checkpoint


def read_boxes(path: str) -> Dict[int, np.ndarray]:
    """JSON ``{ts: [[x1, y1, x2, y2], ...]}`` or CSV ``ts,x1,y1,x2,y2[,...]`` -> {ts: [K, 4]}."""
    boxes: Dict[int, list] = {}
    if path.endswith('.json'):
        with open(path) as f:
            raw = json.load(f)
        if not isinstance(raw, dict):
            raise ValueError(f'{path}: expected a JSON object {{timestamp: [[x1, y1, x2, y2], '
                             '...]}}')
        for ts, rows in raw.items():
            boxes[int(ts)] = [list(map(float, r[:4])) for r in rows]
    else:
        with open(path, newline='') as f:
            for lineno, row in enumerate(csv.reader(f), 1):
                if not row:
                    continue
                if len(row) < 5:
                    raise ValueError(f'{path}:{lineno}: expected timestamp,x1,y1,x2,y2, got '
                                     f'{row}')
                boxes.setdefault(int(row[0]), []).append([float(v) for v in row[1:5]])
    return {ts: check_boxes(np.asarray(b, dtype=np.float32).reshape(-1, 4), f'{path} ts {ts}')
            for ts, b in boxes.items()}


def read_proposals(path: str, video_id: str, person_thr: float) -> Dict[int, np.ndarray]:
    """Boxes of ``video_id`` from an AVA proposals pickle, thresholded like AVADataset."""
    with open(path, 'rb') as f:
        props = pickle.load(f)
    out = {}
    for key, arr in props.items():
        vid, ts = key.rsplit(',', 1)
        arr = np.asarray(arr, dtype=np.float32)
        if vid != video_id or arr.size == 0:
            continue
        if arr.shape[1] == 5:
            arr = arr[arr[:, 4] >= min(person_thr, arr[:, 4].max())]
        out[int(ts)] = check_boxes(arr[:, :4], f'{path} {key}')
    if not out:
        raise ValueError(f'{path}: no proposals for video id {video_id!r} (keys look like '
                         f'{next(iter(props), "?")!r}); pass --video-id')
    return out


def check_boxes(boxes: np.ndarray, where: str) -> np.ndarray:
    if ((boxes < 0) | (boxes > 1)).any():
        raise ValueError(f'{where}: boxes must be normalised to [0, 1], got {boxes.tolist()}')
    if ((boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])).any():
        raise ValueError(f'{where}: boxes need x1 < x2 and y1 < y2, got {boxes.tolist()}')
    return boxes


def read_label_names(path: Optional[str]) -> Dict[int, str]:
    if not path:
        return {}
    from vmae2_mm.evaluation.ava_metric import read_labelmap
    return {c['id']: c['name'] for c in read_labelmap(path)[0]}


def test_transforms(cfg: Config):
    """(SampleAVAFrames cfg, transforms after frame decoding) of the config's test pipeline."""
    pipeline = cfg.test_dataloader.dataset.pipeline
    names = [t['type'] for t in pipeline]
    if 'SampleAVAFrames' not in names:
        raise ValueError(f'{cfg.filename}: the test pipeline has no SampleAVAFrames step')
    sampler = pipeline[names.index('SampleAVAFrames')]
    decode = max(i for i, n in enumerate(names) if n.endswith('Decode'))
    return sampler, Compose(pipeline[decode + 1:])


def clip_indices(center: int, clip_len: int, interval: int, num_frames: int) -> np.ndarray:
    """Test-mode SampleAVAFrames indices (0-based) around ``center``, clipped to the video."""
    start = center - (clip_len // 2) * interval
    return np.clip(np.arange(start, start + clip_len * interval, interval), 0, num_frames - 1)


def build_detector(cfg: Config, checkpoint: str, device: str):
    from mmaction.registry import MODELS
    cfg.model.backbone.init_cfg = None  # weights come from the checkpoint
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    return model.to(device).eval()


def detect(model, transforms, frames: List[np.ndarray], boxes: np.ndarray, num_classes: int):
    """One keyframe: frames [T] of [H, W, 3] RGB, boxes [K, 4] normalised -> scores [K, C]."""
    h, w = frames[0].shape[:2]
    scale = np.array([w, h, w, h], dtype=np.float32)
    results = dict(imgs=list(frames), img_shape=(h, w), original_shape=(h, w),
                   gt_bboxes=np.zeros((0, 4), np.float32), proposals=boxes * scale,
                   gt_labels=np.zeros((0, num_classes), np.float32), modality='RGB',
                   num_clips=1, clip_len=len(frames))
    packed = transforms(results)
    with torch.no_grad():
        out = model.test_step(dict(inputs=[packed['inputs']],
                                   data_samples=[packed['data_samples']]))
    return out[0].pred_instances.scores.cpu().numpy()


def draw(frame_rgb: np.ndarray, boxes: np.ndarray, labels: List[List[str]]) -> np.ndarray:
    img = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR)
    h, w = img.shape[:2]
    for box, texts in zip(boxes, labels):
        x1, y1, x2, y2 = (box * [w, h, w, h]).astype(int)
        cv2.rectangle(img, (x1, y1), (x2, y2), (0, 255, 0), 1)
        for i, text in enumerate(texts):
            cv2.putText(img, text, (x1 + 2, y1 + 10 + 10 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.3,
                        (255, 255, 255), 1, cv2.LINE_AA)
    return img


def detect_persons(det_config: str, det_checkpoint: str, frames: Dict[int, np.ndarray],
                   score_thr: float = 0.5, person_class: int = 0, device: str = 'cpu'
                   ) -> Dict[int, np.ndarray]:
    """Person boxes of keyframes with an mmdet detector.

    Args:
        det_config, det_checkpoint: An mmdet detector (any mmdet 3.x config + weights).
        frames: {timestamp: RGB uint8 frame [H, W, 3]}.
        score_thr: Keep persons scoring at least this.
        person_class: The detector's person label (0 for COCO-trained mmdet models).

    Returns:
        {timestamp: [K, 4] float32 normalised x1, y1, x2, y2} (K may be 0).
    """
    from mmdet.apis import inference_detector, init_detector
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = init_detector(det_config, det_checkpoint, device=device)
        out = {}
        for ts, frame in frames.items():
            h, w = frame.shape[:2]
            res = inference_detector(model, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            inst = res.pred_instances
            keep = (inst.labels == person_class) & (inst.scores >= score_thr)
            boxes = inst.bboxes[keep].cpu().numpy().astype(np.float32)
            boxes = np.clip(boxes / np.array([w, h, w, h], np.float32), 0, 1)
            ok = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
            out[ts] = boxes[ok].reshape(-1, 4)
    return out


def write_ava_csv(path: str, video_id: str, results: Dict[int, list]) -> int:
    """AVA result rows ``video_id,timestamp,x1,y1,x2,y2,action_id,score`` (boxes normalised,
    3 decimals as AVA's files; score 4) for every (person, action) in ``results``
    ({timestamp: [(box [4], [(class_id, name, score), ...]), ...]}). Returns the row count."""
    rows = 0
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        for ts in sorted(results):
            for box, acts in results[ts]:
                for cid, _, score in acts:
                    writer.writerow([video_id, f'{int(ts):04d}', *(f'{v:.3f}' for v in box),
                                     int(cid), f'{score:.4f}'])
                    rows += 1
    return rows


__all__ = ['read_boxes', 'read_proposals', 'check_boxes', 'read_label_names',
           'test_transforms', 'clip_indices', 'build_detector', 'detect', 'draw',
           'detect_persons', 'write_ava_csv']
