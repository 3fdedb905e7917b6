"""Official / HF fine-tuned checkpoints (with their classifier) through mmengine loading paths:
``load_from`` (``Runner.load_checkpoint`` -> ``_load_checkpoint_to_model``) and the
backbone's + head's ``init_cfg`` Pretrained (mmaction2's recognizers take no ``init_cfg`` of
their own); head rows by a label index map."""
import json
import logging

import pytest
import torch
from mmaction.registry import MODELS
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import _load_checkpoint_to_model, load_checkpoint

import vmae2_mm  # noqa: F401
from vmae2_mm.engine.hooks import ForeignCheckpointHook
from vmae2_mm.checkpoint.foreign import (install_foreign_checkpoint_hook,
                                               resolve_label_map)

ARCH = dict(embed_dims=64, depth=2, num_heads=2, mlp_hidden_dims=128)


def _recognizer(num_classes, backbone_init_cfg=None, head_init_cfg=None, seed=0):
    init_default_scope('mmaction')
    torch.manual_seed(seed)
    model = MODELS.build(dict(
        type='Recognizer3D',
        backbone=dict(type='VideoMAEv2ViT', arch=ARCH, img_size=32, num_frames=4,
                      init_cfg=backbone_init_cfg),
        cls_head=dict(type='VideoMAEv2Head', num_classes=num_classes, in_channels=64,
                      init_scale=1.0, init_cfg=head_init_cfg),
        data_preprocessor=dict(type='ActionDataPreprocessor', format_shape='NCTHW')))
    return model.eval()


def _official_finetuned(model, path, nest='model', fp16=True):
    """Write ``model`` in the released fine-tuned layout: ``blocks.*``, ``fc_norm``, ``head``,
    nested under ``model`` (or ``module``), fp16 tensors, plus non-tensor entries."""
    sd = {}
    for k, v in model.state_dict().items():
        if k.startswith('backbone.'):
            k = k[len('backbone.'):]
        elif k.startswith('cls_head.fc_cls.'):
            k = 'head.' + k[len('cls_head.fc_cls.'):]
        else:
            continue
        sd[k] = v.half() if fp16 else v.clone()
    torch.save({nest: sd, 'epoch': 89, 'args': {'model': 'vit_tiny'}}, path)
    return sd


def _logits(model, x):
    with torch.no_grad():
        return model.cls_head(model.extract_feat(x[:, None], stage='backbone')[0])


def _load_like_runner(model, path):
    """What ``Runner.load_checkpoint`` (``load_from``) does with a local file."""
    ckpt = torch.load(path, map_location='cpu', weights_only=False)
    _load_checkpoint_to_model(model, ckpt, strict=False, revise_keys=[(r'^module\.', '')])


def test_load_from_official_finetuned_checkpoint_with_head(tmp_path):
    src = _recognizer(7, seed=1)
    _official_finetuned(src, tmp_path / 'ft.pth', fp16=False)
    dst = _recognizer(7, seed=2)
    x = torch.randn(2, 3, 4, 32, 32)
    assert not torch.allclose(_logits(dst, x), _logits(src, x))
    assert install_foreign_checkpoint_hook(dst)
    _load_like_runner(dst, tmp_path / 'ft.pth')
    assert torch.equal(_logits(dst, x), _logits(src, x))


def test_label_map_selects_head_rows_and_sizes_are_checked(tmp_path):
    src = _recognizer(7, seed=1)
    sd = _official_finetuned(src, tmp_path / 'ft.pth', nest='module')
    rows = [5, 0, 2]
    dst = _recognizer(3, seed=2)
    install_foreign_checkpoint_hook(dst, label_map=rows)
    _load_like_runner(dst, tmp_path / 'ft.pth')
    assert torch.equal(dst.cls_head.fc_cls.weight, sd['head.weight'][rows].float())
    assert torch.equal(dst.cls_head.fc_cls.bias, sd['head.bias'][rows].float())
    assert torch.equal(dst.backbone.blocks[1].attn.qkv.weight,
                       sd['blocks.1.attn.qkv.weight'].float())
    # 7 -> 3 classes with no map: a clear error instead of a silently skipped head
    other = _recognizer(3)
    install_foreign_checkpoint_hook(other)
    with pytest.raises(ValueError, match='7 classes, the model 3: set label_map'):
        _load_like_runner(other, tmp_path / 'ft.pth')


