"""Training curves and times from mmengine's scalar logs (mmaction2's ``analyze_logs.py``
commands, reading ``vis_data/scalars.json``).

    python tools/analysis/analyze_logs.py plot_curve RUN [RUN ...] [--keys loss acc/top1] \
        [--legend a b] [--xaxis step|epoch] [--title T] [--out curves.png]
    python tools/analysis/analyze_logs.py cal_train_time RUN [RUN ...]

RUN is a ``scalars.json`` file, or a work dir / timestamp folder holding one (the newest
``*/vis_data/scalars.json`` is used). Each line of that file is one logged record: training
lines carry ``loss``, ``lr``, ``time``, ``epoch``, ``iter`` and ``step`` (the iteration);
validation lines carry the metrics (``acc/top1``, ``mAP/avg``, ...) and ``step`` (the epoch
for epoch-based loops). ``plot_curve`` draws one panel per key, one line per run (runs
overlaid), x = ``step`` (the logged iteration for training keys, the epoch for validation
keys) or ``--xaxis epoch`` (training records only); ``cal_train_time`` prints the mean, the
slowest and the fastest seconds per iteration of each run.
"""
import argparse
import glob
import json
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import numpy as np


def find_scalars(run: str) -> str:
    """The ``scalars.json`` of a file path, a work dir or a timestamp folder (newest)."""
    if osp.isfile(run):
        return run
    if osp.isdir(run):
        found = glob.glob(osp.join(run, 'vis_data', 'scalars.json')) + \
            glob.glob(osp.join(run, '*', 'vis_data', 'scalars.json'))
        if found:
            return max(found, key=osp.getmtime)
    raise FileNotFoundError(f'{run}: no scalars.json (expected a file, or a work dir with '
                            '<timestamp>/vis_data/scalars.json)')


def load_records(path: str) -> List[dict]:
    """The JSON lines of a ``scalars.json``; a line that is not a JSON object is an error
    naming the file and line (a run killed mid-write leaves at most a partial last line,
    which is skipped)."""
    records = []
    with open(path) as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            if i == len(lines):
                continue  # partial last line of a running or killed job
            raise ValueError(f'{path}:{i}: not a JSON record: {line[:80]!r}') from None
        if not isinstance(rec, dict):
            raise ValueError(f'{path}:{i}: expected a JSON object, got {type(rec).__name__}')
        records.append(rec)
    return records


def series(records: Sequence[dict], key: str, xaxis: str = 'step'
           ) -> Tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of ``key`` over the records that have it (x = ``step`` or ``epoch``)."""
    xs, ys = [], []
    for r in records:
        if key in r and isinstance(r[key], (int, float)) and xaxis in r:
            xs.append(float(r[xaxis]))
            ys.append(float(r[key]))
    return np.asarray(xs), np.asarray(ys)


def plot_curve(runs: Sequence[str], keys: Sequence[str], out: str,
               legend: Sequence[str] = (), xaxis: str = 'step', title: str = ''
               ) -> Dict[str, Dict[str, Tuple[np.ndarray, np.ndarray]]]:
    """One panel per key, one line per run; returns ``{legend: {key: (x, y)}}``.

    Raises:
        KeyError: a key no run has (the keys the runs do have are listed).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = list(legend) or [osp.basename(osp.dirname(osp.dirname(find_scalars(r))))
                             or r for r in runs]
    if len(names) != len(runs):
        raise ValueError(f'--legend: {len(names)} names for {len(runs)} runs')
    data = {n: load_records(find_scalars(r)) for n, r in zip(names, runs)}
    curves: Dict[str, Dict[str, Tuple[np.ndarray, np.ndarray]]] = {n: {} for n in names}
    for key in keys:
        for n, recs in data.items():
            x, y = series(recs, key, xaxis)
            if len(x):
                curves[n][key] = (x, y)
        if not any(key in c for c in curves.values()):
            have = sorted({k for recs in data.values() for r in recs for k in r
                           if isinstance(r[k], (int, float))})
            raise KeyError(f'no run logged {key!r} (with {xaxis!r}); logged keys: {have}')
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 2.6 * len(keys)), dpi=100,
                             squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        for n in names:
            if key in curves[n]:
                x, y = curves[n][key]
                ax.plot(x, y, label=n, marker='o' if len(x) < 20 else None)
        ax.set_ylabel(key)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        # validation records of epoch-based loops carry the epoch as their step
        train = any('iter' in r for recs in data.values() for r in recs if key in r)
        ax.set_xlabel(xaxis if xaxis == 'epoch' else 'iteration' if train
                      else 'epoch (validation step)')
    if title:
        axes[0, 0].set_title(title)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return curves


def cal_train_time(runs: Sequence[str]) -> Dict[str, dict]:
    """Per run: ``mean``, ``slowest``, ``fastest`` seconds per iteration (the ``time`` of the
    training records, averaged over each logging interval by mmengine) and ``records``."""
    out = {}
    for run in runs:
        path = find_scalars(run)
        times = [float(r['time']) for r in load_records(path)
                 if 'time' in r and 'loss' in r]  # training records only
        if not times:
            raise ValueError(f'{path}: no training record with "time"')
        out[run] = dict(mean=float(np.mean(times)), slowest=float(np.max(times)),
                        fastest=float(np.min(times)), records=len(times))
        print(f'{run}: {np.mean(times):.4f} s/iter on average (slowest {np.max(times):.4f}, '
              f'fastest {np.min(times):.4f}, {len(times)} logged intervals)')
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('plot_curve', help='plot logged curves')
    p.add_argument('runs', nargs='+', help='scalars.json files or work dirs')
    p.add_argument('--keys', nargs='+', default=['loss'], help='logged keys to plot')
    p.add_argument('--legend', nargs='+', default=[], help='one name per run')
    p.add_argument('--xaxis', choices=('step', 'epoch'), default='step')
    p.add_argument('--title', default='')
    p.add_argument('--out', default='curves.png', help='PNG path')
    t = sub.add_parser('cal_train_time', help='seconds per training iteration')
    t.add_argument('runs', nargs='+', help='scalars.json files or work dirs')
    args = parser.parse_args(argv)
    if args.command == 'plot_curve':
        curves = plot_curve(args.runs, args.keys, args.out, args.legend, args.xaxis, args.title)
        print(f'wrote {args.out}')
        return curves
    return cal_train_time(args.runs)


if __name__ == '__main__':
    main()
