"""Every FSDP / DeepSpeed config (``configs/*/videomaev2/distributed/``) loads, keeps its
recipe's optimisation, and builds: the full-size ViT-H/g model (on the meta device), the
optimizer constructor with its parameter groups, the strategy, the FSDP wrap/checkpoint policies
and (when ``deepspeed`` is installed) DeepSpeed's own validation of the ZeRO/bf16 sections."""
import glob
import importlib.util
import inspect
import os.path as osp
import re

import pytest
import torch
from mmengine._strategy import DeepSpeedStrategy
from mmengine._strategy import deepspeed as mmengine_deepspeed
from mmengine.config import Config
from mmengine.model.wrappers import MMFullyShardedDataParallel
from mmengine.optim import build_optim_wrapper
from mmengine.registry import FUNCTIONS, OPTIMIZERS, STRATEGIES, DefaultScope
from torch.distributed.fsdp import FullyShardedDataParallel, StateDictType

from mmaction.registry import MODELS
from vmae2_mm.models.backbones.vit_layers import Block

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', '*', 'videomaev2', 'distributed', '*.py')))
SUFFIX = re.compile(r'_(fsdp|deepspeed-zero2|deepspeed-zero3)\.py$')
HAS_DEEPSPEED = importlib.util.find_spec('deepspeed') is not None
# documented ZeRO keys (deepspeed.ai/docs/config-json) for the check without deepspeed installed
ZERO_KEYS = {'stage', 'allgather_partitions', 'allgather_bucket_size', 'overlap_comm',
             'reduce_scatter', 'reduce_bucket_size', 'contiguous_gradients',
             'stage3_prefetch_bucket_size', 'stage3_param_persistence_threshold',
             'stage3_max_live_parameters', 'stage3_max_reuse_distance',
             'stage3_gather_16bit_weights_on_model_save', 'offload_param', 'offload_optimizer',
             'sub_group_size', 'round_robin_gradients'}


@pytest.fixture(autouse=True)
def mmaction_scope():
    with DefaultScope.overwrite_default_scope('mmaction'):
        yield


def _recipe_path(path: str) -> str:
    """The recipe a strategy config inherits: same name without the suffix, one folder up."""
    name = SUFFIX.sub('.py', osp.basename(path))
    return osp.join(osp.dirname(osp.dirname(path)), name)


def _kind(path: str) -> str:
    return SUFFIX.search(path).group(1)


def _encoder_cfg(cfg):
    return cfg.model.encoder if 'encoder' in cfg.model else cfg.model.backbone


def _recipe_clip(recipe) -> float:
    return (recipe.optim_wrapper.get('clip_grad') or {}).get('max_norm')


def _build_meta_model(cfg):
    """Full-size model on the meta device (no memory, no init cost). Mixup/CutMix is dropped:
    its Beta distributions validate their arguments with real tensors."""
    if 'backbone' in cfg.model:
        cfg.model.backbone.init_cfg = None
        cfg.model.data_preprocessor.blending = None
    with torch.device('meta'):
        return MODELS.build(cfg.model)


