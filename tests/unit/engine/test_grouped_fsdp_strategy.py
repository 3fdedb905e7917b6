"""GroupedFSDPStrategy / FSDPOptimWrapper / the layer-decay constructor under a real FSDP wrap
(a 1-process gloo group on CPU; the 2-process sharded runs are in
tests/e2e/test_distributed_e2e.py)."""
import pytest
import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch.distributed.fsdp import FullyShardedDataParallel

from mmaction.registry import MODELS
from tests.conftest import REPO_ROOT
from vmae2_mm.engine import FSDPOptimWrapper, GroupedFSDPStrategy
from vmae2_mm.engine.optimizers import VideoMAEv2LayerDecayOptimWrapperConstructor

TINY = REPO_ROOT / ('configs/recognition/videomaev2/'
                    'vit-tiny-p8_scratch_1xb16-8x2x1-20e_synthetic-motion-32px.py')
OPTIM = dict(type='FSDPOptimWrapper', dtype=None,
             optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
             constructor='VideoMAEv2LayerDecayOptimWrapperConstructor',
             paramwise_cfg=dict(layer_decay=0.75), clip_grad=dict(max_norm=1.0))
WRAPPER = dict(auto_wrap_policy='videomaev2_block_wrap_policy', use_orig_params=True,
               device_id='cpu')


@pytest.fixture
def gloo_world_of_one(tmp_path, monkeypatch):
    for key, value in dict(RANK='0', WORLD_SIZE='1', LOCAL_RANK='0').items():
        monkeypatch.setenv(key, value)
    dist.init_process_group('gloo', init_method=f'file://{tmp_path / "store"}', rank=0,
                            world_size=1)
    with DefaultScope.overwrite_default_scope('mmaction'):
        yield
    dist.destroy_process_group()


def _model_cfg():
    return Config.fromfile(str(TINY)).model


def test_strategy_builds_groups_on_the_unsharded_model(gloo_world_of_one, tmp_path):
    strategy = GroupedFSDPStrategy(
        model_wrapper=dict(WRAPPER), activation_checkpointing=dict(check_fn='videomaev2_is_block'),
        work_dir=str(tmp_path), env_kwargs=dict(launcher='pytorch'))
    model, wrapper = strategy.prepare(_model_cfg(), optim_wrapper=dict(OPTIM),
                                      dispatch_kwargs=dict(max_iters=1, max_epochs=1))
    assert isinstance(model, FullyShardedDataParallel) and isinstance(wrapper, FSDPOptimWrapper)
    # one FSDP unit per block under the root
    assert sum(isinstance(m, FullyShardedDataParallel) for m in model.modules()) == 1 + 2
    groups = wrapper.optimizer.param_groups
    decay = {n: g['weight_decay'] for g in groups for n in g['param_names']}
    assert decay['backbone.blocks.1.mlp.fc1.weight'] == 0.05
    assert decay['backbone.blocks.1.mlp.fc1.bias'] == 0 == decay['backbone.fc_norm.weight']
    assert sorted({g['lr_scale'] for g in groups}) == pytest.approx([.75**3, .75**2, .75, 1.])
    # the optimizer drives the wrapped model's own parameter objects
    owned = {id(p) for p in model.parameters()}
    assert all(id(p) in owned for g in groups for p in g['params'])

    # one step: the global gradient norm is clipped and logged
    x = torch.randint(0, 255, (2, 1, 3, 8, 32, 32), dtype=torch.uint8)
    from mmaction.structures import ActionDataSample
    samples = [ActionDataSample().set_gt_label(torch.tensor(i)) for i in range(2)]
    log = model.train_step(dict(inputs=list(x), data_samples=samples), wrapper)
    assert torch.isfinite(log['loss'])
    assert wrapper.message_hub.get_scalar('train/grad_norm').current() > 0


def test_strategy_rejects_flat_parameters(gloo_world_of_one, tmp_path):
    strategy = GroupedFSDPStrategy(model_wrapper=dict(WRAPPER, use_orig_params=False),
                                   work_dir=str(tmp_path), env_kwargs=dict(launcher='pytorch'))
    with pytest.raises(RuntimeError, match='use_orig_params=True'):
        strategy.prepare(_model_cfg(), optim_wrapper=dict(OPTIM),
                         dispatch_kwargs=dict(max_iters=1, max_epochs=1))


def test_layer_decay_constructor_refuses_an_fsdp_wrapped_model(gloo_world_of_one):
    model = MODELS.build(_model_cfg())
    from mmengine.model.wrappers import MMFullyShardedDataParallel
    wrapped = MMFullyShardedDataParallel(module=model, **WRAPPER)
    constructor = VideoMAEv2LayerDecayOptimWrapperConstructor(
        dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05)),
        dict(layer_decay=0.75))
    with pytest.raises(ValueError, match='GroupedFSDPStrategy'):
        constructor(wrapped)
