"""Layer-wise lr decay groups equal the official VideoMAE V2 rule, parameter by parameter."""
import pytest
import torch
from mmaction.registry import MODELS
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import vmae2_mm  # noqa: F401

DEPTH, BASE_LR, WD, DECAY = 3, 1e-3, 0.05, 0.75


def _recognizer():
    init_default_scope('mmaction')
    return MODELS.build(dict(
        type='Recognizer3D',
        backbone=dict(type='VideoMAEv2ViT', arch=dict(embed_dims=24, depth=DEPTH, num_heads=2,
                                                        mlp_ratio=2), img_size=32, num_frames=4),
        cls_head=dict(type='VideoMAEv2Head', num_classes=5, in_channels=24)))


def _cfg(**paramwise):
    return dict(optimizer=dict(type='AdamW', lr=BASE_LR, weight_decay=WD, betas=(0.9, 0.999)),
                constructor='VideoMAEv2LayerDecayOptimWrapperConstructor',
                paramwise_cfg=dict(layer_decay=DECAY, **paramwise))


# Hand-written expectations: (layer id, weight decay) for every parameter of the model.
EXPECTED = {
    'backbone.patch_embed.proj.weight': (0, WD),
    'backbone.patch_embed.proj.bias': (0, 0.),
    'backbone.fc_norm.weight': (DEPTH + 1, 0.),
    'backbone.fc_norm.bias': (DEPTH + 1, 0.),
    'cls_head.fc_cls.weight': (DEPTH + 1, WD),
    'cls_head.fc_cls.bias': (DEPTH + 1, 0.),
}
for i in range(DEPTH):
    for sub, wd in [('norm1.weight', 0.), ('norm1.bias', 0.), ('attn.q_bias', 0.),
                    ('attn.v_bias', 0.), ('attn.qkv.weight', WD), ('attn.proj.weight', WD),
                    ('attn.proj.bias', 0.), ('norm2.weight', 0.), ('norm2.bias', 0.),
                    ('mlp.fc1.weight', WD), ('mlp.fc1.bias', 0.), ('mlp.fc2.weight', WD),
                    ('mlp.fc2.bias', 0.)]:
        EXPECTED[f'backbone.blocks.{i}.{sub}'] = (i + 1, wd)


def test_every_parameter_gets_the_official_lr_scale_and_weight_decay():
    model = _recognizer()
    wrapper = build_optim_wrapper(model, _cfg())
    opt = wrapper.optimizer
    names = {id(p): n for n, p in model.named_parameters()}
    seen = {}
    for group in opt.param_groups:
        for p in group['params']:
            seen[names[id(p)]] = (group['lr'], group['weight_decay'], group['layer_id'])
    assert set(seen) == set(EXPECTED) == set(names.values())
    for name, (layer_id, wd) in EXPECTED.items():
        lr, got_wd, got_layer = seen[name]
        assert got_layer == layer_id, name
        assert lr == pytest.approx(BASE_LR * DECAY**(DEPTH + 1 - layer_id), rel=1e-12), name
        assert got_wd == wd, name
    # the scale ladder: 0.75^4, 0.75^3, 0.75^2, 0.75, 1
    assert sorted({round(g['lr_scale'], 10) for g in opt.param_groups}) == \
        [round(DECAY**k, 10) for k in range(DEPTH + 1, -1, -1)]
    assert opt.defaults['betas'] == (0.9, 0.999)


def test_schedulers_keep_the_per_layer_ratio():
    """mmengine schedulers scale each group's own initial lr, so the ladder survives warm-up
    and cosine decay (the official code multiplies the global schedule by ``lr_scale``)."""
    from mmengine.optim.scheduler import CosineAnnealingLR, LinearLR
    model = _recognizer()
    wrapper = build_optim_wrapper(model, _cfg())
    scheds = [LinearLR(wrapper, start_factor=0.1, by_epoch=False, begin=0, end=2),
              CosineAnnealingLR(wrapper, T_max=4, eta_min_ratio=0.01, by_epoch=False, begin=2,
                                end=6)]
    for _ in range(3):
        for s in scheds:
            s.step()
    groups = wrapper.optimizer.param_groups
    top = next(g['lr'] for g in groups if g['layer_id'] == DEPTH + 1)
    for g in groups:
        assert g['lr'] == pytest.approx(top * g['lr_scale'], rel=1e-9)


def test_backbone_only_module_and_explicit_depth():
    init_default_scope('mmaction')
    vit = MODELS.build(dict(type='VideoMAEv2ViT', arch=dict(embed_dims=24, depth=2, num_heads=2,
                                                           mlp_ratio=2), img_size=32,
                            num_frames=4))
    wrapper = build_optim_wrapper(vit, _cfg(backbone_prefix='', num_layers=2))
    lrs = {n: g['lr'] for g in wrapper.optimizer.param_groups for n in g['param_names']}
    assert lrs['patch_embed.proj.weight'] == pytest.approx(BASE_LR * DECAY**3)
    assert lrs['blocks.1.mlp.fc2.weight'] == pytest.approx(BASE_LR * DECAY)
    assert lrs['fc_norm.weight'] == pytest.approx(BASE_LR)


@pytest.mark.parametrize('paramwise,match', [
    (dict(layer_decay=1.5), 'layer_decay must be a float in'),
    (dict(), 'layer_decay must be a float in'),
    (dict(layer_decay=0.75, num_layer=12), "unknown keys \\['num_layer'\\]"),
    (dict(layer_decay=0.75, num_layers=0), 'num_layers must be a positive int'),
])
def test_bad_config_is_rejected_with_the_field_name(paramwise, match):
    cfg = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
               constructor='VideoMAEv2LayerDecayOptimWrapperConstructor',
               paramwise_cfg=paramwise)
    with pytest.raises(ValueError, match=match):
        build_optim_wrapper(_recognizer(), cfg)
