"""Checkpoint layouts: official (pretrain / fine-tune, nesting, prefixes, fp16), mmaction2,
position tables, head maps, and clear errors."""
import json
import os.path as osp

import pytest
import torch
from mmaction.registry import MODELS
from mmengine.registry import init_default_scope

import vmae2_mm  # noqa: F401
from vmae2_mm.utils.pos_embed import resize_pos_table, sinusoid_table
from vmae2_mm.checkpoint.videomaev2 import (canonicalize, convert_head, detect_format,
                                       load_backbone_checkpoint, load_recognizer_checkpoint,
                                       to_backbone_keys)
from vmae2_mm.checkpoint.label_maps import DATA_DIR, build_label_map, load_label_map, read_class_list

ARCH = dict(embed_dims=48, depth=2, num_heads=3, mlp_hidden_dims=96)


def _vit(**kw):
    cfg = dict(type='VideoMAEv2ViT', arch=ARCH, img_size=32, num_frames=4,
               pos_embed_grid_from=None)
    cfg.update(kw)
    return MODELS.build(cfg).eval()


def _randomised(model):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model


def _x():
    return torch.randn(1, 3, 4, 32, 32, generator=torch.Generator().manual_seed(3))


def test_official_pretrain_nested_compiled_fp16(tmp_path):
    """``model`` nesting + ``_orig_mod.`` + ``encoder.`` + fp16: weights equal the fp16 values
    upcast; decoder / mask token / encoder_to_decoder are dropped; ``encoder.norm`` is dropped
    under mean pooling (official rule)."""
    src = _randomised(_vit(use_mean_pooling=False))
    sd = {f'_orig_mod.encoder.{k}': v.half() for k, v in src.state_dict().items()}
    sd.update({'_orig_mod.decoder.blocks.0.attn.qkv.weight': torch.zeros(6, 2).half(),
               '_orig_mod.decoder.head.weight': torch.zeros(3, 2),
               '_orig_mod.encoder_to_decoder.weight': torch.zeros(2, 48),
               '_orig_mod.mask_token': torch.zeros(1, 1, 2)})
    torch.save({'model': sd, 'epoch': 3, 'args': None}, tmp_path / 'pt.pth')
    dst = _vit()
    report = load_backbone_checkpoint(dst, str(tmp_path / 'pt.pth'), strict=False)
    assert report['format'] == 'official'
    assert report['missing'] == ['fc_norm.weight', 'fc_norm.bias']
    assert report['unexpected'] == []
    assert {'norm.weight', 'norm.bias', 'mask_token', 'decoder.head.weight',
            'encoder_to_decoder.weight'} <= set(report['dropped'])
    for k, v in dst.state_dict().items():
        if not k.startswith('fc_norm'):
            assert v.dtype == torch.float32
            assert torch.equal(v, src.state_dict()[k].half().float()), k


def test_official_finetune_under_module_with_head(tmp_path):
    src = _randomised(_vit())
    sd = dict(src.state_dict())
    sd['head.weight'], sd['head.bias'] = torch.randn(5, 48), torch.randn(5)
    torch.save({'module': sd}, tmp_path / 'ft.pth')
    dst = _vit()
    report = load_backbone_checkpoint(dst, str(tmp_path / 'ft.pth'), strict=True)
    assert report['missing'] == [] and set(report['dropped']) == {'head.weight', 'head.bias'}
    with torch.no_grad():
        assert torch.equal(dst(_x()), src(_x()))


def test_distiller_checkpoint_gives_its_student(tmp_path):
    """A VideoMAEv2Distiller checkpoint (every key under ``student.``) converts to the student."""
    src = _randomised(_vit())
    sd = {f'student.backbone.{k}': v for k, v in src.state_dict().items()}
    sd['student.cls_head.fc_cls.weight'] = torch.randn(5, 48)
    sd['student.cls_head.fc_cls.bias'] = torch.randn(5)
    torch.save({'state_dict': sd, 'meta': {}}, tmp_path / 'kd.pth')
    canon = canonicalize(sd)
    assert torch.equal(canon.head['weight'], sd['student.cls_head.fc_cls.weight'])
    dst = _vit()
    load_backbone_checkpoint(dst, str(tmp_path / 'kd.pth'), strict=True)
    with torch.no_grad():
        assert torch.equal(dst(_x()), src(_x()))


