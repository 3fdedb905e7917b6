"""Helpers shared by the ``tools/`` entry points: distributed start-up, runner choice and common
options."""
import os
import subprocess

import torch
import torch.distributed as dist
from mmengine.config import Config

#: optim wrappers that already run in mixed precision (``--amp`` leaves them alone)
MIXED_PRECISION_WRAPPERS = ('AmpOptimWrapper', 'AutocastOptimWrapper', 'FSDPOptimWrapper')


def setup_distributed(cfg: Config, launcher: str) -> None:
    """Prepare ``cfg`` for ``launcher`` and start a gloo process group on CUDA-less machines.

    mmengine 0.10.7's ``pytorch`` and ``slurm`` launchers call ``torch.cuda.set_device``
    unconditionally and die without CUDA. When CUDA is unavailable we create the gloo process
    group here, before the runner is built (it then skips ``init_dist``), and make the model
    wrapper CPU-capable: DDP without ``device_ids`` (``Runner``, or ``FlexibleRunner`` with a
    DDP strategy) and FSDP on ``device_id='cpu'`` (FSDP strategies; torch refuses to pick a
    CPU device by itself). DeepSpeed picks its CPU accelerator itself. With CUDA, mmengine's
    own NCCL path is used unchanged.

    ``slurm`` on CPU reads the ranks from ``SLURM_PROCID`` / ``SLURM_NTASKS`` /
    ``SLURM_LOCALID`` and the rendezvous from ``MASTER_ADDR`` (else the first host of
    ``SLURM_NODELIST`` via ``scontrol``) and ``MASTER_PORT`` (else 29500), as mmengine does.
    """
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher == 'slurm':
        _slurm_env_to_torch_env()
    elif launcher != 'pytorch':
        raise ValueError(f'launcher {launcher!r} needs CUDA here; on CPU use torchrun with '
                         "--launcher pytorch (tools/dist_train.sh) or --launcher slurm")
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    strategy = cfg.get('strategy')
    if strategy is None:
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None)
    elif 'FSDP' in str(strategy.get('type', '')):
        strategy.setdefault('model_wrapper', {})['device_id'] = 'cpu'
        _no_cpu_offload(strategy)
    elif 'DDP' in str(strategy.get('type', '')):
        strategy.setdefault('model_wrapper', {})['device_ids'] = None
    if not dist.is_initialized():
        dist.init_process_group('gloo', rank=int(os.environ['RANK']),
                                world_size=int(os.environ['WORLD_SIZE']))


def _no_cpu_offload(strategy: dict) -> None:
    """Full FSDP state dicts without ``offload_to_cpu``: on a CPU device, torch 2.13 FSDP
    segfaults cloning the gathered parameters when offloading "to" the CPU they are already on
    (measured: SIGSEGV in ``_full_post_state_dict_hook`` at the first checkpoint)."""
    sd_cfg = strategy.get('state_dict_cfg', 'local')
    if sd_cfg == 'full':
        sd_cfg = dict(state_dict_type='FULL_STATE_DICT',
                      state_dict_config=dict(type='FullStateDictConfig', rank0_only=True),
                      optim_state_dict_config=dict(type='FullOptimStateDictConfig',
                                                   rank0_only=True))
    if isinstance(sd_cfg, dict):
        for key in ('state_dict_config', 'optim_state_dict_config'):
            if isinstance(sd_cfg.get(key), dict):
                sd_cfg[key]['offload_to_cpu'] = False
        strategy['state_dict_cfg'] = sd_cfg


def _slurm_env_to_torch_env() -> None:
    """Set torch's ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` / ``MASTER_*`` from srun's env."""
    missing = [k for k in ('SLURM_PROCID', 'SLURM_NTASKS') if k not in os.environ]
    if missing:
        raise RuntimeError(f'--launcher slurm: {missing} not set; start the job with srun '
                           '(tools/slurm_train.sh)')
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    os.environ.setdefault('MASTER_PORT', '29500')
    if 'MASTER_ADDR' not in os.environ:
        nodes = os.environ.get('SLURM_NODELIST')
        if not nodes:
            raise RuntimeError('--launcher slurm: neither MASTER_ADDR nor SLURM_NODELIST is set')
        try:
            hosts = subprocess.run(['scontrol', 'show', 'hostnames', nodes], check=True,
                                   capture_output=True, text=True).stdout.split()
        except (OSError, subprocess.CalledProcessError) as e:
            raise RuntimeError(f'--launcher slurm: cannot expand SLURM_NODELIST={nodes!r} with '
                               f'scontrol ({e}); set MASTER_ADDR') from e
        os.environ['MASTER_ADDR'] = hosts[0]


