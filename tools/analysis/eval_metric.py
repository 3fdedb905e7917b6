"""Evaluate a ``tools/test.py --dump`` pickle offline with the config's test metrics.

    python tools/analysis/eval_metric.py CONFIG RESULTS.pkl [--metrics AccMetric ...]
        [--out metrics.json] [--cfg-options test_evaluator.ann_file=...]

Named and behaving like mmaction2's ``tools/analysis_tools/eval_metric.py``: the config's
``test_evaluator`` (any of ``AccMetric``, ``AVAFrameMAPMetric``, ``TADmAPMetric``, ...) is built
with mmengine's ``Evaluator`` and run with ``Evaluator.offline_evaluate`` on the dumped data
samples, so the numbers are those ``tools/test.py`` prints for the same predictions.
"""
import argparse
import json
import os.path as osp

import vmae2_mm  # noqa: F401  (compat fixes + registration before any config is built)
from mmengine.config import Config, DictAction
from mmengine.evaluator import Evaluator
from mmengine.fileio import load
from mmengine.registry import init_default_scope
from vmae2_mm.utils.config_options import check_cfg_options


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Evaluate a dumped prediction pickle offline')
    parser.add_argument('config', help='the config the predictions were made with')
    parser.add_argument('results', help='pickle written by tools/test.py --dump')
    parser.add_argument('--metrics', nargs='+', default=None,
                        help='metric types of test_evaluator to run (default: all of them), '
                        'e.g. AccMetric TADmAPMetric')
    parser.add_argument('--out', default=None, help='also write the metrics to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    return parser.parse_args(argv)


def select_metrics(evaluator_cfg, wanted=None) -> list:
    """The config's metric dicts, minus ``DumpResults``, filtered to the types in ``wanted``.

    Raises:
        ValueError: a wanted type is not among the config's metrics (the message lists them).
    """
    cfgs = list(evaluator_cfg) if isinstance(evaluator_cfg, (list, tuple)) else [evaluator_cfg]
    cfgs = [c for c in cfgs if c.get('type') != 'DumpResults']
    if not wanted:
        return cfgs
    have = [str(c.get('type')) for c in cfgs]
    missing = [w for w in wanted if w not in have]
    if missing:
        raise ValueError(f'--metrics {missing} not in the config\'s test_evaluator; it has {have}')
    return [c for c in cfgs if str(c.get('type')) in wanted]


def load_results(path: str) -> list:
    """The dumped data samples (a list of dicts), with a clear error for a wrong file."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'results pickle not found: {path}')
    try:
        results = load(path, file_format='pkl')
    except Exception as err:  # unpickling raises many types; name the file whatever it is
        raise ValueError(f'{path}: not a readable pickle ({type(err).__name__}: {err})') from err
    if not isinstance(results, (list, tuple)) or not results:
        raise ValueError(f'{path}: expected a non-empty list of data samples as written by '
                         f'tools/test.py --dump, got {type(results).__name__}')
    return list(results)


def evaluate(cfg: Config, results: list, metrics=None) -> dict:
    """Run the selected test metrics of ``cfg`` on the dumped ``results``; returns the metrics."""
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    evaluator = Evaluator(select_metrics(cfg.test_evaluator, metrics))
    return evaluator.offline_evaluate(results, chunk_size=max(1, len(results)))


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        check_cfg_options(cfg, args.cfg_options)  # a typo'd key is an error, not a new key
        cfg.merge_from_dict(args.cfg_options)
    metrics = evaluate(cfg, load_results(args.results), args.metrics)
    for k, v in metrics.items():
        print(f'{k}: {v:.4f}' if isinstance(v, float) else f'{k}: {v}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump({k: float(v) if hasattr(v, '__float__') else v
                       for k, v in metrics.items()}, f, indent=2)
    return metrics


if __name__ == '__main__':
    main()
