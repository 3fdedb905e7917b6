"""Generated mini-THUMOS: untrimmed mp4 videos with action segments + ActionFormer-style JSON.

Every video shows a smooth random colour texture (darkened, slowly drifting, with a little
per-frame noise) as background. During an action of class ``k`` a bright sprite appears whose
colour, shape and motion identify the class: colour = hue ``k / K`` at full saturation, shape
cycles through disc / square / ring, and it moves along direction ``2 * pi * k / K`` (bouncing
off the frame edges). Outside actions only the background is visible, so segments are plainly
visible and classes are decidable from appearance and motion.

Layout written under ``out``::

    videos/<video_id>.mp4                   # OpenCV 'mp4v', RGB content
    annotations/mini_thumos14.json          # {"database": {vid: {subset, duration, fps,
                                            #   annotations: [{segment, segment(frames),
                                            #                  label, label_id}]}}}
    classes.txt                             # one class name per line, by label_id
    videos/<corrupt>.mp4                    # only with --corrupt N (not in the JSON)

Segments are whole frames: ``segment = [f0 / fps, f1 / fps]`` for the frames ``[f0, f1)`` the
sprite is drawn on. Subsets are ``Validation`` (training, as in THUMOS14) and ``Test``.
Everything is deterministic given ``seed``.
"""
import argparse
import colorsys
import json
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from .recognition import write_mp4

SHAPES = ('disc', 'square', 'ring')


def class_names(num_classes: int) -> List[str]:
    """``action_00_disc``, ``action_01_square``, ... one per class id."""
    return [f'action_{k:02d}_{SHAPES[k % len(SHAPES)]}' for k in range(num_classes)]


