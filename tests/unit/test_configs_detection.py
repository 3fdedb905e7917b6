"""Every configs/detection/** config builds and runs one train iteration (with its real
optimiser constructor, schedule, pipelines and dataset class) and one test batch through
AVAFrameMAPMetric on generated mini-AVA data, with a tiny ViT in place of the real size."""
import math
import os.path as osp
from glob import glob

import pytest
import torch

import vmae2_mm  # noqa: F401
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.evaluator import Evaluator
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS
from mmengine.runner import Runner
from mmaction.registry import MODELS
from vmae2_mm.testing.ava import generate_mini_ava
from vmae2_mm.models.backbones.vit_videomaev2 import ARCH_SETTINGS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ALL_CONFIGS = sorted(glob(osp.join(REPO, 'configs', 'detection', '**', '*.py'), recursive=True))
#: the paper-recipe configs; ``*_mini-ava-rgb.py`` is the toy config of the demo and the e2e test
#: (trained and tested through the tools in tests/e2e/test_ava_e2e.py)
CONFIGS = [p for p in ALL_CONFIGS if not p.endswith('_mini-ava-rgb.py')]
IDS = [osp.basename(p) for p in CONFIGS]
TINY = dict(embed_dims=32, depth=2, num_heads=2, mlp_ratio=2)


@pytest.fixture(scope='module')
def mini_ava(tmp_path_factory):
    root = tmp_path_factory.mktemp('mini_ava')
    # AVA videos + 1 Kinetics clip: the AVA-Kinetics dataset class reads both kinds
    return generate_mini_ava(str(root), num_train_videos=1, num_val_videos=1, seconds=5,
                             kinetics_clips=1, seed=3)


def tiny_cfg(path: str, data: dict, work_dir: str) -> Config:
    """The config with a tiny backbone of the same patch size, the generated data and no
    pretrained checkpoint; everything else (pipelines, optimiser, schedule) as shipped."""
    cfg = Config.fromfile(path)
    backbone = cfg.model.backbone
    arch = ARCH_SETTINGS[backbone.arch] if isinstance(backbone.arch, str) else backbone.arch
    backbone.update(arch=dict(TINY, patch_size=arch['patch_size']), init_cfg=None,
                    with_cp=False)
    cfg.model.roi_head.bbox_head.in_channels = TINY['embed_dims']
    ann = osp.join(data['root'], 'annotations')
    for loader, split in (('train_dataloader', 'train'), ('test_dataloader', 'val')):
        dl = cfg[loader]
        dl.update(num_workers=0, persistent_workers=False)
        dl.dataset.update(ann_file=data[f'{split}_ann'], exclude_file=data[f'{split}_exclude'],
                          label_file=data['label_file'], proposal_file=data[f'{split}_proposals'],
                          data_prefix=dict(img=osp.join(data['root'], 'rawframes')),
                          timestamp_start=data['timestamp_start'],
                          timestamp_end=data['timestamp_end'])
        if 'ava-kinetics' not in path:
            # the generated CSVs hold a Kinetics clip row, outside the plain AVA time range
            dl.dataset.keyframe_outside = 'skip'
    cfg.train_dataloader.batch_size = 2
    cfg.test_evaluator.update(ann_file=data['val_ann'], label_file=data['label_file'],
                              exclude_file=data['val_exclude'])
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.default_hooks.checkpoint.save_best = None
    cfg.work_dir = work_dir
    assert osp.isfile(osp.join(ann, 'ava_train_v2.2.csv'))
    return cfg


