"""Recognise actions over a whole video with sliding windows.

Usage::

    python tools/infer_recognizer.py VIDEO CONFIG CHECKPOINT [--label-file FILE|k400]
        [--out-dir DIR] [--window-stride SECONDS] [--topk 5] [--device cpu]
        [--dtype fp32|bf16|fp16] [--batch-size 8] [--out-video]

A window is one clip of the config's test ``SampleFrames`` (clip_len x frame_interval frames);
windows start every ``--window-stride`` seconds (default: one window length). Prints the top-k
of every window with its start/end in seconds and the whole-video top-k (mean of the window
scores); writes ``<stem>.json``, a timeline ``<stem>_timeline.png`` and, with ``--out-video``,
``<stem>_labelled.mp4`` into ``--out-dir``. The logic is in
:mod:`vmae2_mm.apis.inference_recognizer`.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402

import vmae2_mm  # noqa: E402,F401  (registration, stack fixes)
from vmae2_mm.apis.inference_recognizer import DTYPES, infer_video  # noqa: E402
from vmae2_mm.checkpoint.label_maps import read_class_list  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('video', help='video file')
    parser.add_argument('config', help='recognition config')
    parser.add_argument('checkpoint', help='checkpoint (vmae2_mm/mmengine, official, HF or '
                        'mmaction2 layout)')
    parser.add_argument('--label-file', help='class names, one per line in index order, or '
                        'k400/k600/k700/k710')
    parser.add_argument('--out-dir', default='infer_out', help='output folder')
    parser.add_argument('--window-stride', type=float,
                        help='seconds between window starts (default: one window length)')
    parser.add_argument('--topk', type=int, default=5, help='labels per window and video')
    parser.add_argument('--device', default='cpu', help='cpu, cuda:0, ...')
    parser.add_argument('--dtype', default='fp32', choices=sorted(DTYPES),
                        help='autocast dtype')
    parser.add_argument('--batch-size', type=int, default=8, help='windows per forward pass')
    parser.add_argument('--out-video', action='store_true',
                        help='also write the video with the labels drawn')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='config overrides key=value')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    names = read_class_list(args.label_file) if args.label_file else None
    record = infer_video(args.video, args.config, args.checkpoint, args.out_dir, names,
                         args.window_stride, args.topk, args.device, args.dtype,
                         args.batch_size, args.out_video, not args.no_progress,
                         args.cfg_options)
    print(f'{record["video"]}: {record["num_frames"]} frames, {record["duration_s"]:.2f} s, '
          f'{len(record["windows"])} windows of {record["window_s"]:.2f} s')
    for w in record['windows']:
        top = ', '.join(f'{k["name"]} {k["score"]:.3f}' for k in w['topk'])
        print(f'  {w["start_s"]:8.2f} - {w["end_s"]:8.2f} s  {top}')
    print('video: ' + ', '.join(f'{k["name"]} {k["score"]:.3f}' for k in record['video_topk']))
    for kind, path in record['files'].items():
        print(f'wrote {kind}: {path}')
    return record


if __name__ == '__main__':
    main()
