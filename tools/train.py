"""Train a model from a config (mmaction2-compatible command line).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
    bash tools/dist_train.sh CONFIG NPROC [same options]     # torchrun; gloo on CPU, nccl on GPU
    bash tools/slurm_train.sh PARTITION JOB CONFIG WORK_DIR [same options]  # --launcher slurm

Configs with `runner_type` or `strategy` (FSDP, DeepSpeed) run under mmengine's FlexibleRunner.
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
    parser = argparse.ArgumentParser(description='Train a vmae2_mm model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
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
