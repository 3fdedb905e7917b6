"""Spatio-temporal action detection demo: per-person AVA actions in a video.

    python tools/demo_ava.py CONFIG CHECKPOINT VIDEO \
        (--boxes boxes.json|boxes.csv | --proposals proposals.pkl [--video-id ID]) \
        [--timestamps 902 903 ...] [--video-start 0] [--score-thr 0.5] \
        [--label-map map.pbtxt] [--out-video out.mp4]

Person boxes are normalised ``x1, y1, x2, y2`` per timestamp (seconds, like AVA):
``--boxes`` JSON ``{"902": [[x1, y1, x2, y2], ...], ...}`` or CSV rows
``timestamp,x1,y1,x2,y2[,...]``, or an AVA proposals pickle (``'<video_id>,<%04d ts>'`` ->
[K, 4|5]; boxes below ``--person-thr`` are dropped as AVADataset does). ``--video-start`` is
the time of the video's first frame (900 for AVA's 15-min cuts, 0 for whole clips). For each
timestamp a clip is sampled around it as the config's test ``SampleAVAFrames`` does, run
through the config's test transforms and the detector, and every person's actions with a
score above ``--score-thr`` are printed; ``--out-video`` writes the video with the boxes and
labels of the nearest timestamp drawn on each frame.
"""
import argparse
import csv
import json
import os.path as osp
import pickle
from typing import Dict, List, Optional

import cv2
import numpy as np
import torch

import vmae2_mm  # noqa: F401  (compat fixes + registration)
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('video', help='video file (decord-readable, e.g. mp4)')
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument('--boxes', help='JSON or CSV of normalised person boxes per timestamp')
    src.add_argument('--proposals', help='AVA proposals pickle')
    parser.add_argument('--video-id', help='proposal-key video id (default: video file stem)')
    parser.add_argument('--person-thr', type=float, default=0.9,
                        help='proposal score threshold (max score kept if none passes)')
    parser.add_argument('--timestamps', type=int, nargs='+',
                        help='timestamps to process (default: all with boxes)')
    parser.add_argument('--video-start', type=float, default=0.0,
                        help='time of the first video frame in seconds')
    parser.add_argument('--score-thr', type=float, default=0.5)
    parser.add_argument('--label-map', help='pbtxt label map (default: the config test one)')
    parser.add_argument('--out-video', help='write a visualised mp4 here')
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


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
    load_checkpoint(model, checkpoint, map_location='cpu')
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


def main(argv=None) -> Dict[int, list]:
    """Returns {timestamp: [(box [4] normalised, [(class_id, name, score), ...]), ...]}."""
    args = parse_args(argv)
    import decord
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    if args.boxes:
        boxes = read_boxes(args.boxes)
    else:
        video_id = args.video_id or osp.splitext(osp.basename(args.video))[0]
        boxes = read_proposals(args.proposals, video_id, args.person_thr)
    timestamps = args.timestamps or sorted(boxes)
    missing = [ts for ts in timestamps if ts not in boxes]
    if missing:
        print(f'no person boxes for timestamps {missing}: skipped')
    timestamps = [ts for ts in timestamps if ts in boxes]
    label_map = args.label_map or cfg.get('test_evaluator', {}).get('label_file')
    names = read_label_names(label_map if label_map and osp.isfile(label_map) else None)
    column_ids = cfg.model.roi_head.bbox_head.get('num_classes', 81)
    sampler, transforms = test_transforms(cfg)
    model = build_detector(cfg, args.checkpoint, args.device)

    if not osp.isfile(args.video):
        raise FileNotFoundError(f'video not found: {args.video}')
    reader = decord.VideoReader(args.video, num_threads=1)
    fps, num_frames = reader.get_avg_fps(), len(reader)
    results = {}
    for ts in timestamps:
        center = int(round((ts - args.video_start) * fps))
        if not 0 <= center < num_frames:
            print(f't={ts}: outside the video ({num_frames / fps:.1f} s from '
                  f'{args.video_start}): skipped')
            continue
        idx = clip_indices(center, sampler['clip_len'], sampler.get('frame_interval', 2),
                           num_frames)
        frames = list(reader.get_batch(idx.tolist()).asnumpy())
        scores = detect(model, transforms, frames, boxes[ts], column_ids)
        people = []
        for k, box in enumerate(boxes[ts]):
            acts = [(c, names.get(c, f'class {c}'), float(scores[k, c]))
                    for c in range(1, scores.shape[1])
                    if scores[k, c] > args.score_thr and (not names or c in names)]
            acts.sort(key=lambda a: -a[2])
            people.append((box, acts))
            text = ', '.join(f'{n} {s:.2f}' for _, n, s in acts) or '-'
            print(f't={ts} person {k} box ({", ".join(f"{v:.3f}" for v in box)}): {text}')
        results[ts] = people

    if args.out_video:
        writer = None
        keys = sorted(results)
        for i in range(num_frames):
            frame = reader[i].asnumpy()
            t = args.video_start + i / fps
            near = min(keys, key=lambda k: abs(k - t)) if keys else None
            if near is not None and abs(near - t) <= 0.5:
                people = results[near]
                frame = draw(frame, np.array([b for b, _ in people]).reshape(-1, 4),
                             [[f'{n} {s:.2f}' for _, n, s in acts] for _, acts in people])
            else:
                frame = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
            if writer is None:
                writer = cv2.VideoWriter(args.out_video, cv2.VideoWriter_fourcc(*'mp4v'), fps,
                                         (frame.shape[1], frame.shape[0]))
                if not writer.isOpened():
                    raise RuntimeError(f'cannot write {args.out_video}')
            writer.write(frame)
        if writer is not None:
            writer.release()
        print(f'wrote {args.out_video}')
    return results


if __name__ == '__main__':
    main()
