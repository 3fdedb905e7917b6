"""Every pre-training / distillation config loads, carries the official recipe and builds."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

import vmae2_mm  # noqa: F401
from mmaction.registry import MODELS
from vmae2_mm.models.pretrainers.decoder import DECODER_SETTINGS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))))
PRETRAIN = sorted(glob.glob(osp.join(ROOT, 'configs', 'pretrain', 'videomaev2', '*.py')))
DISTILL = sorted(glob.glob(osp.join(ROOT, 'configs', 'distillation', 'videomaev2', '*.py')))
#: the paper's K710 recipes; the others are toy configs for generated data (e2e tests, demo)
DISTILL_RECIPES = [p for p in DISTILL if p.endswith('_kinetics-710.py')]
TINY_RECOGNIZER = osp.join(ROOT, 'configs', 'recognition', 'videomaev2',
                           'vit-tiny-p8_scratch_1xb16-8x2x1-20e_synthetic-motion-32px.py')
HYBRID = {  # size: (script lr per 256, warm-up, epochs, clip grad, with_cp, grid)
    'small': (1e-3, 20, 200, None, False, (8, 14, 14)),
    'base': (1e-3, 20, 200, None, False, (8, 14, 14)),
    'large': (1e-3, 30, 300, None, False, (8, 14, 14)),
    'huge': (1e-3, 30, 300, None, True, (8, 14, 14)),
    'giant': (6e-4, 30, 300, 0.02, True, (8, 16, 16)),
}


@pytest.fixture(autouse=True)
def mmaction_scope():
    with DefaultScope.overwrite_default_scope('mmaction'):
        yield


def test_all_config_files_are_covered():
    assert len(PRETRAIN) == 7 and len(DISTILL) == 3 and len(DISTILL_RECIPES) == 2


@pytest.mark.parametrize('path', [p for p in PRETRAIN if 'unlabeled-hybrid' in p],
                         ids=osp.basename)
def test_hybrid_pretrain_recipes(path):
    cfg = Config.fromfile(path)
    arch = cfg.model.encoder.arch
    lr, warmup, epochs, clip, with_cp, grid = HYBRID[arch]
    assert cfg.model.type == 'VideoMAEv2Pretrainer' and cfg.model.fp32_decoder
    assert cfg.model.encoder.with_cp == with_cp
    opt = cfg.optim_wrapper
    assert opt.type == 'AmpOptimWrapper'
    assert (opt.optimizer.lr, opt.optimizer.betas, opt.optimizer.weight_decay) == \
        (lr, (0.9, 0.95), 0.05)
    assert opt.paramwise_cfg.flat_decay_mult == 0 and \
        opt.paramwise_cfg.custom_keys['mask_token'].decay_mult == 0
    assert (opt.get('clip_grad') or {}).get('max_norm') == clip
    assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=256)
    warm, cos = cfg.param_scheduler
    assert (warm.end, cos.end, cfg.train_cfg.max_epochs) == (warmup, epochs, epochs)
    assert warm.start_factor * lr == pytest.approx(1e-6)
    assert cos.eta_min_ratio * lr == pytest.approx(1e-5)
    loader = cfg.train_dataloader
    assert loader.batch_size == 32 and loader.collate_fn.type == 'repeat_pseudo_collate'
    assert loader.dataset.num_sample == 4 and loader.dataset.frame_interval == 4
    strides = {s['name']: s.get('frame_interval', 4) for s in loader.dataset.sources}
    assert strides['ssv2'] == 2 and strides['k710'] == 4
    masks = {t['type']: t for t in loader.dataset.pipeline if 'Masking' in t['type']}
    assert masks['TubeMasking'].ratio == 0.9 and masks['RunningCellMasking'].ratio == 0.5
    assert masks['TubeMasking'].grid == masks['RunningCellMasking'].grid == grid
    crop = loader.dataset.pipeline[0]
    assert crop.type == 'MultiScaleCrop' and crop.scales == (1, .875, .75, .66)
    if arch in ('small', 'base'):  # the big ones are too heavy to build in a unit test
        model = MODELS.build(cfg.model)
        assert model.decoder.embed_dims == DECODER_SETTINGS[arch]['embed_dims']
        # plain OptimWrapper: AmpOptimWrapper needs CUDA; parameter groups are the same
        wrapper = build_optim_wrapper(model, dict(type='OptimWrapper', optimizer=opt.optimizer,
                                                  paramwise_cfg=opt.paramwise_cfg))
        decay = {id(p): g['weight_decay'] for g in wrapper.optimizer.param_groups
                 for p in g['params']}
        assert decay[id(model.mask_token)] == 0
        assert decay[id(model.encoder.blocks[0].attn.q_bias)] == 0
        assert decay[id(model.encoder.blocks[0].norm1.weight)] == 0
        assert decay[id(model.encoder.blocks[0].attn.qkv.weight)] == 0.05


def test_tiny_synthetic_pair_builds_and_matches():
    pt = Config.fromfile([p for p in PRETRAIN if 'synthetic-ramps' in p and 'tube90' in p][0])
    ft = Config.fromfile([p for p in PRETRAIN if 'ramps-pre' in p][0])
    model = MODELS.build(pt.model)
    assert model.encoder.grid == (4, 4, 4)
    assert ft.model.backbone.arch == pt.model.encoder.arch
    assert ft.model.backbone.pos_embed_grid_from == (pt.model.encoder.num_frames,
                                                     pt.model.encoder.img_size)
    assert ft.model.backbone.init_cfg.type == 'Pretrained'


@pytest.mark.parametrize('path', DISTILL_RECIPES, ids=osp.basename)
def test_distillation_configs_build_with_tiny_teacher(path):
    cfg = Config.fromfile(path)
    assert cfg.model.type == 'VideoMAEv2Distiller'
    assert cfg.model.teacher.backbone.arch == 'giant'
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(1e-3 * 1024 / 256)
    assert cfg.optim_wrapper.paramwise_cfg.layer_decay == 0.75
    cfg.model.teacher.backbone.arch = dict(embed_dims=64, depth=1, num_heads=2)
    cfg.model.teacher.cls_head.in_channels = 64
    cfg.model.teacher_checkpoint = None
    cfg.model.student.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    assert model.student.cls_head.num_classes == 710
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert len(wrapper.optimizer.param_groups) > 12
    assert not any(p.requires_grad for p in model.teacher.parameters())
    assert model.student.backbone.depth == 12


def test_toy_distillation_config_teacher_is_the_tiny_recognizer():
    """The toy config's teacher must be exactly the tiny recognition config's model, so that
    config's checkpoints load into it (the distiller loads the teacher strictly)."""
    (path,) = [p for p in DISTILL if p not in DISTILL_RECIPES]
    cfg = Config.fromfile(path)
    tiny = Config.fromfile(TINY_RECOGNIZER).model
    assert cfg.model.type == 'VideoMAEv2Distiller' and cfg.model.ce_weight == 0
    assert cfg.model.teacher.to_dict() == tiny.to_dict()
    cfg.model.teacher_checkpoint = None
    model = MODELS.build(cfg.model)
    assert model.student.backbone.embed_dims == 32 and model.teacher.backbone.embed_dims == 64
    assert model.student.cls_head.num_classes == model.teacher.cls_head.num_classes == 4
