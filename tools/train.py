"""Train a model from a config (mmaction2-compatible command line).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
    bash tools/dist_train.sh CONFIG NPROC [same options]     # torchrun; gloo on CPU, nccl on GPU
    bash tools/slurm_train.sh PARTITION JOB CONFIG WORK_DIR [same options]  # --launcher slurm

Configs with `runner_type` or `strategy` (FSDP, DeepSpeed) run under mmengine's FlexibleRunner.
"""
import argparse

import vmae2_mm  # noqa: F401  (compat fixes + registration before any config is built)
from mmengine.config import Config
from vmae2_mm.engine import (add_runner_args, build_runner, enable_amp, load_runner_config,
                             parse_runner_args)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a vmae2_mm model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from this checkpoint, or the latest in work_dir if no '
                        'path is given')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: fp16+loss scale on CUDA, bf16 autocast on CPU')
    parser.add_argument('--no-validate', action='store_true', help='skip validation')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale lr by the actual total batch size (auto_scale_lr in config)')
    parser.add_argument('--seed', type=int, default=None, help='random seed')
    parser.add_argument('--diff-rank-seed', action='store_true',
                        help='different seeds for different ranks')
    parser.add_argument('--deterministic', action='store_true',
                        help='deterministic algorithms')
    add_runner_args(parser)
    return parse_runner_args(parser, argv)


def build_config(args) -> Config:
    cfg = load_runner_config(args)
    if args.amp:
        enable_amp(cfg)
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
        if cfg.get('default_hooks', {}).get('checkpoint', {}).get('save_best'):
            cfg.default_hooks.checkpoint.save_best = None
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise KeyError('--auto-scale-lr needs auto_scale_lr=dict(enable=..., '
                           f'base_batch_size=...) in {args.config}')
        cfg.auto_scale_lr.enable = True
    randomness = cfg.get('randomness', dict())
    if args.seed is not None:
        randomness['seed'] = args.seed
    if args.diff_rank_seed:
        randomness['diff_rank_seed'] = True
    if args.deterministic:
        randomness['deterministic'] = True
    if randomness:
        randomness.setdefault('seed', None)
        cfg.randomness = randomness
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = build_config(args)
    # Runner, or FlexibleRunner for `runner_type`/`strategy` (FSDP, DeepSpeed) configs
    runner = build_runner(cfg)
    runner.train()
    return runner


if __name__ == '__main__':
    main()