def _class_colour(k: int, num_classes: int) -> Tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(k / num_classes, 1.0, 1.0)
    return int(255 * r), int(255 * g), int(255 * b)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Dark, low-saturation smooth texture [2h, 2w, 3] uint8 (oversized so it can drift)."""
    coarse = rng.integers(0, 256, size=(6, 6, 3)).astype(np.float32)
    tex = cv2.resize(coarse, (2 * w, 2 * h), interpolation=cv2.INTER_CUBIC)
    grey = tex.mean(axis=2, keepdims=True)
    tex = 0.4 * grey + 0.1 * tex  # muted: sprites are saturated and bright
    return np.clip(tex + 20, 0, 255).astype(np.uint8)


def _draw_sprite(frame: np.ndarray, shape: str, centre: Tuple[int, int], radius: int,
                 colour: Tuple[int, int, int]) -> None:
    cx, cy = centre
    if shape == 'disc':
        cv2.circle(frame, (cx, cy), radius, colour, thickness=-1)
    elif shape == 'square':
        cv2.rectangle(frame, (cx - radius, cy - radius), (cx + radius, cy + radius), colour,
                      thickness=-1)
    else:
        cv2.circle(frame, (cx, cy), radius, colour, thickness=max(2, radius // 3))


def sample_segments(rng: np.random.Generator, num_frames: int, fps: float, num_classes: int,
                    min_len_s: float = 2.0, max_len_s: float = 6.0, min_gap_s: float = 1.0,
                    max_actions: int = 4) -> List[Tuple[int, int, int]]:
    """Non-overlapping actions ``(first frame, end frame (exclusive), class)`` in time order."""
    n = int(rng.integers(1, max_actions + 1))
    lens = rng.integers(int(min_len_s * fps), int(max_len_s * fps) + 1, size=n)
    gap = int(math.ceil(min_gap_s * fps))
    free = num_frames - int(lens.sum()) - gap * (n + 1)
    while free < 0 and n > 1:  # too many for this video: drop the last one
        n -= 1
        lens = lens[:n]
        free = num_frames - int(lens.sum()) - gap * (n + 1)
    if free < 0:
        raise ValueError(f'a video of {num_frames} frames cannot hold an action of '
                         f'{min_len_s}-{max_len_s} s at {fps} fps')
    # split the free frames into n + 1 extra gaps
    cuts = np.sort(rng.integers(0, free + 1, size=n))
    extra = np.diff(np.concatenate([[0], cuts, [free]]))
    out, t = [], 0
    for i in range(n):
        t += gap + int(extra[i])
        out.append((t, t + int(lens[i]), int(rng.integers(0, num_classes))))
        t += int(lens[i])
    return out


def render_video(rng: np.random.Generator, num_frames: int, height: int, width: int,
                 actions: List[Tuple[int, int, int]], num_classes: int) -> np.ndarray:
    """Frames [T, H, W, 3] uint8 RGB of one untrimmed video with the given actions."""
    bg = _background(rng, height, width)
    drift = rng.uniform(-0.3, 0.3, size=2)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for f in range(num_frames):
        ox = int(width / 2 + drift[0] * f) % width
        oy = int(height / 2 + drift[1] * f) % height
        frame = bg[oy:oy + height, ox:ox + width].astype(np.int16)
        frame += rng.integers(-6, 7, size=(height, width, 1), dtype=np.int16)
        frames[f] = np.clip(frame, 0, 255).astype(np.uint8)
    size = min(height, width)
    limits = np.array([width, height])
    radius = max(3, size // 7)
    for f0, f1, k in actions:
        angle = 2 * math.pi * k / num_classes
        speed = size / 40.0
        pos = rng.uniform(radius, limits - radius)
        vel = speed * np.array([math.cos(angle), -math.sin(angle)])
        colour = _class_colour(k, num_classes)
        shape = SHAPES[k % len(SHAPES)]
        for f in range(f0, f1):
            frame = np.ascontiguousarray(frames[f])
            _draw_sprite(frame, shape, (int(pos[0]), int(pos[1])), radius, colour)
            frames[f] = frame
            pos = pos + vel
            for d in range(2):  # bounce off the edges
                if not radius <= pos[d] <= limits[d] - radius:
                    vel[d] = -vel[d]
                    pos[d] = np.clip(pos[d], radius, limits[d] - radius)
    return frames


def generate_mini_thumos(out_dir: str, num_val: int = 12, num_test: int = 6,
                         num_classes: int = 4, size: int = 64, fps: float = 10.0,
                         min_duration: float = 20.0, max_duration: float = 40.0,
                         num_corrupt: int = 0, seed: int = 0,
                         width: Optional[int] = None) -> Dict[str, object]:
    """Write the mini-THUMOS videos, JSON and class list (see the module docstring).

    Args:
        out_dir (str): Output folder.
        num_val (int): ``Validation`` (training) videos. Defaults to 12.
        num_test (int): ``Test`` videos. Defaults to 6.
        num_classes (int): Classes K. Defaults to 4.
        size (int): Frame height (and width unless ``width`` is given). Defaults to 64.
            Widths must be multiples of 32: decord 0.6.0 mis-reads some other widths of
            OpenCV-written mp4s (e.g. 48).
        fps (float): Frame rate. Defaults to 10.
        min_duration (float): Shortest video (s). Defaults to 20.
        max_duration (float): Longest video (s). Defaults to 40.
        num_corrupt (int): Extra unreadable ``.mp4`` files (not annotated). Defaults to 0.
        seed (int): Random seed. Defaults to 0.
        width (int, optional): Frame width (e.g. 320 with ``size=180`` for THUMOS-like
            frames). Defaults to ``size``.

    Returns:
        dict: ``ann_file``, ``video_dir``, ``classes_file``, ``videos`` (id -> path) and
        ``corrupt`` (paths).
    """
    errors = []
    if num_classes < 1:
        errors.append(f'num_classes must be >= 1, got {num_classes}')
    if num_val < 0 or num_test < 0 or num_val + num_test < 1:
        errors.append(f'need at least one video, got num_val={num_val}, num_test={num_test}')
    if not 0 < min_duration <= max_duration:
        errors.append(f'need 0 < min_duration <= max_duration, got {min_duration}, '
                      f'{max_duration}')
    width = size if width is None else width
    if size < 16 or fps <= 0:
        errors.append(f'size must be >= 16 and fps > 0, got {size}, {fps}')
    if width < 32 or width % 32:
        errors.append(f'frame width must be a positive multiple of 32 (decord 0.6.0 mis-reads '
                      f'others, e.g. 48), got {width}')
    if errors:
        raise ValueError('mini-THUMOS: ' + '; '.join(errors))
    names = class_names(num_classes)
    video_dir = osp.join(out_dir, 'videos')
    os.makedirs(video_dir, exist_ok=True)
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    database, videos = {}, {}
    plan = [('Validation', 'video_validation', i) for i in range(num_val)]
    plan += [('Test', 'video_test', i) for i in range(num_test)]
    for subset, stem, i in plan:
        vid = f'{stem}_{i + 1:07d}'
        # one stream per video: adding videos never changes existing ones
        rng = np.random.default_rng([seed, 0 if subset == 'Validation' else 1, i])
        num_frames = int(round(rng.uniform(min_duration, max_duration) * fps))
        actions = sample_segments(rng, num_frames, fps, num_classes)
        frames = render_video(rng, num_frames, size, width, actions, num_classes)
        path = osp.join(video_dir, f'{vid}.mp4')
        write_mp4(path, frames, fps)
        videos[vid] = path
        database[vid] = dict(
            subset=subset, duration=num_frames / fps, fps=fps,
            annotations=[dict(label=names[k], segment=[f0 / fps, f1 / fps],
                              **{'segment(frames)': [f0, f1]}, label_id=k)
                         for f0, f1, k in actions])
    ann_file = osp.join(out_dir, 'annotations', 'mini_thumos14.json')
    with open(ann_file, 'w') as f:
        json.dump(dict(version='mini-THUMOS14 (generated)', database=database), f, indent=1)
    classes_file = osp.join(out_dir, 'classes.txt')
    with open(classes_file, 'w') as f:
        f.write('\n'.join(names) + '\n')
    corrupt = []
    crng = np.random.default_rng([seed, 2])
    for i in range(num_corrupt):
        path = osp.join(video_dir, f'video_corrupt_{i + 1:07d}.mp4')
        with open(path, 'wb') as f:
            f.write(crng.integers(0, 256, size=4096, dtype=np.uint8).tobytes())
        corrupt.append(path)
    return dict(ann_file=ann_file, video_dir=video_dir, classes_file=classes_file,
                videos=videos, corrupt=corrupt)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--num-val', type=int, default=12,
                        help='"Validation" videos (the THUMOS14 training subset)')
    parser.add_argument('--num-test', type=int, default=6, help='"Test" videos')
    parser.add_argument('--num-classes', type=int, default=4)
    parser.add_argument('--size', type=int, default=64, help='frame height (and width)')
    parser.add_argument('--width', type=int, help='frame width, a multiple of 32 (default: size)')
    parser.add_argument('--fps', type=float, default=10.0)
    parser.add_argument('--min-duration', type=float, default=20.0, help='seconds')
    parser.add_argument('--max-duration', type=float, default=40.0, help='seconds')
    parser.add_argument('--corrupt', type=int, default=0,
                        help='extra unreadable .mp4 files (to exercise failure reports)')
    parser.add_argument('--seed', type=int, default=0)


def run(args: argparse.Namespace) -> dict:
    out = generate_mini_thumos(args.out, args.num_val, args.num_test, args.num_classes,
                               args.size, args.fps, args.min_duration, args.max_duration,
                               args.corrupt, args.seed, args.width)
    print(f'wrote {len(out["videos"])} videos to {out["video_dir"]} and annotations to '
          f'{out["ann_file"]}' + (f' (+{len(out["corrupt"])} corrupt files)'
                                  if out['corrupt'] else ''))
    return out