def test_mmaction2_vision_transformer_numeric_parity(tmp_path):
    """A real mmaction2 ``VisionTransformer`` recognizer checkpoint (``patch_embed.projection``,
    ``mlp.layers``, persistent sinusoid ``pos_embed``, ``cls_head.fc_cls``) gives the same
    features and logits."""
    init_default_scope('mmaction')
    mma = MODELS.build(dict(
        type='Recognizer3D',
        backbone=dict(type='VisionTransformer', img_size=32, patch_size=16, embed_dims=48,
                      depth=2, num_heads=3, mlp_ratio=2, qkv_bias=True, num_frames=4,
                      norm_cfg=dict(type='LN', eps=1e-6)),
        cls_head=dict(type='TimeSformerHead', num_classes=5, in_channels=48))).eval()
    _randomised(mma)
    sd = mma.state_dict()
    assert 'backbone.pos_embed' in sd and 'backbone.blocks.0.mlp.layers.0.0.weight' in sd
    torch.save({'state_dict': sd, 'meta': {}}, tmp_path / 'mma.pth')
    assert detect_format(sd) == 'mmaction2'

    ours = MODELS.build(dict(
        type='Recognizer3D',
        # mmaction2 builds the sinusoid natively for its grid
        backbone=dict(type='VideoMAEv2ViT', arch=ARCH, img_size=32, num_frames=4,
                      pos_embed_grid_from=None),
        cls_head=dict(type='VideoMAEv2Head', num_classes=5, in_channels=48))).eval()
    report = load_recognizer_checkpoint(ours, str(tmp_path / 'mma.pth'), strict=True)
    assert report['format'] == 'mmaction2'
    x = _x()[:, None]
    with torch.no_grad():
        ref = mma.cls_head(mma.extract_feat(x, stage='backbone')[0])
        got = ours.cls_head(ours.extract_feat(x, stage='backbone')[0])
    assert (got - ref).abs().max().item() < 1e-5


def test_learnable_pos_embed_is_resized_into_the_model(tmp_path):
    src = _randomised(_vit())
    table = torch.randn(1, 2 * 4 * 4, 48)  # learnable table for 4 frames x 64 px (2x4x4)
    torch.save({**src.state_dict(), 'pos_embed': table}, tmp_path / 'l.pth')
    dst = _vit()  # grid (2, 2, 2)
    report = load_backbone_checkpoint(dst, str(tmp_path / 'l.pth'), strict=True)
    assert 'pos_embed' not in report['dropped']
    expected = resize_pos_table(table, (2, 4, 4), (2, 2, 2))
    assert torch.equal(dst.pos_embed, expected)
    # a sinusoid table is recognised and dropped (the model builds its own)
    torch.save({**src.state_dict(), 'pos_embed': sinusoid_table(8, 48)}, tmp_path / 's.pth')
    report = load_backbone_checkpoint(_vit(), str(tmp_path / 's.pth'))
    assert 'pos_embed' in report['dropped']


def test_shape_mismatch_names_key_and_shapes(tmp_path):
    src = _randomised(_vit())
    sd = dict(src.state_dict())
    sd['blocks.1.mlp.fc1.weight'] = torch.zeros(64, 48)
    torch.save(sd, tmp_path / 'bad.pth')
    with pytest.raises(ValueError, match=r'bad\.pth.*blocks\.1\.mlp\.fc1\.weight: checkpoint '
                       r'\(64, 48\) vs model \(96, 48\)'):
        load_backbone_checkpoint(_vit(), str(tmp_path / 'bad.pth'))


