"""Temporal action detection mAP against the tIoU threshold, for one or several result files.

    python tools/analysis/plot_tad_map.py RESULTS [RESULTS ...] --ann-file ANN.json \
        [--subset Test] [--tious 0.3:0.1:0.7] [--names run1 run2] [--out map_vs_tiou.png]

Each RESULTS is a ``tools/test.py --dump`` pickle of a localizer (``pred_instances`` with
label ids) or an ActivityNet-style results JSON (``tools/infer_localizer.py``'s
``results.json``: ``{"results": {video_id: [{"label": name, "score", "segment": [s, e]}]}}``,
class names mapped to ids through the annotation file). The mAP is ``TADmAPMetric``'s
(ActivityNet semantics, the GT of ``--subset``); one line per file is drawn on one PNG, a table
is printed and written next to it as CSV (``tiou,<name>,...`` in percent). ``--tious`` takes
``start:step:stop`` (inclusive) or a comma list.
"""
import argparse
import csv
import json
import os.path as osp
import pickle
import sys
from typing import Dict, List, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import numpy as np  # noqa: E402


def parse_tious(text: str) -> List[float]:
    """``'0.3:0.1:0.7'`` (inclusive) or ``'0.5,0.75,0.95'`` -> thresholds."""
    try:
        if ':' in text:
            start, step, stop = (float(x) for x in text.split(':'))
            if step <= 0 or stop < start:
                raise ValueError
            n = int(round((stop - start) / step)) + 1
            return [round(start + i * step, 6) for i in range(n)]
        return [float(x) for x in text.split(',') if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'--tious: expected start:step:stop or a comma list, got {text!r}') from None


def load_predictions(path: str, class_ids: Dict[str, int]) -> Dict[str, dict]:
    """Video id -> ``dict(segments [K, 2] s, scores [K], labels [K])`` of a dump or JSON."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'results file not found: {path}')
    if path.endswith(('.pkl', '.pickle')):
        with open(path, 'rb') as f:
            samples = pickle.load(f)
        preds: Dict[str, List[dict]] = {}
        for i, s in enumerate(samples):
            if not isinstance(s, dict) or 'video_id' not in s or 'pred_instances' not in s:
                raise ValueError(f'{path}: sample {i} is not a localizer prediction (needs '
                                 '"video_id" and "pred_instances"; is this a TAD dump?)')
            p = {k: np.asarray(v.cpu() if hasattr(v, 'cpu') else v)
                 for k, v in s['pred_instances'].items()}
            preds.setdefault(str(s['video_id']), []).append(p)
        return {vid: {k: np.concatenate([np.asarray(p[k]).reshape(-1, 2) if k == 'segments'
                                         else np.asarray(p[k]).reshape(-1) for p in ps])
                      for k in ('segments', 'scores', 'labels')}
                for vid, ps in preds.items()}
    try:
        with open(path) as f:
            results = json.load(f)['results']
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f'{path}: expected a results JSON with a "results" object '
                         f'({type(e).__name__}: {e})') from None
    out = {}
    for vid, dets in results.items():
        labels = []
        for d in dets:
            name = d['label']
            if isinstance(name, int):
                labels.append(name)
            elif name in class_ids:
                labels.append(class_ids[name])
            else:
                raise ValueError(f'{path}: video {vid!r}: label {name!r} is not a class of the '
                                 f'annotation file ({sorted(class_ids)[:5]} ...)')
        out[vid] = dict(segments=np.asarray([d['segment'] for d in dets],
                                            np.float64).reshape(-1, 2),
                        scores=np.asarray([d['score'] for d in dets], np.float64),
                        labels=np.asarray(labels, np.int64))
    return out


def evaluate(paths: Sequence[str], ann_file: str, subset: str, tious: Sequence[float]
             ) -> Dict[str, np.ndarray]:
    """Result file -> mAP [N_t] (fractions) at ``tious``, with ``TADmAPMetric``'s GT."""
    from vmae2_mm.evaluation.tad_metric import TADmAPMetric, compute_tad_map
    metric = TADmAPMetric(ann_file=ann_file, subset=subset, tious=tious)
    gt, classes = metric.load_gt()
    class_ids = {name: i for i, name in enumerate(classes)}
    return {p: compute_tad_map(gt, load_predictions(p, class_ids), tious, metric.tol,
                               metric.evaluator)['mAP'] for p in paths}


def main(argv=None) -> Dict[str, np.ndarray]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('results', nargs='+', help='test.py --dump pickles or results JSONs')
    parser.add_argument('--ann-file', required=True, help='ActivityNet-style annotation JSON')
    parser.add_argument('--subset', default='Test', help='evaluated subset (default Test)')
    parser.add_argument('--tious', type=parse_tious, default=parse_tious('0.3:0.1:0.7'),
                        help='start:step:stop or a comma list (default THUMOS14 0.3:0.1:0.7)')
    parser.add_argument('--names', nargs='+', help='legend names (default: file names)')
    parser.add_argument('--title', default='mAP vs tIoU')
    parser.add_argument('--out', default='map_vs_tiou.png', help='PNG path (CSV next to it)')
    args = parser.parse_args(argv)
    names = args.names or [osp.splitext(osp.basename(p))[0] for p in args.results]
    if len(names) != len(args.results):
        parser.error(f'--names: {len(names)} names for {len(args.results)} result files')
    by_path = evaluate(args.results, args.ann_file, args.subset, args.tious)
    curves = {n: by_path[p] for n, p in zip(names, args.results)}
    from vmae2_mm.evaluation.tad_metric import plot_map_vs_tiou
    plot_map_vs_tiou(args.tious, curves, args.out, args.title)
    csv_path = osp.splitext(args.out)[0] + '.csv'
    with open(csv_path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['tiou', *names])
        for i, t in enumerate(args.tious):
            w.writerow([f'{t:.2f}', *(f'{100 * curves[n][i]:.4f}' for n in names)])
    print(f'{"tIoU":>6} ' + ' '.join(f'{n:>12}' for n in names))
    for i, t in enumerate(args.tious):
        print(f'{t:6.2f} ' + ' '.join(f'{100 * curves[n][i]:12.2f}' for n in names))
    print(f'{"avg":>6} ' + ' '.join(f'{100 * float(np.mean(curves[n])):12.2f}' for n in names))
    print(f'wrote {args.out} and {csv_path}')
    return curves


if __name__ == '__main__':
    main()
