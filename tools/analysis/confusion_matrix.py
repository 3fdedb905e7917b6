"""Confusion matrix of a recognizer from a ``tools/test.py --dump`` pickle: PNG + CSV.

    python tools/analysis/confusion_matrix.py RESULTS.pkl [--out-dir DIR]
        [--label-file FILE|k400] [--normalize] [--include-values] [--cmap viridis]

Named like mmaction2's ``tools/analysis_tools/confusion_matrix.py`` and built on the same
parts: mmaction2's ``ConfusionMatrix.calculate`` (rows = ground truth, columns = predicted,
the arg-max of each sample's ``pred_score``) and ``ConfusionMatrix.plot``. Unlike mmaction2's
tool it reads only the dump (no model run). ``--normalize`` divides each row by its number of
samples (per-class recall on the diagonal; rows without samples stay 0; the PNG shows whole
percents). Writes
``confusion_matrix.png`` and ``confusion_matrix.csv`` (header ``gt\\pred,<class>,...``, one
row per ground-truth class).
"""
import argparse
import csv
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('results', help='pickle written by tools/test.py --dump')
    parser.add_argument('--out-dir', default='.', help='where the PNG and CSV go')
    parser.add_argument('--label-file', help='class names, one per line (or k400/k600/...)')
    parser.add_argument('--normalize', action='store_true', help='row-normalise')
    parser.add_argument('--include-values', action='store_true', help='write cell values')
    parser.add_argument('--cmap', default='viridis', help='matplotlib colour map')
    return parser.parse_args(argv)


def load_predictions(path: str):
    """``(scores [N, K] float32, gt labels [N] int64)`` of a recognition dump.

    Raises:
        ValueError: the file is no pickle of recognition data samples (names the file and the
            keys found).
    """
    from mmengine.fileio import load
    if not osp.isfile(path):
        raise FileNotFoundError(f'results pickle not found: {path}')
    try:
        samples = load(path, file_format='pkl')
    except Exception as err:  # unpickling raises many types; name the file whatever it is
        raise ValueError(f'{path}: not a readable pickle ({type(err).__name__}: {err})') from err
    if not isinstance(samples, list) or not samples:
        raise ValueError(f'{path}: expected a non-empty list of data samples, got '
                         f'{type(samples).__name__}')
    first = samples[0]
    if not isinstance(first, dict) or 'pred_score' not in first or 'gt_label' not in first:
        keys = sorted(first) if isinstance(first, dict) else type(first).__name__
        raise ValueError(f'{path}: recognition samples need "pred_score" and "gt_label"; the '
                         f'first sample has {keys}')
    scores = torch.stack([torch.as_tensor(s['pred_score']).float().flatten() for s in samples])
    labels = torch.stack([torch.as_tensor(s['gt_label']).long().flatten()[0] for s in samples])
    return scores, labels


def confusion(scores: torch.Tensor, labels: torch.Tensor, normalize: bool = False
              ) -> np.ndarray:
    """[K, K] matrix: rows ground truth, columns predicted (counts, or row fractions)."""
    from mmaction.evaluation.metrics import ConfusionMatrix
    cm = ConfusionMatrix.calculate(scores, labels, num_classes=scores.shape[1]).double()
    if normalize:
        rows = cm.sum(1, keepdim=True)
        cm = torch.where(rows > 0, cm / rows.clamp(min=1), torch.zeros_like(cm))
    return cm.numpy()


def write_csv(cm: np.ndarray, classes, path: str) -> None:
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['gt\\pred', *classes])
        for name, row in zip(classes, cm):
            writer.writerow([name, *(f'{v:.6g}' for v in row)])


def main(argv=None):
    args = parse_args(argv)
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from mmaction.evaluation.metrics import ConfusionMatrix

    scores, labels = load_predictions(args.results)
    k = scores.shape[1]
    if args.label_file:
        from vmae2_mm.checkpoint.label_maps import read_class_list
        classes = read_class_list(args.label_file)
        if len(classes) != k:
            raise ValueError(f'{args.label_file}: {len(classes)} class names, but the scores '
                             f'in {args.results} have {k} classes')
    else:
        classes = [str(i) for i in range(k)]
    cm = confusion(scores, labels, args.normalize)
    os.makedirs(args.out_dir, exist_ok=True)
    csv_path = osp.join(args.out_dir, 'confusion_matrix.csv')
    write_csv(cm, classes, csv_path)
    # mmaction2's plot writes cell values with format 'd' (integers only): counts as they
    # are, row fractions as whole percents
    shown = torch.from_numpy(np.rint(cm * 100) if args.normalize else cm).long()
    fig = ConfusionMatrix.plot(shown, include_values=args.include_values,
                               cmap=args.cmap, classes=classes, show=False)
    png_path = osp.join(args.out_dir, 'confusion_matrix.png')
    fig.savefig(png_path)
    plt.close(fig)
    acc = float(np.trace(confusion(scores, labels)) / len(labels))
    print(f'{len(labels)} samples, {k} classes, top-1 {acc:.4f}; wrote {png_path} and '
          f'{csv_path}')
    return cm


if __name__ == '__main__':
    main()
