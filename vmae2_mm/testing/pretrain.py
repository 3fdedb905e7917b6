"""Generated clips for a masked-autoencoding learning check: drifting colour ramps.

Every clip is a per-channel linear intensity ramp in one direction ``theta`` (positive slopes of
random steepness, random offsets) that drifts in brightness over time. After VideoMAE's per-cube
normalisation every cube of a clip has the same target, so a masked autoencoder can predict the
hidden cubes from the visible ones and its loss falls well below the ~1.0 of predicting zeros,
whereas noise-textured clips (e.g. the recognition motion clips) leave nothing to infer. The
direction quadrant is written as a label (``path label`` lists), so the same clips also serve a
pre-train -> fine-tune demo. Clips are real mp4 files (OpenCV ``mp4v``); deterministic per seed.
"""
import argparse
import json
import math
import os
import os.path as osp

import numpy as np

from .recognition import write_mp4


def render_ramp_clip(rng: np.random.Generator, label: int, num_classes: int, num_frames: int,
                     size: int) -> np.ndarray:
    """One clip: [T, S, S, 3] uint8 RGB, ramp direction ``2*pi*label/num_classes`` +- 0.3 rad."""
    theta = 2 * math.pi * label / num_classes + rng.uniform(-0.3, 0.3)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) - (size - 1) / 2
    # strong slopes (>= 1.2 levels/px per channel) keep the mp4 codec noise small per cube
    proj = (x * math.cos(theta) - y * math.sin(theta)) * (64.0 / size)
    slopes = rng.uniform(1.2, 2.2, size=3)
    offsets = rng.uniform(100, 156, size=3)
    drift = rng.uniform(-1.0, 1.0)
    frames = np.empty((num_frames, size, size, 3), dtype=np.float32)
    for t in range(num_frames):
        frames[t] = offsets + drift * t + proj[..., None] * slopes
    return frames.clip(0, 255).round().astype(np.uint8)


def generate_ramp_dataset(out_dir: str, num_classes: int = 4, train_per_class: int = 12,
                          val_per_class: int = 4, num_frames: int = 24, size: int = 64,
                          fps: float = 25.0, seed: int = 0) -> dict:
    """Write ``{out_dir}/videos/{split}/*.mp4`` and ``train.txt`` / ``val.txt`` lists.

    Returns:
        dict: split name -> list file path.
    """
    if num_classes < 2:
        raise ValueError(f'num_classes must be >= 2, got {num_classes}')
    os.makedirs(out_dir, exist_ok=True)
    out = {}
    for split_idx, (split, per_class) in enumerate((('train', train_per_class),
                                                     ('val', val_per_class))):
        if per_class <= 0:
            continue
        rng = np.random.default_rng([seed, split_idx])
        lines = []
        for i in range(per_class * num_classes):
            label = i % num_classes
            rel = f'videos/{split}/{split}_{i:05d}.mp4'
            write_mp4(osp.join(out_dir, rel),
                      render_ramp_clip(rng, label, num_classes, num_frames, size), fps)
            lines.append(f'{rel} {label}')
        path = osp.join(out_dir, f'{split}.txt')
        with open(path, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        out[split] = path
    with open(osp.join(out_dir, 'meta.json'), 'w') as f:
        json.dump(dict(task='pretrain', num_classes=num_classes, num_frames=num_frames,
                       size=size, fps=fps, seed=seed), f, indent=1)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--num-classes', type=int, default=4)
    parser.add_argument('--train-per-class', type=int, default=12)
    parser.add_argument('--val-per-class', type=int, default=4)
    parser.add_argument('--num-frames', type=int, default=24)
    parser.add_argument('--size', type=int, default=64)
    parser.add_argument('--fps', type=float, default=25.0)
    parser.add_argument('--seed', type=int, default=0)


def run(args: argparse.Namespace) -> dict:
    out = generate_ramp_dataset(args.out, args.num_classes, args.train_per_class,
                                args.val_per_class, args.num_frames, args.size, args.fps,
                                args.seed)
    print(f'wrote ramp clips to {args.out}: ' + ', '.join(f'{k}={v}' for k, v in out.items()))
    return out