def test_every_recipe_has_fsdp_and_both_zero_stages():
    names = {osp.basename(p) for p in CONFIGS}
    assert len(CONFIGS) == 12
    for prefix in ('vit-huge-p16_videomaev2-tube90', 'vit-giant-p14_videomaev2-tube90',
                   'vit-huge-p16_videomaev2-hybrid-pre', 'vit-giant-p14_videomaev2-hybrid-pre'):
        kinds = {_kind(n) for n in names if n.startswith(prefix)}
        assert kinds == {'fsdp', 'deepspeed-zero2', 'deepspeed-zero3'}, prefix
    for path in CONFIGS:
        assert osp.isfile(_recipe_path(path)), path


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_keeps_its_recipe(path):
    cfg, recipe = Config.fromfile(path), Config.fromfile(_recipe_path(path))
    kind = _kind(path)
    assert cfg.runner_type == 'FlexibleRunner'
    # nothing but the optimisation/distribution keys differs from the recipe
    changed = {k for k in set(cfg.keys()) | set(recipe.keys()) if cfg.get(k) != recipe.get(k)}
    assert changed <= {'runner_type', 'strategy', 'optim_wrapper', 'model'}, changed
    # ... and in the model only activation checkpointing and the decoder precision
    ours_model, recipe_model = cfg.model.to_dict(), recipe.model.to_dict()
    for m in (ours_model, recipe_model):
        m.get('encoder', m.get('backbone')).pop('with_cp', None)
        m.pop('fp32_decoder', None)
    assert ours_model == recipe_model
    ours, theirs = cfg.optim_wrapper, recipe.optim_wrapper
    assert ours.optimizer == theirs.optimizer
    assert ours.get('paramwise_cfg') == theirs.get('paramwise_cfg')
    assert ours.get('constructor') == theirs.get('constructor')
    clip = _recipe_clip(recipe)
    enc = _encoder_cfg(cfg)
    if kind == 'fsdp':
        assert ours.type == 'FSDPOptimWrapper' and ours.dtype == 'bfloat16'
        assert (ours.get('clip_grad') or {}).get('max_norm') == clip
        assert cfg.strategy.type == 'GroupedFSDPStrategy'
        assert cfg.strategy.model_wrapper.use_orig_params is True
        assert cfg.strategy.activation_checkpointing.check_fn == 'videomaev2_is_block'
        assert enc.with_cp is False  # FSDP's checkpoint wrapper replaces it
    else:
        assert ours.type == 'DeepSpeedOptimWrapper' and 'clip_grad' not in ours
        assert cfg.strategy.type == 'DeepSpeedStrategy'
        assert cfg.strategy.get('gradient_clipping') == clip
        assert cfg.strategy.bf16 == dict(enabled=True)
        assert cfg.strategy.inputs_to_half == ['inputs']
        assert cfg.strategy.zero_optimization.stage == int(kind[-1])
        assert enc.with_cp is True
        if cfg.model.type == 'VideoMAEv2Pretrainer':
            assert cfg.model.fp32_decoder is False  # the whole engine runs in bf16
    # the paper's recipe (Tables 10/11 and the official scripts): clip 0.02 for ViT-g
    # pre-training, 5.0 for ViT-g post-pre-training, none for ViT-H
    size = 'giant' if 'vit-giant' in path else 'huge'
    expected = {('giant', True): 0.02, ('giant', False): 5.0}.get(
        (size, 'pretrain' in path))
    assert clip == expected


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds_model_optimizer_and_strategy(path, tmp_path, monkeypatch):
    cfg = Config.fromfile(path)
    kind = _kind(path)
    model = _build_meta_model(cfg)
    blocks = [m for m in model.modules() if isinstance(m, Block)]
    depth = _encoder_cfg(cfg).arch
    depth = {'huge': 32, 'giant': 40}[depth]
    assert len(blocks) >= depth

    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert type(wrapper).__name__ == cfg.optim_wrapper.type
    decay = {id(p): g['weight_decay'] for g in wrapper.optimizer.param_groups
             for p in g['params']}
    assert len(decay) == sum(1 for p in model.parameters() if p.requires_grad)
    enc = model.encoder if hasattr(model, 'encoder') else model.backbone
    wd = cfg.optim_wrapper.optimizer.weight_decay
    assert decay[id(enc.blocks[0].attn.qkv.weight)] == wd
    assert decay[id(enc.blocks[0].attn.q_bias)] == 0 and decay[id(enc.blocks[0].norm1.weight)] == 0
    if 'layer_decay' in cfg.optim_wrapper.get('paramwise_cfg', {}):
        scales = {g['lr_scale'] for g in wrapper.optimizer.param_groups}
        assert len(scales) == depth + 2  # patch embed, each block, head/final norm

    if kind == 'fsdp':
        strategy_cfg = dict(cfg.strategy, work_dir=str(tmp_path), env_kwargs=dict(launcher='none'))
        strategy = STRATEGIES.build(strategy_cfg)
        assert strategy.state_dict_type == StateDictType.FULL_STATE_DICT
        allowed = (set(inspect.signature(FullyShardedDataParallel.__init__).parameters)
                   | set(inspect.signature(MMFullyShardedDataParallel.__init__).parameters))
        assert set(cfg.strategy.model_wrapper) <= allowed
        policy = FUNCTIONS.get(cfg.strategy.model_wrapper.auto_wrap_policy)
        check_fn = FUNCTIONS.get(cfg.strategy.activation_checkpointing.check_fn)
        wrapped = [m for m in model.modules() if policy(m, recurse=False, nonwrapped_numel=0)]
        assert wrapped == blocks
        assert [m for m in model.modules() if check_fn(m)] == blocks
        return

    strategy = dict(cfg.strategy)
    strategy.pop('type')
    allowed = set(inspect.signature(DeepSpeedStrategy.__init__).parameters) | {
        'work_dir', 'experiment_name', 'env_kwargs', 'log_kwargs', 'auto_scale_lr'}
    assert set(strategy) <= allowed
    if not HAS_DEEPSPEED:
        assert set(strategy['zero_optimization']) <= ZERO_KEYS
        return
    # deepspeed's own pydantic models forbid unknown keys and check values
    from deepspeed.runtime.zero.config import DeepSpeedZeroConfig
    zero = DeepSpeedZeroConfig(**strategy['zero_optimization'])
    assert int(zero.stage) == int(kind[-1])
    if OPTIMIZERS.get('DeepSpeedCPUAdam') is not None:
        # mmengine registers deepspeed's optimizers in every DeepSpeedStrategy() and fails
        # with "already registered" on the second one in a process (one per real run)
        monkeypatch.setattr(mmengine_deepspeed, 'register_deepspeed_optimizers', lambda: [])
    built = DeepSpeedStrategy(**strategy, work_dir=str(tmp_path),
                              env_kwargs=dict(launcher='none'))
    assert built.config['bf16'] == dict(enabled=True)
    assert built.config['zero_optimization']['stage'] == int(kind[-1])
