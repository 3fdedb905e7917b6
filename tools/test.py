"""Test a checkpoint and print the metrics (accuracy, mAP, ...).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--dump results.pkl] [--cfg-options ...]
    bash tools/dist_test.sh CONFIG CHECKPOINT NPROC [same options]
    bash tools/slurm_test.sh PARTITION JOB CONFIG CHECKPOINT [same options]
"""
import argparse
import os.path as osp

import vmae2_mm  # noqa: F401  (compat fixes + registration before any config is built)
from mmengine.config import Config
from vmae2_mm.engine import (add_runner_args, build_runner, enable_amp, load_runner_config,
                             parse_runner_args)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a vmae2_mm model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--dump', type=str,
                        help='dump predictions to a pickle file (.pkl/.pickle) for offline '
                        'evaluation')
    parser.add_argument('--amp', action='store_true', help='mixed-precision inference')
    add_runner_args(parser)
    return parse_runner_args(parser, argv)


def build_config(args) -> Config:
    cfg = load_runner_config(args)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg.load_from = args.checkpoint
    if args.amp:
        enable_amp(cfg)
        cfg.test_cfg = dict(cfg.get('test_cfg') or {}, type='TestLoop', fp16=True)
    if args.dump is not None:
        if not args.dump.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--dump must end with .pkl or .pickle, got {args.dump}')
        dump_metric = dict(type='DumpResults', out_file_path=args.dump)
        evaluator = cfg.test_evaluator
        cfg.test_evaluator = ([*evaluator, dump_metric] if isinstance(evaluator, (list, tuple))
                              else [evaluator, dump_metric])
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = build_config(args)
    # Runner, or FlexibleRunner for `runner_type`/`strategy` (FSDP, DeepSpeed) configs
    runner = build_runner(cfg)
    metrics = runner.test()
    return metrics


if __name__ == '__main__':
    main()
