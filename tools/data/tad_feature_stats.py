"""Per-channel mean/std of TAD clip features over one subset, for ``StandardizeTADFeatures``.

    python tools/data/tad_feature_stats.py FEAT_DIR ANN_FILE [--subset Validation] \
        [--out FEAT_DIR/channel_stats.npz]

``ANN_FILE`` is the ActivityNet-style JSON the TAD dataset reads (``database.<video>.subset``);
``FEAT_DIR/<video>.npy`` are the ``[T, C]`` features ``tools/extract_features.py`` wrote. The
statistics are over all feature rows of the subset's videos (THUMOS14 trains on its
"Validation" subset). Writes ``mean`` [C] and ``std`` [C] (float64, std + 1e-6).
"""
import argparse
import json
import os.path as osp
import sys

import numpy as np


def feature_stats(feat_dir: str, ann_file: str, subset: str):
    with open(ann_file, encoding='utf-8') as f:
        database = json.load(f)['database']
    videos = sorted(v for v, e in database.items() if e.get('subset') == subset)
    if not videos:
        subsets = sorted({e.get('subset') for e in database.values()})
        raise ValueError(f'{ann_file}: no video in subset {subset!r} (subsets: {subsets})')
    total, total_sq, rows = 0.0, 0.0, 0
    for vid in videos:
        path = osp.join(feat_dir, f'{vid}.npy')
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path}: features of {vid} ({subset}) not found')
        x = np.load(path, allow_pickle=False).astype(np.float64)
        if x.ndim != 2:
            raise ValueError(f'{path}: expected [T, C] features, got shape {x.shape}')
        total, total_sq, rows = total + x.sum(0), total_sq + (x * x).sum(0), rows + x.shape[0]
    mean = total / rows
    std = np.sqrt(np.maximum(total_sq / rows - mean * mean, 0.0)) + 1e-6
    return mean, std, len(videos), rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('feat_dir')
    parser.add_argument('ann_file')
    parser.add_argument('--subset', default='Validation', help='training subset name')
    parser.add_argument('--out', help='output .npz (default FEAT_DIR/channel_stats.npz)')
    args = parser.parse_args(argv)
    out = args.out or osp.join(args.feat_dir, 'channel_stats.npz')
    mean, std, n, rows = feature_stats(args.feat_dir, args.ann_file, args.subset)
    np.savez(out, mean=mean, std=std)
    print(f'{out}: mean/std of {mean.shape[0]} channels over {rows} features of {n} '
          f'{args.subset} videos')
    return out


if __name__ == '__main__':
    sys.exit(0 if main() else 1)
