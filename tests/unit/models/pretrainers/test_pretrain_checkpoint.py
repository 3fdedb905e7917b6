"""Pre-training checkpoints both ways: official/HF -> pretrainer, pretrainer -> VideoMAEv2ViT."""
import pytest
import torch

import vmae2_mm  # noqa: F401
from vmae2_mm.models.backbones import VideoMAEv2ViT
from vmae2_mm.models.pretrainers import VideoMAEv2Pretrainer
from vmae2_mm.checkpoint.videomaev2 import load_backbone_checkpoint
from vmae2_mm.checkpoint.pretrain import (hf_to_official_pretrain,
                                                official_to_hf_pretrain, to_pretrainer_keys)

ENC = dict(arch=dict(embed_dims=64, depth=2, num_heads=2), img_size=32, num_frames=4)
DEC = dict(embed_dims=32, num_heads=2, depth=1)


def tiny(**kw):
    torch.manual_seed(kw.pop('seed', 0))
    return VideoMAEv2Pretrainer(encoder=dict(ENC), decoder=dict(DEC), **kw)


def assert_same_params(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_official_layout_loads_one_to_one(tmp_path):
    src = tiny(seed=1)
    official = {'_orig_mod.' + k: v.half() for k, v in src.state_dict().items()}
    expected_keys = {'mask_token', 'encoder_to_decoder.weight', 'encoder.norm.weight',
                     'encoder.patch_embed.proj.weight', 'encoder.blocks.1.attn.q_bias',
                     'decoder.blocks.0.attn.qkv.weight', 'decoder.norm.bias',
                     'decoder.head.weight'}
    assert expected_keys <= set(src.state_dict())
    path = tmp_path / 'official.pth'
    torch.save({'model': official, 'epoch': 3}, path)
    dst = tiny(seed=2, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    dst.init_weights()
    for k, v in dst.state_dict().items():
        assert v.dtype == torch.float32
        assert torch.equal(v, official['_orig_mod.' + k].float()), k


def test_hf_key_map_round_trip_and_load(tmp_path):
    src = tiny(seed=3)
    hf = official_to_hf_pretrain(src.state_dict())
    assert 'videomae.encoder.layer.0.attention.attention.key.weight' in hf
    assert 'decoder.decoder_layers.0.layernorm_after.bias' in hf
    assert 'videomae.layernorm.weight' in hf
    back = hf_to_official_pretrain(hf)
    assert back.keys() == src.state_dict().keys()
    torch.save(hf, tmp_path / 'hf.bin')
    dst = tiny(seed=4, init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'hf.bin')))
    dst.init_weights()
    assert_same_params(src, dst)
    hf['videomae.encoder.layer.0.attention.attention.key.bias'] = torch.ones(64)
    with pytest.raises(KeyError, match='no k bias'):
        hf_to_official_pretrain(hf)


def test_runner_checkpoint_of_pretrainer_loads_into_backbone(tmp_path):
    """mmengine Runner layout ({'state_dict', 'meta'}) -> VideoMAEv2ViT for fine-tuning."""
    src = tiny(seed=5).eval()
    path = tmp_path / 'epoch_1.pth'
    torch.save({'meta': {'epoch': 1}, 'state_dict': src.state_dict(), 'optimizer': {}}, path)

    # without mean pooling the backbone reproduces the pretrain encoder exactly
    vit = VideoMAEv2ViT(**ENC, use_mean_pooling=False, out_type='tokens',
                        pos_embed_grid_from=None,
                        init_cfg=dict(type='Pretrained', checkpoint=str(path))).eval()
    vit.init_weights()
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(vit(x), src.encoder.forward_tokens(x))

    # fine-tune model (mean pooling): encoder.norm dropped, fc_norm keeps its fresh init
    ft = VideoMAEv2ViT(**ENC, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    report = load_backbone_checkpoint(ft, str(path))
    assert report['missing'] == ['fc_norm.weight', 'fc_norm.bias']
    assert report['unexpected'] == []
    assert 'norm.weight' in report['dropped'] and 'mask_token' in report['dropped']
    assert torch.equal(ft.blocks[1].mlp.fc2.weight, src.encoder.blocks[1].mlp.fc2.weight)


def test_shape_mismatch_and_strictness_are_reported(tmp_path):
    src = tiny()
    sd = src.state_dict()
    sd['decoder.head.weight'] = torch.zeros(7, 32)
    torch.save(sd, tmp_path / 'bad.pth')
    dst = tiny(init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'bad.pth')))
    with pytest.raises(ValueError, match=r'decoder.head.weight: checkpoint \(7, 32\)'):
        dst.init_weights()
    sd = src.state_dict()
    del sd['mask_token']
    torch.save(sd, tmp_path / 'partial.pth')
    dst = tiny(init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'partial.pth')))
    with pytest.raises(KeyError, match='mask_token'):
        dst.init_weights()


def test_to_pretrainer_keys_drops_fixed_tables():
    sd = {'encoder.pos_embed': torch.zeros(1, 8, 64), 'data_preprocessor.mean': torch.zeros(3),
          'module.mask_token': torch.zeros(1, 1, 32, dtype=torch.float16)}
    out = to_pretrainer_keys(sd)
    assert list(out) == ['mask_token'] and out['mask_token'].dtype == torch.float32
