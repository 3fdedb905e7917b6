"""Generated mini-AVA (and mini-AVA-Kinetics) in the real AVA v2.2 file formats.

Each video shows 2-3 randomly textured "people" (rectangles) on a textured static background.
Every person performs one action for the whole video: ``jump/leap`` (hops up and down),
``walk`` (moves sideways back and forth) or ``stand`` (stays still); about half also hold a
bright square "object" (``carry/hold (an object)``, a second, multi-label action). Textures,
sizes, positions, phases and periods are random, so only the motion tells the movement action.
Ids and names are the real AVA v2.2 ones (7, 12, 14, 17), so the real configs (81 score
columns) train on it unchanged.

Layout written under ``--out`` (mmaction2's ``data/ava`` layout)::

    rawframes/<video_id>/img_00001.jpg ...          30 fps; frame f shows t = start + (f-1)/fps
    videos/<video_id>.mp4                           only with --videos (for the demo)
    annotations/ava_{train,val}_v2.2.csv            video_id,ts,x1,y1,x2,y2,action_id,person_id
    annotations/ava_{train,val}_excluded_timestamps_v2.2.csv
    annotations/ava_action_list_v2.2_for_activitynet_2019.pbtxt
    annotations/ava_dense_proposals_{train,val}.FAIR.recall_93.9.pkl
        {'<video_id>,<%04d ts>': float32 [K, 5] (x1, y1, x2, y2 normalised, score)}

AVA videos have 11-character ids and span ``[timestamp_start, timestamp_start + seconds]``
(keyframes at whole seconds, 2 s away from both ends, as AVA's 902..1798 in 900..1800).
``--kinetics-clips N`` (AVA-Kinetics) adds N Kinetics-style clips ``<ytid>_<start:06d>_<end:06d>``
with one annotated keyframe in the middle to the *train* CSV and proposals; their proposal keys
use the bare ``<ytid>``, as ``AVAKineticsDataset`` expects. Validation stays AVA-only, as in
mmaction2's AVA-Kinetics recipe. Everything is deterministic given ``seed``.
"""
import argparse
import json
import math
import os
import os.path as osp
import pickle
from typing import List, Tuple

import cv2
import numpy as np

#: (AVA id, name) of the generated actions; movement actions are mutually exclusive.
ACTIONS = {'jump': (7, 'jump/leap'), 'stand': (12, 'stand'), 'walk': (14, 'walk'),
           'carry': (17, 'carry/hold (an object)')}
MOVEMENTS = ('jump', 'walk', 'stand')
LABEL_MAP_NAME = 'ava_action_list_v2.2_for_activitynet_2019.pbtxt'


def label_map_text() -> str:
    """The pbtxt label map (ActivityNet-2019 ``item { name id }`` layout) of the actions."""
    return ''.join(f'item {{\n  name: "{name}"\n  id: {cid}\n}}\n'
                   for cid, name in sorted(ACTIONS.values()))


def _texture(rng: np.random.Generator, h: int, w: int, cells: int, lo: int = 0,
             hi: int = 256) -> np.ndarray:
    coarse = rng.integers(lo, hi, size=(cells, cells, 3), dtype=np.uint8)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)


