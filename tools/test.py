"""Test a checkpoint and print the metrics (accuracy, mAP, ...).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--dump results.pkl] [--cfg-options ...]
    bash tools/dist_test.sh CONFIG CHECKPOINT NPROC [same options]
    bash tools/slurm_test.sh PARTITION JOB CONFIG CHECKPOINT [same options]
"""
import argparse
import os
import os.path as osp

import vmae2_mm  # noqa: F401  (compat fixes + registration before any config is built)
from mmengine.config import Config, DictAction
from vmae2_mm.engine import build_runner, enable_amp, setup_distributed
from vmae2_mm.models.detectors import check_ava_detector_cfg
from vmae2_mm.utils.config_options import check_cfg_options


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a vmae2_mm model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument('--dump', type=str,
                        help='dump predictions to a pickle file (.pkl/.pickle) for offline '
                        'evaluation')
    parser.add_argument('--amp', action='store_true', help='mixed-precision inference')
    parser.add_argument('--partial-load', action='store_true',
                        help='load only the checkpoint tensors that match the model and log '
                        'the rest (default: strict, any missing / unexpected / mis-shaped key '
                        'fails before data is read)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_config(args) -> Config:
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        check_cfg_options(cfg, args.cfg_options)  # a typo'd key is an error, not a new key
        cfg.merge_from_dict(args.cfg_options)
    check_ava_detector_cfg(cfg.model)  # a detector without mmcv ops fails here, with the cause
    setup_distributed(cfg, args.launcher)
    if args.partial_load:
        cfg.load_strict = False
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
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
