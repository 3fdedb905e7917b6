"""Extract VideoMAE V2 clip features from untrimmed videos for temporal action detection.

    python tools/extract_features.py CONFIG CHECKPOINT --videos DIR_OR_LIST --out DIR \
        [--stride 4] [--fps 30] [--batch-size 8] [--amp bf16] [--preprocess official|normalized] \
        [--shard i/n] [--device cuda:0]

One ``<stem>.npy`` [N, C] float32 (N = (frames - clip_len) // stride + 1) and one ``<stem>.json``
metadata record per video. Finished videos are skipped, so an interrupted run resumes (a
``.npy`` that is truncated, empty or disagrees with its ``.json`` is redone, and temporary files
of a killed run are removed); corrupt or too-short videos are listed in ``failures.json``
(rewritten after each failure) and the run continues. A full disk stops the run with exit
status 2 and a message naming the video; every finished file is kept. Work is split across
processes with ``--shard i/n`` or by launching under ``torchrun`` (RANK / WORLD_SIZE).
"""
import argparse
import logging
import os
import sys

import torch
from mmengine.config import Config, DictAction

import vmae2_mm  # noqa: F401  (compat patches, registration)
from vmae2_mm.apis.feature_extraction import (FeatureWriteError, build_extractor_from_config,
                                              extract_videos, list_videos)


def parse_shard(text):
    try:
        i, n = (int(v) for v in text.split('/'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'--shard must look like i/n (e.g. 0/4), got {text!r}')
    if not (n >= 1 and 0 <= i < n):
        raise argparse.ArgumentTypeError(f'--shard i/n needs 0 <= i < n, got {text!r}')
    return i, n


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='feature-extraction or recognition config')
    parser.add_argument('checkpoint', help='backbone checkpoint (official K710 fine-tuned, '
                        'mmaction2 or HF layout); "none" keeps random weights (smoke tests)')
    parser.add_argument('--videos', required=True,
                        help='folder of videos (searched recursively) or a list file')
    parser.add_argument('--video-root', help='prefix for relative paths in a list file')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--stride', type=int, help='frames between clip starts '
                        '(THUMOS14 4, FineAction 16)')
    parser.add_argument('--fps', type=float, help='resample every video to this frame rate '
                        'first: features on one time grid (grid_fps in the metadata, read by '
                        'the TAD dataset); default: every decoded frame, as official')
    parser.add_argument('--batch-size', type=int, help='clips per forward pass')
    parser.add_argument('--chunk-frames', type=int, help='frames decoded per step')
    parser.add_argument('--preprocess', choices=('official', 'normalized'),
                        help='official: /255 only (as the released features); normalized: '
                        'also ImageNet mean/std')
    parser.add_argument('--amp', choices=('none', 'bf16', 'fp16'),
                        help='autocast dtype (default fp32, as official)')
    parser.add_argument('--shard', type=parse_shard,
                        help='i/n: handle videos i, i+n, ... (default: RANK/WORLD_SIZE from '
                        'torchrun, else 0/1)')
    parser.add_argument('--device', help='default cuda:LOCAL_RANK if CUDA is available, else cpu')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. feature_extraction.stride=16')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    logger = logging.getLogger('extract_features')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.shard is not None:
        shard = args.shard
    else:
        shard = (int(os.environ.get('RANK', 0)), int(os.environ.get('WORLD_SIZE', 1)))
    if args.device:
        device = args.device
    elif torch.cuda.is_available():
        device = f'cuda:{int(os.environ.get("LOCAL_RANK", 0))}'
    else:
        device = 'cpu'
    checkpoint = None if args.checkpoint.lower() == 'none' else args.checkpoint
    overrides = dict(stride=args.stride, fps=args.fps, batch_size=args.batch_size,
                     chunk_frames=args.chunk_frames, preprocess=args.preprocess, amp=args.amp)
    extractor = build_extractor_from_config(cfg, checkpoint, overrides, device, logger)
    videos = list_videos(args.videos, args.video_root)
    try:
        summary = extract_videos(
            extractor, videos, args.out, shard=shard, progress=not args.no_progress,
            extra_meta=dict(config=os.path.basename(args.config),
                            checkpoint=os.path.basename(checkpoint) if checkpoint else None))
    except FeatureWriteError as e:
        logger.error(f'ERROR: {e.strerror}')
        return 2
    rate = summary['clips'] / summary['seconds'] if summary['seconds'] > 0 else 0.0
    if summary['stale_tmp_removed']:
        logger.info(f'removed {len(summary["stale_tmp_removed"])} temporary files of an '
                    'interrupted run')
    logger.info(f'shard {shard[0]}/{shard[1]}: {summary["done"]} extracted, '
                f'{summary["skipped"]} already done ({summary["redone"]} incomplete ones '
                f'redone), {summary["failed"]} failed '
                f'({summary["clips"]} clips, {summary["frames_decoded"]} frames decoded, '
                f'{rate:.2f} clips/s); failure report: {summary["failure_report"]}')
    for f in summary['failures']:
        logger.warning(f'FAILED {f["video"]}: {f["error"]}: {f["reason"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