class _Person:
    """One synthetic actor: base box, texture, movement action and optional held object."""

    def __init__(self, rng: np.random.Generator, height: int, width: int, movement: str,
                 carry: bool) -> None:
        self.movement, self.carry = movement, carry
        self.h = int(rng.uniform(0.38, 0.5) * height)
        self.w = int(rng.uniform(0.14, 0.2) * width)
        self.texture = _texture(rng, self.h, self.w, cells=3, lo=60, hi=256)
        self.amp = (rng.uniform(0.3, 0.45) * self.h if movement == 'jump' else
                    rng.uniform(0.7, 1.0) * self.w if movement == 'walk' else 0.0)
        self.period = rng.uniform(0.6, 0.9) if movement == 'jump' else rng.uniform(1.2, 1.8)
        self.phase = rng.uniform(0, self.period)
        # the motion range must stay inside the frame
        margin_x = self.amp if movement == 'walk' else 0
        margin_top = self.amp if movement == 'jump' else 0
        self.x0 = rng.uniform(margin_x + 1, width - self.w - margin_x - 1)
        self.y0 = rng.uniform(margin_top + 1, height - self.h - 1)
        self.object_colour = np.array([255, 230, 0], dtype=np.uint8)  # RGB yellow

    def box(self, t: float) -> Tuple[float, float, float, float]:
        """Pixel box (x1, y1, x2, y2) at time ``t`` seconds."""
        dx = dy = 0.0
        if self.movement == 'jump':
            dy = -self.amp * abs(math.sin(math.pi * (t + self.phase) / self.period))
        elif self.movement == 'walk':
            dx = self.amp * math.sin(2 * math.pi * (t + self.phase) / self.period)
        x1, y1 = self.x0 + dx, self.y0 + dy
        return x1, y1, x1 + self.w, y1 + self.h

    def draw(self, frame: np.ndarray, t: float) -> None:
        x1, y1, _, _ = self.box(t)
        xi, yi = int(round(x1)), int(round(y1))
        frame[yi:yi + self.h, xi:xi + self.w] = self.texture
        if self.carry:
            # held at the right side, inside the person box (what the RoI features see), and
            # half the box wide so it stands out of the random bright person texture
            s = max(6, self.w // 2)
            oy = yi + self.h // 2 - s // 2
            frame[oy:oy + s, xi + self.w - s:xi + self.w] = self.object_colour


def _people(rng: np.random.Generator, height: int, width: int, max_people: int) -> List[_Person]:
    n = int(rng.integers(2, max_people + 1)) if max_people > 2 else max_people
    movements = [MOVEMENTS[i % 3] for i in rng.permutation(3)][:n]
    return [_Person(rng, height, width, m, bool(rng.random() < 0.5)) for m in movements]


def render_video(rng: np.random.Generator, people: List[_Person], height: int, width: int,
                 num_frames: int, fps: int) -> np.ndarray:
    """Frames [T, H, W, 3] uint8 RGB; frame index i shows time ``i / fps`` (from video start)."""
    background = (_texture(rng, height, width, cells=6) // 3 + 30).astype(np.uint8)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for i in range(num_frames):
        frame = background.copy()
        for p in people:
            p.draw(frame, i / fps)
        frames[i] = frame
    return frames


def _write_frames(frame_dir: str, frames: np.ndarray) -> None:
    os.makedirs(frame_dir, exist_ok=True)
    for i, frame in enumerate(frames, 1):
        ok = cv2.imwrite(osp.join(frame_dir, f'img_{i:05d}.jpg'),
                         cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise RuntimeError(f'cannot write frames into {frame_dir}')


def _write_mp4(path: str, frames: np.ndarray, fps: int) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f'OpenCV cannot open a video writer for {path}')
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def _norm_box(box, height: int, width: int) -> List[float]:
    x1, y1, x2, y2 = box
    return [float(np.clip(x1 / width, 0, 1)), float(np.clip(y1 / height, 0, 1)),
            float(np.clip(x2 / width, 0, 1)), float(np.clip(y2 / height, 0, 1))]


def _jitter(rng: np.random.Generator, box: List[float], scale: float) -> List[float]:
    """Shift the centre and rescale the size of a normalised box by ``scale`` (relative)."""
    w, h = box[2] - box[0], box[3] - box[1]
    cx = (box[0] + box[2]) / 2 + rng.normal(0, scale) * w
    cy = (box[1] + box[3]) / 2 + rng.normal(0, scale) * h
    w, h = w * math.exp(rng.normal(0, scale)), h * math.exp(rng.normal(0, scale))
    x1, x2 = np.clip([cx - w / 2, cx + w / 2], 0, 1)
    y1, y2 = np.clip([cy - h / 2, cy + h / 2], 0, 1)
    if x2 - x1 < 1e-3 or y2 - y1 < 1e-3:  # pushed out of the frame: keep the original
        return list(box)
    return [float(x1), float(y1), float(x2), float(y2)]


def _annotate(rng: np.random.Generator, video_id: str, people: List[_Person], timestamps,
              ts_origin: int, height: int, width: int, false_box_prob: float):
    """CSV rows and proposals of the given keyframes."""
    rows, proposals = [], {}
    for ts in timestamps:
        boxes = []
        for pid, p in enumerate(people):
            box = _norm_box(p.box(ts - ts_origin), height, width)
            boxes.append(box)
            labels = [ACTIONS[p.movement][0]] + ([ACTIONS['carry'][0]] if p.carry else [])
            rows.extend((video_id, ts, box, cid, pid) for cid in labels)
        props = [_jitter(rng, b, 0.02) + [float(rng.uniform(0.92, 1.0))] for b in boxes]
        if rng.random() < false_box_prob:  # a confident false person detection
            x, y = rng.uniform(0, 0.7, 2)
            props.append([x, y, x + 0.2, y + 0.3, float(rng.uniform(0.9, 0.95))])
        props.append(_jitter(rng, boxes[0], 0.3) + [float(rng.uniform(0.1, 0.5))])  # weak
        proposals[f'{video_id},{ts:04d}'] = np.asarray(props, dtype=np.float32)
    return rows, proposals


def _csv_line(row) -> str:
    video_id, ts, box, cid, pid = row
    return f'{video_id},{ts:04d},' + ','.join(f'{v:.3f}' for v in box) + f',{cid},{pid}\n'


def generate_mini_ava(out_dir: str, num_train_videos: int = 6, num_val_videos: int = 3,
                      seconds: int = 10, max_people: int = 3, height: int = 128,
                      width: int = 170, fps: int = 30, timestamp_start: int = 900,
                      kinetics_clips: int = 0, videos: bool = False, seed: int = 0) -> dict:
    """Write a mini-AVA(-Kinetics) under ``out_dir`` (layout in the module docstring).

    Args:
        out_dir (str): Output root.
        num_train_videos (int): AVA-style train videos. Defaults to 6.
        num_val_videos (int): AVA-style val videos. Defaults to 3.
        seconds (int): Video length; keyframes at ``timestamp_start + 2 .. + seconds - 2``.
            Defaults to 10.
        max_people (int): 2 or 3 people per video. Defaults to 3.
        height (int): Frame height. Defaults to 128.
        width (int): Frame width. Defaults to 170.
        fps (int): Defaults to 30.
        timestamp_start (int): Time of the first frame, in seconds. Defaults to 900 (AVA).
        kinetics_clips (int): Kinetics-style train clips (AVA-Kinetics). Defaults to 0.
        videos (bool): Also write ``videos/<id>.mp4``. Defaults to False.
        seed (int): Defaults to 0.

    Returns:
        dict: paths of the written annotation files and the generation settings.
    """
    if seconds < 5:
        raise ValueError(f'seconds must be >= 5 (keyframes 2 s from both ends), got {seconds}')
    if max_people not in (2, 3):
        raise ValueError(f'max_people must be 2 or 3, got {max_people}')
    if num_train_videos < 1 or num_val_videos < 1:
        raise ValueError('num_train_videos and num_val_videos must be >= 1')
    ann_dir = osp.join(out_dir, 'annotations')
    os.makedirs(ann_dir, exist_ok=True)
    keyframes = list(range(timestamp_start + 2, timestamp_start + seconds - 1))
    num_frames = seconds * fps
    out = dict(root=out_dir, label_file=osp.join(ann_dir, LABEL_MAP_NAME),
               timestamp_start=timestamp_start, timestamp_end=timestamp_start + seconds,
               fps=fps, height=height, width=width, keyframes=keyframes)
    with open(out['label_file'], 'w') as f:
        f.write(label_map_text())
    for split_idx, (split, count) in enumerate((('train', num_train_videos),
                                                 ('val', num_val_videos))):
        rng = np.random.default_rng([seed, split_idx])
        rows, proposals, excluded = [], {}, []
        for i in range(count):
            video_id = f'{split[:3]}ava{i:05d}'  # 11 characters, like AVA's YouTube ids
            people = _people(rng, height, width, max_people)
            frames = render_video(rng, people, height, width, num_frames, fps)
            _write_frames(osp.join(out_dir, 'rawframes', video_id), frames)
            if videos:
                _write_mp4(osp.join(out_dir, 'videos', f'{video_id}.mp4'), frames, fps)
            r, p = _annotate(rng, video_id, people, keyframes, timestamp_start, height, width,
                             false_box_prob=0.0 if split == 'train' else 0.15)
            rows += r
            proposals.update(p)
            # one annotated keyframe per video is excluded (its rows stay in the CSV, as the
            # exclusion has to be honoured by the dataset and the metric)
            excluded.append((video_id, keyframes[len(keyframes) // 2]))
        if split == 'train':
            for i in range(kinetics_clips):
                ytid, start = f'kinvid{i:05d}', 10 + 3 * i
                video_id = f'{ytid}_{start:06d}_{start + seconds:06d}'
                people = _people(rng, height, width, max_people)
                frames = render_video(rng, people, height, width, num_frames, fps)
                # AVAKineticsDataset reads clip frames from index 1 and centres keyframe ts at
                # frame fps * (ts - start)
                _write_frames(osp.join(out_dir, 'rawframes', video_id), frames)
                ts = start + seconds // 2
                r, p = _annotate(rng, video_id, people, [ts], start, height, width, 0.0)
                rows += r
                proposals.update({f'{ytid},{ts:04d}': v for v in p.values()})
        csv_path = osp.join(ann_dir, f'ava_{split}_v2.2.csv')
        with open(csv_path, 'w') as f:
            f.writelines(_csv_line(r) for r in rows)
        excl_path = osp.join(ann_dir, f'ava_{split}_excluded_timestamps_v2.2.csv')
        with open(excl_path, 'w') as f:
            f.writelines(f'{v},{ts:04d}\n' for v, ts in excluded)
        prop_path = osp.join(ann_dir, f'ava_dense_proposals_{split}.FAIR.recall_93.9.pkl')
        with open(prop_path, 'wb') as f:
            pickle.dump(proposals, f)
        out.update({f'{split}_ann': csv_path, f'{split}_exclude': excl_path,
                    f'{split}_proposals': prop_path})
    with open(osp.join(out_dir, 'meta.json'), 'w') as f:
        json.dump(dict(task='ava', seed=seed, kinetics_clips=kinetics_clips,
                       actions={k: v[0] for k, v in ACTIONS.items()},
                       **{k: v for k, v in out.items() if k != 'root'}), f, indent=1)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--num-train-videos', type=int, default=6)
    parser.add_argument('--num-val-videos', type=int, default=3)
    parser.add_argument('--seconds', type=int, default=10, help='length of each video')
    parser.add_argument('--max-people', type=int, default=3, choices=(2, 3))
    parser.add_argument('--height', type=int, default=128)
    parser.add_argument('--width', type=int, default=170)
    parser.add_argument('--fps', type=int, default=30)
    parser.add_argument('--timestamp-start', type=int, default=900)
    parser.add_argument('--kinetics-clips', type=int, default=0,
                        help='add N Kinetics-style train clips (AVA-Kinetics layout)')
    parser.add_argument('--videos', action='store_true', help='also write mp4 videos')
    parser.add_argument('--seed', type=int, default=0)


def run(args: argparse.Namespace) -> dict:
    out = generate_mini_ava(args.out, args.num_train_videos, args.num_val_videos, args.seconds,
                            args.max_people, args.height, args.width, args.fps,
                            args.timestamp_start, args.kinetics_clips, args.videos, args.seed)
    print(f'wrote mini-AVA to {args.out}: ' + ', '.join(
        f'{k}={v}' for k, v in out.items() if k.endswith(('_ann', '_proposals', 'label_file'))))
    return out
