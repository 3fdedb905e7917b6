"""Spatio-temporal action detection demo: per-person AVA actions in a video.

    python tools/demo_ava.py CONFIG CHECKPOINT VIDEO \
        (--boxes boxes.json|boxes.csv | --proposals proposals.pkl [--video-id ID]) \
        [--timestamps 902 903 ...] [--video-start 0] [--score-thr 0.5] \
        [--label-map map.pbtxt] [--out-video out.mp4]

Person boxes are normalised ``x1, y1, x2, y2`` per timestamp (seconds, like AVA):
``--boxes`` JSON ``{"902": [[x1, y1, x2, y2], ...], ...}`` or CSV rows
``timestamp,x1,y1,x2,y2[,...]``, an AVA proposals pickle, or an mmdet person detector run on each keyframe
(``--det-config``/``--det-checkpoint``) (``'<video_id>,<%04d ts>'`` ->
[K, 4|5]; boxes below ``--person-thr`` are dropped as AVADataset does). ``--video-start`` is
the time of the video's first frame (900 for AVA's 15-min cuts, 0 for whole clips). For each
timestamp a clip is sampled around it as the config's test ``SampleAVAFrames`` does, run
through the config's test transforms and the detector, and every person's actions with a
score above ``--score-thr`` are printed; ``--out-video`` writes the video with the boxes and
labels of the nearest timestamp drawn on each frame.
"""
import argparse
import os.path as osp
from typing import Dict

import cv2
import numpy as np

import vmae2_mm  # noqa: F401  (compat fixes + registration)
from mmengine.config import Config
from mmengine.registry import init_default_scope
from vmae2_mm.apis.inference_spatiotemporal import (build_detector, clip_indices, detect,
                                                    detect_persons, draw, read_boxes,
                                                    read_label_names, read_proposals,
                                                    test_transforms, write_ava_csv)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('video', help='video file (decord-readable, e.g. mp4)')
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument('--boxes', help='JSON or CSV of normalised person boxes per timestamp')
    src.add_argument('--proposals', help='AVA proposals pickle')
    src.add_argument('--det-config', help='mmdet person detector config (with --det-checkpoint)')
    parser.add_argument('--det-checkpoint', help='mmdet person detector weights')
    parser.add_argument('--det-score-thr', type=float, default=0.5,
                        help='person detection score threshold')
    parser.add_argument('--det-person-class', type=int, default=0,
                        help='the detector\'s person label (0 for COCO models)')
    parser.add_argument('--video-id', help='proposal-key video id (default: video file stem)')
    parser.add_argument('--person-thr', type=float, default=0.9,
                        help='proposal score threshold (max score kept if none passes)')
    parser.add_argument('--timestamps', type=int, nargs='+',
                        help='timestamps to process (default: all with boxes; with '
                        '--det-config every whole second of the video)')
    parser.add_argument('--video-start', type=float, default=0.0,
                        help='time of the first video frame in seconds')
    parser.add_argument('--score-thr', type=float, default=0.5)
    parser.add_argument('--label-map', help='pbtxt label map (default: the config test one)')
    parser.add_argument('--out-video', help='write a visualised mp4 here')
    parser.add_argument('--out-csv', help='write the detections as an AVA result CSV here')
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


def main(argv=None) -> Dict[int, list]:
    """Returns {timestamp: [(box [4] normalised, [(class_id, name, score), ...]), ...]}."""
    args = parse_args(argv)
    import decord
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    video_id = args.video_id or osp.splitext(osp.basename(args.video))[0]
    boxes = None
    if args.boxes:
        boxes = read_boxes(args.boxes)
    elif args.proposals:
        boxes = read_proposals(args.proposals, video_id, args.person_thr)
    if not osp.isfile(args.video):
        raise FileNotFoundError(f'video not found: {args.video}')
    reader = decord.VideoReader(args.video, num_threads=1)
    fps, num_frames = reader.get_avg_fps(), len(reader)
    if boxes is None:
        if not args.det_checkpoint:
            raise ValueError('--det-config needs --det-checkpoint (the detector weights)')
        stamps = args.timestamps or [int(args.video_start) + s
                                     for s in range(int(num_frames / fps) + 1)]
        keyframes = {}
        for ts in stamps:
            i = int(round((ts - args.video_start) * fps))
            if 0 <= i < num_frames:
                keyframes[ts] = reader[i].asnumpy()
        boxes = detect_persons(args.det_config, args.det_checkpoint, keyframes,
                               args.det_score_thr, args.det_person_class, args.device)
        empty = [ts for ts, b in boxes.items() if len(b) == 0]
        if empty:
            print(f'no person found at timestamps {empty} (score >= {args.det_score_thr})')
        boxes = {ts: b for ts, b in boxes.items() if len(b)}
        if not boxes:
            raise ValueError(f'{args.video}: the person detector found nobody at any of '
                             f'{len(keyframes)} keyframes (score >= {args.det_score_thr})')
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

    if args.out_csv:
        n = write_ava_csv(args.out_csv, video_id, results)
        print(f'wrote {args.out_csv} ({n} rows)')
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
