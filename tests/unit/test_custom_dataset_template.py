"""The custom-dataset template: a user copies it and edits only its top block.

Checked here: every block variable reaches the fields derived from it; bad block values fail
at parse time naming the variable; the released-checkpoint layout loads into the backbone while
the head is re-initialised for the new number of classes; ``linear_probe`` freezes exactly the
backbone; ``accumulative_counts`` reaches the optim wrapper and really defers the step.
"""
import os.path as osp
import re

import pytest
import torch
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TEMPLATE = osp.join(ROOT, 'configs', 'recognition', 'videomaev2', 'custom',
                    'vit-base-p16_videomaev2-vit-g-dist-k710-pre_custom-dataset.py')
BLOCK = re.compile(r'^# =+ edit this block =+\n.*?^# =+\n', flags=re.S | re.M)
#: a tiny stand-in for ViT-B (the template's arch is not part of its block)
TINY_ARCH = dict(embed_dims=64, depth=2, num_heads=2, mlp_ratio=2, patch_size=8)


def write_user_config(out_dir: str, **block) -> str:
    """What a user does: copy the template and change assignments in its top block only.

    The copy lives outside the repository, so its relative ``_base_`` paths are made absolute
    (a user copying next to the template keeps them). Returns the copy's path.
    """
    text = open(TEMPLATE).read()
    block_match = BLOCK.search(text)
    assert block_match, 'the template has no "edit this block" section'
    head, body, tail = (text[:block_match.start()], block_match.group(0),
                        text[block_match.end():])
    for name, value in block.items():
        body, n = re.subn(rf'^{name} = .*$', f'{name} = {value!r}', body, flags=re.M)
        assert n == 1, f'{name} is not a variable of the template block'
    base_dir = osp.join(ROOT, 'configs', '_base_')
    head = head.replace("'../../../_base_/", repr(base_dir + '/')[:-1])
    path = osp.join(out_dir, 'my_dataset.py')
    with open(path, 'w') as f:
        f.write(head + body + tail)
    return path


def tiny_model(cfg: Config):
    """The config's recognizer with the tiny arch (everything else as configured)."""
    cfg.model.backbone.arch = TINY_ARCH
    cfg.model.cls_head.in_channels = TINY_ARCH['embed_dims']
    return MODELS.build(cfg.model)


def save_released_layout(path: str, clip_len: int, input_size: int, classes: int = 710):
    """A tiny checkpoint in the layout of the released fine-tuned files (``model``-nested
    ``blocks.*`` / ``fc_norm.*`` / ``head.*``, 710 head rows); returns its tensors."""
    from vmae2_mm.models.backbones import VideoMAEv2ViT
    torch.manual_seed(123)
    backbone = VideoMAEv2ViT(arch=TINY_ARCH, img_size=input_size, num_frames=clip_len)
    backbone.init_weights()
    sd = {k: v.clone() for k, v in backbone.state_dict().items() if k != 'pos_embed'}
    sd['head.weight'] = torch.randn(classes, TINY_ARCH['embed_dims'])
    sd['head.bias'] = torch.randn(classes)
    torch.save({'model': sd}, path)
    return sd


def _batch(n: int, clip_len: int, size: int, num_classes: int):
    g = torch.Generator().manual_seed(0)
    inputs = [torch.randint(0, 256, (1, 3, clip_len, size, size), generator=g,
                            dtype=torch.uint8) for _ in range(n)]
    samples = [ActionDataSample().set_gt_label(i % num_classes) for i in range(n)]
    return dict(inputs=inputs, data_samples=samples)


def test_block_reaches_every_derived_field(tmp_path):
    cfg = Config.fromfile(write_user_config(
        str(tmp_path), data_root='/data/kitchen', ann_file_train='/data/kitchen/tr.txt',
        ann_file_val='/data/kitchen/va.txt', ann_file_test='/data/kitchen/te.txt',
        num_classes=7, clip_len=8, frame_interval=3, num_clips=2, input_size=96, hflip=False,
        max_epochs=12, warmup_epochs=2, batch_size=3, num_gpus=2, total_batch=24,
        base_lr=2e-3))
    assert cfg.model.cls_head.num_classes == 7
    assert [a.num_classes for a in cfg.model.data_preprocessor.blending.augments] == [7, 7]
    assert (cfg.model.backbone.num_frames, cfg.model.backbone.img_size) == (8, 96)
    for split, ann, clips in (('train', 'tr', 1), ('val', 'va', 1), ('test', 'te', 2)):
        loader = cfg[f'{split}_dataloader']
        assert loader.dataset.ann_file == f'/data/kitchen/{ann}.txt'
        assert loader.dataset.data_prefix == dict(video='/data/kitchen')
        ops = {t['type']: t for t in loader.dataset.pipeline}
        assert (ops['SampleFrames']['clip_len'], ops['SampleFrames']['frame_interval'],
                ops['SampleFrames']['num_clips']) == (8, 3, clips)
        assert 'Flip' not in ops
        crop = ops.get('CenterCrop') or ops.get('ThreeCrop')
        assert crop is None or crop['crop_size'] == 96
        assert ops['Resize']['scale'] in ((-1, 96), (96, 96))
    assert cfg.train_dataloader.batch_size == 3
    assert cfg.optim_wrapper.accumulative_counts == 4  # 24 / (2 GPUs x 3)
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(2e-3 * 24 / 256)
    assert cfg.train_cfg.max_epochs == 12
    assert [(s.type, s.begin, s.end) for s in cfg.param_scheduler] == [
        ('LinearLR', 0, 2), ('CosineAnnealingLR', 2, 12)]
    assert cfg.auto_scale_lr.base_batch_size == 6
    # the defaults keep the flip and the layer-decay fine-tuning
    default = Config.fromfile(TEMPLATE)
    assert 'Flip' in {t['type'] for t in default.train_dataloader.dataset.pipeline}
    assert default.optim_wrapper.constructor == 'VideoMAEv2LayerDecayOptimWrapperConstructor'
    assert default.load_from is None


