"""TAD mAP evaluator on a THUMOS-sized prediction set, ours vs mmaction2's reference.

200 videos x 200 predicted segments (40,000 predictions), 20 classes, ~16 GT segments per
video (THUMOS14 test: 3358 instances in 212 videos), tIoU 0.3:0.1:0.7. Predictions are a mix
of jittered GT segments (with the right or a wrong class) and random segments, with distinct
scores. ``compute_tad_map`` (vmae2_mm) and mmaction2's ``compute_average_precision_detection``
(per class, the same ActivityNet greedy matching) are timed side by side and must agree.

    python benchmarks/bench_tad_map.py [--videos 200] [--preds 200] [--classes 20] [--json PATH]
"""
import argparse
import json
import time

import numpy as np

import vmae2_mm  # noqa: F401
from vmae2_mm.evaluation.tad_metric import THUMOS14_TIOUS, compute_tad_map


def make_set(num_videos, preds_per_video, num_classes, gt_per_video=16, seed=0):
    rng = np.random.default_rng(seed)
    gt, preds = {}, {}
    for v in range(num_videos):
        duration = rng.uniform(120, 400)
        m = int(rng.integers(gt_per_video // 2, 2 * gt_per_video))
        starts = rng.uniform(0, duration - 20, m)
        segs = np.stack([starts, starts + rng.uniform(1, 20, m)], 1)
        labels = rng.integers(0, num_classes, m)
        gt[f'video_test_{v:07d}'] = dict(segments=segs, labels=labels)
        k_hit = preds_per_video // 2
        idx = rng.integers(0, m, k_hit)
        length = segs[idx, 1] - segs[idx, 0]
        hit = segs[idx] + rng.normal(0, 0.15, (k_hit, 2)) * length[:, None]
        hit_labels = np.where(rng.random(k_hit) < 0.7, labels[idx],
                              rng.integers(0, num_classes, k_hit))
        k_rand = preds_per_video - k_hit
        rs = rng.uniform(0, duration, k_rand)
        rand = np.stack([rs, rs + rng.uniform(0.5, 30, k_rand)], 1)
        p_segs = np.sort(np.concatenate([hit, rand]), axis=1)
        preds[f'video_test_{v:07d}'] = dict(
            segments=p_segs, scores=rng.random(preds_per_video),
            labels=np.concatenate([hit_labels, rng.integers(0, num_classes, k_rand)]))
    return gt, preds


def mmaction_reference(gt, preds, tious):
    from mmaction.evaluation.functional.eval_detection import \
        compute_average_precision_detection
    classes = sorted({int(c) for g in gt.values() for c in g['labels']})
    ap = np.zeros((len(tious), len(classes)))
    for j, c in enumerate(classes):
        g = [{'video-id': v, 't-start': a, 't-end': b} for v, d in gt.items()
             for (a, b), lab in zip(d['segments'], d['labels']) if lab == c]
        p = [{'video-id': v, 't-start': a, 't-end': b, 'score': s} for v, d in preds.items()
             for (a, b), s, lab in zip(d['segments'], d['scores'], d['labels']) if lab == c]
        ap[:, j] = compute_average_precision_detection(g, p, np.asarray(tious))
    return ap


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--videos', type=int, default=200)
    parser.add_argument('--preds', type=int, default=200, help='predictions per video')
    parser.add_argument('--classes', type=int, default=20)
    parser.add_argument('--repeats', type=int, default=3, help='best of N for ours')
    parser.add_argument('--json', metavar='PATH', help='also write the figures as JSON '
                        '(read by benchmarks/run_all.py)')
    args = parser.parse_args()
    gt, preds = make_set(args.videos, args.preds, args.classes)
    n_gt = sum(len(g['labels']) for g in gt.values())
    print(f'{args.videos} videos, {args.videos * args.preds} predictions, {n_gt} GT segments, '
          f'{args.classes} classes, tIoU {list(THUMOS14_TIOUS)}')
    ours_t = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        res = compute_tad_map(gt, preds, THUMOS14_TIOUS, tol=1e-3)
        ours_t.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    ref_ap = mmaction_reference(gt, preds, THUMOS14_TIOUS)
    ref_t = time.perf_counter() - t0
    diff = float(np.abs(res['ap'] - ref_ap).max())
    print(f'{"evaluator":<34} {"seconds":>8}')
    print(f'{"vmae2_mm compute_tad_map (best)":<34} {min(ours_t):>8.3f}')
    print(f'{"mmaction2 reference":<34} {ref_t:>8.3f}')
    print(f'speed-up {ref_t / min(ours_t):.1f}x; mAP@tIoU '
          + ' '.join(f'{100 * m:.2f}' for m in res['mAP'])
          + f' avg {100 * res["average_mAP"]:.2f}; max |AP difference| vs reference {diff:.1e}')
    if args.json:
        report = dict(
            benchmark='TAD mAP evaluator',
            settings=dict(videos=args.videos, preds=args.preds, classes=args.classes,
                          repeats=args.repeats, ground_truth=n_gt),
            ratios=[dict(name='ours vs mmaction2 reference (speed-up)',
                         value=ref_t / min(ours_t), op=None, target=None),
                    dict(name='max |AP difference| vs reference', value=diff, op='<=',
                         target=1e-6)],
            times=[dict(name='vmae2_mm compute_tad_map (best)', seconds=min(ours_t),
                        average_mAP=float(res['average_mAP'])),
                   dict(name='mmaction2 reference', seconds=ref_t)])
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=1)


if __name__ == '__main__':
    main()