def test_unknown_layout_and_unreadable_file(tmp_path):
    torch.save({'foo.weight': torch.zeros(2)}, tmp_path / 'x.pth')
    with pytest.raises(ValueError, match=r'x\.pth: unknown checkpoint layout'):
        load_backbone_checkpoint(_vit(), str(tmp_path / 'x.pth'))
    (tmp_path / 'corrupt.pth').write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match=r'corrupt\.pth: cannot read checkpoint'):
        load_backbone_checkpoint(_vit(), str(tmp_path / 'corrupt.pth'))
    with pytest.raises(ValueError, match='format must be'):
        canonicalize({'patch_embed.proj.weight': torch.zeros(1)}, fmt='timm')


def test_unexpected_keys_reported_and_strict_raises(tmp_path):
    sd = dict(_randomised(_vit()).state_dict())
    sd['blocks.0.attn.qkv.bias'] = torch.zeros(144)
    torch.save(sd, tmp_path / 'u.pth')
    report = load_backbone_checkpoint(_vit(), str(tmp_path / 'u.pth'))
    assert report['unexpected'] == ['blocks.0.attn.qkv.bias']
    with pytest.raises(KeyError, match=r"unexpected \['blocks\.0\.attn\.qkv\.bias'\]"):
        load_backbone_checkpoint(_vit(), str(tmp_path / 'u.pth'), strict=True)


def test_to_backbone_keys_keeps_lead_contract():
    sd = {'backbone.patch_embed.proj.weight': torch.zeros(1).half(),
          'backbone.norm.weight': torch.zeros(1), 'cls_head.fc_cls.weight': torch.zeros(1),
          'backbone.pos_embed': torch.zeros(1)}
    out, dropped = to_backbone_keys(sd, use_mean_pooling=True)
    assert list(out) == ['patch_embed.proj.weight'] and out['patch_embed.proj.weight'].dtype \
        == torch.float32
    assert set(dropped) == {'norm.weight', 'head.weight', 'pos_embed'}


def _class_lists(tmp_path):
    """Generated K710-like and K400-like class lists (the real lists are not shipped: they
    come from the official repository and must be supplied by the user)."""
    rng = __import__('random').Random(0)
    k710 = [f'action {i:03d}' for i in range(710)]
    rng.shuffle(k710)
    k400 = sorted(rng.sample(k710, 400))
    (tmp_path / 'k710.txt').write_text('\n'.join(k710) + '\n')
    (tmp_path / 'k400.txt').write_text('\n'.join(k400) + '\n')
    return k710, k400


def test_k710_head_to_k400_by_label_map(tmp_path):
    k710, k400 = _class_lists(tmp_path)
    idx = build_label_map(read_class_list(str(tmp_path / 'k710.txt')),
                          read_class_list(str(tmp_path / 'k400.txt')))
    assert [k710[i] for i in idx] == k400
    map_file = tmp_path / 'label_710to400.json'
    map_file.write_text(json.dumps(idx))
    head = {'weight': torch.arange(710.)[:, None].repeat(1, 4), 'bias': torch.arange(710.)}
    out = convert_head(head, str(map_file))
    assert out['weight'].shape == (400, 4)
    assert torch.equal(out['bias'], torch.tensor(idx, dtype=torch.float32))
    assert load_label_map(str(map_file)) == idx
    with pytest.raises(ValueError, match='has 5 classes'):
        convert_head({'weight': torch.zeros(5, 4), 'bias': torch.zeros(5)}, str(map_file))


def test_make_label_maps_tool(tmp_path):
    import runpy
    import sys
    k710, k400 = _class_lists(tmp_path)
    argv = sys.argv
    try:
        sys.argv = ['make_label_maps.py', '--source', str(tmp_path / 'k710.txt'), '--targets',
                    str(tmp_path / 'k400.txt'), '--out-dir', str(tmp_path / 'maps')]
        runpy.run_path('tools/make_label_maps.py', run_name='__main__')
    finally:
        sys.argv = argv
    written = list((tmp_path / 'maps').glob('*.json'))
    assert len(written) == 1
    mapping = json.loads(written[0].read_text())
    assert [k710[i] for i in mapping] == k400
    with pytest.raises(ValueError, match='no source class'):
        build_label_map(['a', 'b'], ['a', 'c'])
