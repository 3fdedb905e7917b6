"""Generated motion clips for recognition: the label is decidable only from motion.

Each clip shows a randomly textured square gliding over a randomly textured static background
in one of ``K`` directions (angle ``2*pi*k/K``), wrapping around the frame edges. Start position,
textures and speed jitter are random, so any single frame is uninformative: only the direction
of motion tells the class. Clips are real mp4 files (OpenCV ``mp4v``) listed in mmaction2 video
lists (``relative/path.mp4 label``). Everything is deterministic given ``seed``.
"""
import argparse
import json
import math
import os
import os.path as osp
from typing import List, Optional, Tuple

import cv2
import numpy as np


def class_names(num_classes: int) -> List[str]:
    """Readable names: ``move_000deg``, ``move_090deg``, ... for ``num_classes`` directions."""
    return [f'move_{round(360 * k / num_classes) % 360:03d}deg' for k in range(num_classes)]


def _texture(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Smooth random colour texture [h, w, 3] uint8 (upsampled coarse noise)."""
    coarse = rng.integers(0, 256, size=(cells, cells, 3), dtype=np.uint8)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)


def render_motion_clip(rng: np.random.Generator, label: int, num_classes: int,
                       num_frames: int, size: int, speed: float = 1.5) -> np.ndarray:
    """Render one clip.

    Args:
        rng (Generator): Source of randomness.
        label (int): Direction index in ``[0, num_classes)``.
        num_classes (int): Number of directions K.
        num_frames (int): Frames T.
        size (int): Frame height and width S.
        speed (float): Mean displacement in pixels per frame.

    Returns:
        ndarray: [T, S, S, 3] uint8, RGB.
    """
    # dim grey background, bright colourful sprite: the sprite is easy to see, but where it
    # goes is the only thing that tells the class
    background = (_texture(rng, size, size, cells=8).mean(-1, keepdims=True) * 0.3 + 30)
    background = np.repeat(background, 3, axis=-1).astype(np.uint8)
    side = max(4, size // 3)
    sprite = (_texture(rng, side, side, cells=3) // 2 + 128).astype(np.uint8)
    angle = 2 * math.pi * label / num_classes + rng.uniform(-0.1, 0.1)
    v = speed * rng.uniform(0.8, 1.25)
    start = rng.uniform(0, size, size=2)
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    for t in range(num_frames):
        # image y grows downwards, so "up" (90 deg) is a negative y step
        x = int(round(start[0] + v * t * math.cos(angle))) % size
        y = int(round(start[1] - v * t * math.sin(angle))) % size
        layer = np.zeros((size, size, 3), dtype=np.uint8)
        alpha = np.zeros((size, size, 1), dtype=bool)
        layer[:side, :side] = sprite
        alpha[:side, :side] = True
        layer = np.roll(layer, (y, x), axis=(0, 1))
        alpha = np.roll(alpha, (y, x), axis=(0, 1))
        frames[t] = np.where(alpha, layer, background)
    return frames


def write_mp4(path: str, frames_rgb: np.ndarray, fps: float = 25.0) -> None:
    """Write [T, H, W, 3] uint8 RGB frames as an mp4 (OpenCV ``mp4v``), atomically."""
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    h, w = frames_rgb.shape[1:3]
    tmp = path + '.tmp.mp4'
    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*'mp4v'), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f'OpenCV cannot open a video writer for {tmp}')
    for frame in frames_rgb:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    os.replace(tmp, path)


def generate_motion_dataset(out_dir: str, num_classes: int = 4, train_per_class: int = 32,
                            val_per_class: int = 8, num_frames: int = 64, size: int = 64,
                            fps: float = 25.0, speed: float = 1.5, seed: int = 0,
                            splits: Optional[Tuple[str, ...]] = None) -> dict:
    """Write ``{out_dir}/videos/{split}/*.mp4``, ``{split}.txt`` lists and ``classes.txt``.

    Returns:
        dict: split name -> list file path, plus ``classes`` -> class list path.
    """
    if num_classes < 2:
        raise ValueError(f'num_classes must be >= 2, got {num_classes}')
    counts = {'train': train_per_class, 'val': val_per_class}
    splits = splits or tuple(s for s, n in counts.items() if n > 0)
    os.makedirs(out_dir, exist_ok=True)
    names = class_names(num_classes)
    out = {}
    for split_idx, split in enumerate(splits):
        # one independent stream per split, so train and val never share a clip
        rng = np.random.default_rng([seed, split_idx])
        lines = []
        for i in range(counts[split] * num_classes):
            label = i % num_classes
            rel = f'videos/{split}/{split}_{i:05d}_{names[label]}.mp4'
            frames = render_motion_clip(rng, label, num_classes, num_frames, size, speed)
            write_mp4(osp.join(out_dir, rel), frames, fps)
            lines.append(f'{rel} {label}')
        list_path = osp.join(out_dir, f'{split}.txt')
        with open(list_path, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        out[split] = list_path
    classes_path = osp.join(out_dir, 'classes.txt')
    with open(classes_path, 'w') as f:
        f.write('\n'.join(names) + '\n')
    out['classes'] = classes_path
    with open(osp.join(out_dir, 'meta.json'), 'w') as f:
        json.dump(dict(task='recognition', num_classes=num_classes, num_frames=num_frames,
                       size=size, fps=fps, speed=speed, seed=seed), f, indent=1)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--num-classes', type=int, default=4)
    parser.add_argument('--train-per-class', type=int, default=32)
    parser.add_argument('--val-per-class', type=int, default=8)
    parser.add_argument('--num-frames', type=int, default=64)
    parser.add_argument('--size', type=int, default=64)
    parser.add_argument('--fps', type=float, default=25.0)
    parser.add_argument('--speed', type=float, default=1.5, help='pixels per frame')
    parser.add_argument('--seed', type=int, default=0)


def run(args: argparse.Namespace) -> dict:
    out = generate_motion_dataset(args.out, args.num_classes, args.train_per_class,
                                  args.val_per_class, args.num_frames, args.size, args.fps,
                                  args.speed, args.seed)
    print(f'wrote motion clips to {args.out}: ' + ', '.join(f'{k}={v}' for k, v in out.items()))
    return out