@pytest.mark.parametrize('block, message', [
    (dict(total_batch=10, batch_size=4), 'total_batch=10 must be a multiple'),
    (dict(num_classes=1), 'num_classes must be an int >= 2'),
    (dict(input_size=200), 'input_size must be a multiple of the patch size 16'),
    (dict(warmup_epochs=30, max_epochs=30), 'warmup_epochs must be in'),
])
def test_bad_block_values_fail_naming_the_variable(tmp_path, block, message):
    with pytest.raises(Exception, match=re.escape(message)):
        Config.fromfile(write_user_config(str(tmp_path), **block))


def test_released_layout_loads_backbone_and_head_is_new(tmp_path):
    ckpt = str(tmp_path / 'released.pth')
    sd = save_released_layout(ckpt, clip_len=8, input_size=32)
    cfg = Config.fromfile(write_user_config(str(tmp_path), num_classes=5, clip_len=8,
                                            input_size=32, pretrained=ckpt))
    model = tiny_model(cfg)
    model.init_weights()
    loaded = model.backbone.state_dict()
    backbone_keys = [k for k in sd if not k.startswith('head.')]
    assert 'fc_norm.weight' in backbone_keys
    for k in backbone_keys:
        assert torch.equal(loaded[k], sd[k]), k
    fc = model.cls_head.fc_cls
    assert tuple(fc.weight.shape) == (5, TINY_ARCH['embed_dims'])
    # the official head init (trunc-normal x 0.001, zero bias), not rows of the 710-way head
    assert torch.count_nonzero(fc.bias) == 0 and fc.weight.abs().max() < 1e-3


def _train_steps(tmp_path, steps: int, **block):
    block = dict(dict(num_classes=3, clip_len=4, input_size=32, batch_size=2, total_batch=2),
                 **block)
    cfg = Config.fromfile(write_user_config(str(tmp_path), **block))
    cfg.model.backbone.init_cfg = None
    model = tiny_model(cfg)
    model.init_weights()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    wrapper.initialize_count_status(model, 0, 100)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    for _ in range(steps):
        model.train_step(_batch(2, block['clip_len'], block['input_size'], 3), wrapper)
    changed = {k for k, v in model.named_parameters() if not torch.equal(v, before[k])}
    return cfg, model, wrapper, changed


def test_linear_probe_freezes_exactly_the_backbone(tmp_path):
    cfg, model, wrapper, changed = _train_steps(tmp_path, 2, linear_probe=True)
    assert cfg.model.backbone.drop_path_rate == 0.0
    backbone = {f'backbone.{k}' for k, _ in model.backbone.named_parameters()}
    head = {f'cls_head.{k}' for k, _ in model.cls_head.named_parameters()}
    assert changed == head  # AdamW moved every head tensor and no backbone tensor
    ids = {id(p): n for n, p in model.named_parameters()}
    for group in wrapper.optimizer.param_groups:
        names = {ids[id(p)] for p in group['params']}
        if names <= backbone:
            assert group['lr'] == 0 and group['weight_decay'] == 0, names
        else:
            assert names <= head and group['lr'] > 0, names
    # and without linear_probe the same steps do move the backbone
    _, _, _, changed = _train_steps(tmp_path, 2, linear_probe=False)
    assert backbone <= changed


def test_accumulative_counts_reach_the_wrapper_and_defer_the_step(tmp_path):
    # 1 GPU x 2 videos, 6 videos per step: 3 micro-batches per optimizer step
    cfg, _, wrapper, changed = _train_steps(tmp_path, 2, total_batch=6)
    assert cfg.optim_wrapper.accumulative_counts == 3
    assert wrapper._accumulative_counts == 3
    assert not changed  # two micro-batches: gradients accumulated, no step yet
    _, _, _, changed = _train_steps(tmp_path, 3, total_batch=6)
    assert changed