def test_load_from_mmaction2_recognizer_checkpoint(tmp_path):
    """mmaction2 ``VisionTransformer`` recognizers also use ``backbone.blocks.*``: converted."""
    src = _recognizer(7, seed=1)
    renames = (('patch_embed.proj.', 'patch_embed.projection.'), ('.mlp.fc1.', '.mlp.layers.0.0.'),
               ('.mlp.fc2.', '.mlp.layers.1.'))
    sd = {}
    for k, v in src.state_dict().items():
        for a, b in renames:
            k = k.replace(a, b)
        sd[k] = v
    assert 'backbone.blocks.0.mlp.layers.0.0.weight' in sd
    torch.save({'state_dict': sd, 'meta': {}}, tmp_path / 'mma.pth')
    dst = _recognizer(7, seed=2)
    install_foreign_checkpoint_hook(dst)
    load_checkpoint(dst, str(tmp_path / 'mma.pth'), strict=True)
    x = torch.randn(1, 3, 4, 32, 32)
    assert torch.equal(_logits(dst, x), _logits(src, x))


def test_k710_map_is_chosen_automatically():
    assert resolve_label_map(None, 710, 400) == 'k710to400'
    assert resolve_label_map(None, 710, 600) == 'k710to600'
    assert resolve_label_map(None, 400, 400) is None
    assert resolve_label_map([3, 1], 710, 2) == [3, 1]


def test_backbone_and_head_init_cfg_load_official_finetuned(tmp_path):
    src = _recognizer(7, seed=1)
    _official_finetuned(src, tmp_path / 'ft.pth')
    init = dict(type='Pretrained', checkpoint=str(tmp_path / 'ft.pth'))
    dst = _recognizer(7, backbone_init_cfg=init, head_init_cfg=init, seed=2)
    dst.init_weights()
    x = torch.randn(1, 3, 4, 32, 32)
    # the official file stores fp16 tensors: compare with the fp16-rounded source
    ref = _recognizer(7, seed=1)
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(p.half().float())
    assert torch.equal(_logits(dst, x), _logits(ref, x))
    # with the hook installed, an mmengine checkpoint of our own recognizer loads unchanged
    install_foreign_checkpoint_hook(dst)
    torch.save({'state_dict': src.state_dict(), 'meta': {}}, tmp_path / 'own.pth')
    load_checkpoint(dst, str(tmp_path / 'own.pth'))
    assert torch.equal(_logits(dst, x), _logits(src, x))


def test_head_init_cfg_loads_hf_classifier_with_label_map(tmp_path):
    transformers = pytest.importorskip('transformers')
    cfg = transformers.VideoMAEConfig(image_size=32, patch_size=16, num_frames=4,
                                      hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                      intermediate_size=128, num_labels=6)
    torch.manual_seed(0)
    hf = transformers.VideoMAEForVideoClassification(cfg)
    torch.save(hf.state_dict(), tmp_path / 'hf.bin')
    (tmp_path / 'map.json').write_text(json.dumps([4, 1]))
    model = _recognizer(2, head_init_cfg=dict(type='Pretrained',
                                              checkpoint=str(tmp_path / 'hf.bin'),
                                              label_map=str(tmp_path / 'map.json')))
    model.init_weights()
    assert torch.equal(model.cls_head.fc_cls.weight, hf.classifier.weight[[4, 1]])
    assert torch.equal(model.cls_head.fc_cls.bias, hf.classifier.bias[[4, 1]])
    bad = _recognizer(3, head_init_cfg=dict(type='Pretrained',
                                            checkpoint=str(tmp_path / 'hf.bin')))
    with pytest.raises(ValueError, match='hf.bin: the checkpoint classifier has 6 classes'):
        bad.init_weights()


def test_runner_hook_installs_on_recognizers_only(tmp_path):
    class _Runner:  # the two attributes ForeignCheckpointHook reads
        logger = logging.getLogger('test')

    runner = _Runner()
    runner.model = _recognizer(7)
    ForeignCheckpointHook(label_map=[0, 1]).before_run(runner)
    assert getattr(runner.model, '_vmae2_foreign_checkpoint_hook') is not None
    assert not install_foreign_checkpoint_hook(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match='label_map'):
        ForeignCheckpointHook(label_map=3)
