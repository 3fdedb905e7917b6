"""Temporal action detection on raw videos: segments in seconds with class names and scores.

Usage::

    python tools/infer_localizer.py VIDEOS CONFIG CHECKPOINT \
        --extractor-config EXT_CONFIG --extractor-checkpoint EXT_CKPT [--out-dir DIR] \
        [--label-file FILE] [--feat-stats channel_stats.npz] [--cache-dir DIR] \
        [--min-score 0.3] [--device cpu] [--stride 4] [--fps 30] [--batch-size 8] [--amp bf16]

VIDEOS is a video file, a folder (searched recursively) or a list file (one path per line).
CONFIG / CHECKPOINT are the ActionFormer (``configs/localization/``); EXT_CONFIG / EXT_CKPT the
feature extractor the localizer was trained on (as for ``tools/extract_features.py``; its
stride and clip length set the time grid). ``--feat-stats`` is the training features'
``channel_stats.npz`` for configs that standardise features; ``--cache-dir`` keeps the
features as the ``.npy`` + ``.json`` pairs ``extract_features.py`` writes and reuses them.

Per video: ``<id>.json`` (ActivityNet-style results), ``<id>.srt`` and ``<id>_timeline.png``
(segments scoring >= ``--min-score``); ``results.json`` holds all videos. A table of the
segments is printed. Unreadable or too-short videos are listed at the end (and in
``failures.json``) and the others still run; the exit status is 1 only when no video worked.
The logic is in :mod:`vmae2_mm.apis.inference_localizer`.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import vmae2_mm  # noqa: E402,F401  (registration, stack fixes)
from vmae2_mm.apis.inference_localizer import format_table, localize_videos  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('videos', help='video file, folder of videos or list file')
    parser.add_argument('config', help='ActionFormer config (configs/localization/...)')
    parser.add_argument('checkpoint', help='ActionFormer checkpoint (vmae2_mm or official)')
    parser.add_argument('--extractor-config', required=True,
                        help='feature-extraction (or recognition) config of the features')
    parser.add_argument('--extractor-checkpoint', required=True,
                        help='its backbone checkpoint; "none" keeps random weights (tests)')
    parser.add_argument('--out-dir', default='tad_out', help='output folder')
    parser.add_argument('--label-file', help='class names by label id, one per line (default: '
                        "from the config's annotation file)")
    parser.add_argument('--feat-stats', help='channel_stats.npz of the training features')
    parser.add_argument('--cache-dir', help='read / write features here (.npy + .json)')
    parser.add_argument('--video-root', help='prefix for relative paths in a list file')
    parser.add_argument('--min-score', type=float, default=0.3,
                        help='segments shown in the table, SRT and PNG (the JSON keeps all)')
    parser.add_argument('--device', default='cpu', help='cpu, cuda:0, ...')
    parser.add_argument('--stride', type=int, help='extraction stride override (frames)')
    parser.add_argument('--fps', type=float, help='resample to this frame rate (as the '
                        'training features were extracted with extract_features.py --fps)')
    parser.add_argument('--batch-size', type=int, help='clips per extractor forward pass')
    parser.add_argument('--amp', choices=('none', 'bf16', 'fp16'), help='extractor autocast')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    ext_ckpt = None if args.extractor_checkpoint.lower() == 'none' else \
        args.extractor_checkpoint
    out = localize_videos(
        args.videos, args.config, args.checkpoint, args.extractor_config, ext_ckpt,
        args.out_dir, label_file=args.label_file, feat_stats=args.feat_stats,
        cache_dir=args.cache_dir, min_score=args.min_score, device=args.device,
        extractor_overrides=dict(stride=args.stride, fps=args.fps, batch_size=args.batch_size,
                                 amp=args.amp),
        video_root=args.video_root, progress=not args.no_progress)
    print(format_table(out['records'], args.min_score))
    print(f'{len(out["records"])} videos localised; all results: {out["results_file"]}')
    if out['failures']:
        print(f'{len(out["failures"])} videos FAILED:')
        for f in out['failures']:
            print(f'  {f["video"]}: {f["error"]}: {f["reason"]}')
    return 1 if out['failures'] and not out['records'] else 0


if __name__ == '__main__':
    sys.exit(main())