def test_all_sizes_and_datasets_present():
    names = '\n'.join(IDS)
    for size in ('vit-small-p16', 'vit-base-p16', 'vit-large-p16', 'vit-huge-p16',
                 'vit-giant-p14'):
        for ds in ('ava22-rgb', 'ava-kinetics-rgb'):
            assert any(n.startswith(size) and n.endswith(f'_{ds}.py') for n in IDS), (size, ds)
    assert len(CONFIGS) == 10 and len(ALL_CONFIGS) == 11, names


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_paper_recipe(path):
    """Paper Table 12 in every shipped config (before the tiny override)."""
    cfg = Config.fromfile(path)
    opt = cfg.optim_wrapper
    assert opt.optimizer.type == 'AdamW' and opt.optimizer.lr == 3e-4
    assert opt.optimizer.weight_decay == 0.05 and tuple(opt.optimizer.betas) == (0.9, 0.999)
    assert opt.constructor == 'VideoMAEv2LayerDecayOptimWrapperConstructor'
    assert opt.paramwise_cfg.layer_decay == 0.9 and 'clip_grad' not in opt
    assert cfg.train_cfg.max_epochs == 10
    warm, cos = cfg.param_scheduler
    assert (warm.type, warm.end, cos.type, cos.begin, cos.end) == (
        'LinearLR', 2, 'CosineAnnealingLR', 2, 10)
    assert cfg.model.backbone.drop_path_rate == 0.3
    assert cfg.model.backbone.out_type == 'featmap'
    ngpu, bs = osp.basename(path).split('_')[2].split('-')[0].split('xb')
    assert int(ngpu) * int(bs) == 128 and cfg.train_dataloader.batch_size == int(bs)
    assert cfg.auto_scale_lr.base_batch_size == 128
    sample = cfg.train_dataloader.dataset.pipeline[0]
    assert (sample.type, sample.clip_len, sample.frame_interval) == ('SampleAVAFrames', 16, 4)
    assert any(t.type == 'Flip' for t in cfg.train_dataloader.dataset.pipeline)
    patch = ARCH_SETTINGS[cfg.model.backbone.arch]['patch_size']
    assert cfg.model.roi_head.bbox_roi_extractor.featmap_stride == patch
    assert cfg.model.data_preprocessor.pad_size_divisor == patch
    assert cfg.model.roi_head.bbox_head.in_channels == \
        ARCH_SETTINGS[cfg.model.backbone.arch]['embed_dims']
    assert cfg.model.backbone.init_cfg.checkpoint.startswith('checkpoints/')
    kinetics = 'ava-kinetics' in path
    assert cfg.train_dataloader.dataset.type == (
        'AVAKineticsKeyframeDataset' if kinetics else 'AVAKeyframeDataset')
    assert cfg.test_evaluator.type == 'AVAFrameMAPMetric'
    assert cfg.test_dataloader.batch_size == 1


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_one_train_iter_and_one_test_batch(path, mini_ava, tmp_path):
    """Built from the registries as the Runner does (the Runner itself adds ~6 s of env
    collection per config)."""
    torch.manual_seed(0)
    init_default_scope('mmaction')
    cfg = tiny_cfg(path, mini_ava, str(tmp_path))
    model = MODELS.build(cfg.model)
    model.init_weights()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    # layer decay 0.9 over depth 2: patch_embed 0.9^3, block i 0.9^(2-i), RoI head 1
    lrs = {p.data_ptr(): g['lr'] for g in optim.param_groups for p in g['params']}
    lr_of = {n: lrs[p.data_ptr()] for n, p in model.named_parameters() if p.data_ptr() in lrs}
    assert lr_of['backbone.patch_embed.proj.weight'] == pytest.approx(3e-4 * 0.9 ** 3)
    assert lr_of['backbone.blocks.1.mlp.fc1.weight'] == pytest.approx(3e-4 * 0.9)
    assert lr_of['roi_head.bbox_head.fc_cls.weight'] == pytest.approx(3e-4)
    train_loader = Runner.build_dataloader(cfg.train_dataloader)
    schedulers = [PARAM_SCHEDULERS.build(s, default_args=dict(
        optimizer=optim, epoch_length=len(train_loader))) for s in cfg.param_scheduler]
    assert [type(s).__name__ for s in schedulers] == ['LinearLR', 'CosineAnnealingLR']

    batch = next(iter(train_loader))
    assert batch['inputs'][0].shape[-3] == 16  # SampleAVAFrames(16, 4)
    model.train()
    losses = model.train_step(batch, optim)
    assert math.isfinite(float(losses['loss_action_cls']))

    model.eval()
    batch = next(iter(Runner.build_dataloader(cfg.test_dataloader)))
    with torch.no_grad():
        outputs = model.test_step(batch)
    pred = outputs[0].pred_instances
    assert pred.scores.shape == (len(pred.bboxes), 81)
    assert ((pred.bboxes >= 0) & (pred.bboxes <= 1)).all()  # normalised, unpadded
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.process(outputs, batch)
    metrics = evaluator.evaluate(1)
    assert 0.0 <= metrics['mAP/overall'] <= 1.0