def build_runner(cfg: Config):
    """The runner a config asks for, as mmengine's own tools choose it.

    ``runner_type`` (e.g. ``'FlexibleRunner'``) builds through the ``RUNNERS`` registry; a
    config with a ``strategy`` (FSDP, DeepSpeed, ...) but no ``runner_type`` gets
    ``FlexibleRunner``, the only runner that reads ``strategy`` (``Runner`` would silently
    ignore it); everything else the classic ``Runner``.
    """
    from mmaction.registry import RUNNERS
    from mmengine.runner import FlexibleRunner, Runner
    check_blending_classes(cfg)
    ensure_non_finite_check(cfg)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    if cfg.get('strategy') is not None:
        return FlexibleRunner.from_cfg(cfg)
    return Runner.from_cfg(cfg)


def ensure_non_finite_check(cfg: Config) -> None:
    """Every run gets ``NonFiniteCheckHook`` (also configs that do not inherit
    ``default_runtime.py``); ``default_hooks.non_finite=None`` removes it. mmengine itself would
    reject ``None`` for a hook name it does not define, so it is dropped here."""
    hooks = cfg.get('default_hooks')
    if hooks is None:
        hooks = cfg.default_hooks = dict()
    if 'non_finite' not in hooks:
        hooks['non_finite'] = dict(type='NonFiniteCheckHook')
    elif hooks['non_finite'] is None:
        hooks.pop('non_finite')


def check_blending_classes(cfg: Config) -> None:
    """Mixup/cutmix must build one-hot targets of the head's width.

    ``--cfg-options model.cls_head.num_classes=N`` without also changing the blending augments
    otherwise only fails in the first training step, with a numpy broadcasting error inside
    mmaction2's accuracy (``(B, N)`` vs ``(B, 1, 400)``).
    """
    model = cfg.get('model') or {}
    head = model.get('cls_head') or {}
    blending = (model.get('data_preprocessor') or {}).get('blending')
    if not blending or 'num_classes' not in head:
        return
    augments = blending.get('augments', [blending])
    for i, aug in enumerate(augments):
        if 'num_classes' in aug and aug['num_classes'] != head['num_classes']:
            where = ('model.data_preprocessor.blending' +
                     (f'.augments[{i}]' if 'augments' in blending else ''))
            raise ValueError(
                f'{where} ({aug.get("type")}) has num_classes={aug["num_classes"]} but '
                f'model.cls_head.num_classes={head["num_classes"]}; set both (mixup/cutmix '
                'targets are one-hot over the head\'s classes)')


def enable_amp(cfg: Config) -> None:
    """Mixed precision for ``--amp``: mmengine ``AmpOptimWrapper`` (fp16 + dynamic loss scale)
    on CUDA, our bf16 ``AutocastOptimWrapper`` elsewhere."""
    optim_wrapper = cfg.optim_wrapper
    current = optim_wrapper.get('type', 'OptimWrapper')
    if current in MIXED_PRECISION_WRAPPERS:
        return
    if current == 'DeepSpeedOptimWrapper':
        raise ValueError('--amp does not apply to DeepSpeed configs: set bf16/fp16 in '
                         'strategy (e.g. strategy.bf16=dict(enabled=True))')
    if current != 'OptimWrapper':
        raise ValueError(f'--amp only converts OptimWrapper, but the config uses {current}')
    if torch.cuda.is_available():
        optim_wrapper.type = 'AmpOptimWrapper'
        optim_wrapper.loss_scale = 'dynamic'
    else:
        optim_wrapper.type = 'AutocastOptimWrapper'
        optim_wrapper.dtype = 'bfloat16'


def add_runner_args(parser) -> None:
    """The options ``tools/train.py`` and ``tools/test.py`` share (mmaction2's names):
    ``--work-dir``, ``--partial-load``, ``--cfg-options``, ``--launcher``, ``--local-rank``."""
    from mmengine.config import DictAction
    parser.add_argument('--work-dir', help='the dir to save logs, checkpoints and metrics')
    parser.add_argument('--partial-load', action='store_true',
                        help='load only the checkpoint tensors that match the model and log '
                        'the rest (default: strict, any missing / unexpected / mis-shaped key '
                        'fails before data is read)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_runner_args(parser, argv=None):
    """``parser.parse_args`` plus ``LOCAL_RANK`` from ``--local-rank`` for launchers that pass
    it as an argument (torch.distributed.launch) instead of the environment (torchrun)."""
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def load_runner_config(args) -> Config:
    """The config of ``args.config`` with the shared options applied: ``--cfg-options``
    (a typo'd key is an error, not a new key), the AVA detector's mmcv-ops check (fails here,
    with the cause), the launcher's distributed settings, ``--partial-load`` and
    ``work_dir`` (``--work-dir``, else the config's, else ``./work_dirs/<config name>``)."""
    import os.path as osp

    from vmae2_mm.models.detectors import check_ava_detector_cfg
    from vmae2_mm.utils.config_options import check_cfg_options
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        check_cfg_options(cfg, args.cfg_options)
        cfg.merge_from_dict(args.cfg_options)
    check_ava_detector_cfg(cfg.model)
    setup_distributed(cfg, args.launcher)
    if args.partial_load:
        cfg.load_strict = False
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg
