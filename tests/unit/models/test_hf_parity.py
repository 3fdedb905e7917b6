"""Numeric parity of our recognizer / backbone with Hugging Face ``transformers`` VideoMAE.

Random HF weights (LayerNorms and biases perturbed so none is trivial) are saved as an HF state
dict, loaded through our checkpoint loader, and logits / tokens compared at fp32 within 1e-5.
HF's LayerNorm eps is set to the official 1e-6 (its ``fc_norm`` ignores the config: set by hand).
"""
import pytest
import torch
from mmaction.registry import MODELS
from mmengine.registry import init_default_scope

import vmae2_mm  # noqa: F401
from vmae2_mm.checkpoint.videomaev2 import load_backbone_checkpoint, load_recognizer_checkpoint

transformers = pytest.importorskip('transformers')

TOL = 1e-5
# (arch, our arch dict, HF config kwargs, num_frames, img_size)
CASES = [
    pytest.param(dict(embed_dims=384, depth=12, num_heads=6, mlp_hidden_dims=1536),
                 16, 224, id='vit-small-16x224'),
    pytest.param(dict(embed_dims=768, depth=12, num_heads=12, mlp_hidden_dims=3072),
                 8, 112, id='vit-base-8x112'),
    # giant-like geometry: patch 14, head_dims 88, mlp_ratio 48/11
    pytest.param(dict(embed_dims=176, depth=3, num_heads=2, mlp_hidden_dims=768, patch_size=14),
                 4, 112, id='p14-h88-4x112'),
]


def _hf_config(arch, num_frames, img_size, num_labels=0, use_mean_pooling=True):
    return transformers.VideoMAEConfig(
        image_size=img_size, patch_size=arch.get('patch_size', 16), num_frames=num_frames,
        tubelet_size=2, hidden_size=arch['embed_dims'], num_hidden_layers=arch['depth'],
        num_attention_heads=arch['num_heads'], intermediate_size=arch['mlp_hidden_dims'],
        layer_norm_eps=1e-6, use_mean_pooling=use_mean_pooling, num_labels=num_labels,
        attn_implementation='eager')


def _perturb(model):
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
            if name == 'classifier.weight':
                # logits of order 1-10, so 1e-5 is a tight bar rather than float32 noise
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[1]**0.5)


def _recognizer(arch, num_frames, img_size, num_classes):
    init_default_scope('mmaction')
    return MODELS.build(dict(
        type='Recognizer3D',
        backbone=dict(type='VideoMAEv2ViT', arch=arch, img_size=img_size, num_frames=num_frames,
                      pos_embed_grid_from=None),
        cls_head=dict(type='VideoMAEv2Head', num_classes=num_classes,
                      in_channels=arch['embed_dims'], average_clips='prob'),
        data_preprocessor=dict(type='ActionDataPreprocessor', format_shape='NCTHW'))).eval()


@pytest.mark.parametrize('arch,num_frames,img_size', CASES)
def test_recognizer_logits_match_hf_classifier(arch, num_frames, img_size, tmp_path):
    torch.manual_seed(0)
    hf = transformers.VideoMAEForVideoClassification(
        _hf_config(arch, num_frames, img_size, num_labels=7)).eval()
    hf.fc_norm.eps = 1e-6  # HF builds fc_norm with the default 1e-5
    _perturb(hf)
    torch.save(hf.state_dict(), tmp_path / 'hf.bin')

    ours = _recognizer(arch, num_frames, img_size, 7)
    report = load_recognizer_checkpoint(ours, str(tmp_path / 'hf.bin'), strict=True)
    assert report['format'] == 'hf'

    x = torch.randn(2 if img_size < 224 else 1, 3, num_frames, img_size, img_size)
    with torch.no_grad():
        ref = hf(pixel_values=x.permute(0, 2, 1, 3, 4)).logits  # HF takes [B, T, C, H, W]
        got = ours.cls_head(ours.extract_feat(x[:, None], stage='backbone')[0])
    assert ref.abs().max() > 0.5  # logits are not trivially tiny
    assert (got - ref).abs().max().item() < TOL


TOKEN_CASES = [
    pytest.param(dict(embed_dims=384, depth=12, num_heads=6, mlp_hidden_dims=1536),
                 8, 112, id='vit-small-8x112'),
    CASES[2],
]


@pytest.mark.parametrize('arch,num_frames,img_size', TOKEN_CASES)
@pytest.mark.parametrize('use_mean_pooling', [True, False])
def test_backbone_tokens_match_hf_model(arch, num_frames, img_size, use_mean_pooling, tmp_path):
    torch.manual_seed(0)
    hf = transformers.VideoMAEModel(
        _hf_config(arch, num_frames, img_size, use_mean_pooling=use_mean_pooling)).eval()
    _perturb(hf)
    # standalone VideoMAEModel keys have no ``videomae.`` prefix
    torch.save({'model': hf.state_dict()}, tmp_path / 'hf_model.pth')

    ours = MODELS.build(dict(type='VideoMAEv2ViT', arch=arch, img_size=img_size,
                             num_frames=num_frames, pos_embed_grid_from=None,
                             use_mean_pooling=use_mean_pooling, out_type='tokens')).eval()
    report = load_backbone_checkpoint(ours, str(tmp_path / 'hf_model.pth'))
    # HF's headless model has no fc_norm (it lives in the classifier model)
    assert report['missing'] == (['fc_norm.weight', 'fc_norm.bias'] if use_mean_pooling else [])
    assert report['unexpected'] == []

    x = torch.randn(1, 3, num_frames, img_size, img_size)
    with torch.no_grad():
        ref = hf(pixel_values=x.permute(0, 2, 1, 3, 4)).last_hidden_state
        got = ours(x)
    assert got.shape == ref.shape
    assert (got - ref).abs().max().item() < TOL


def test_hf_pretraining_encoder_and_v4_bias_names(tmp_path):
    """VideoMAEForPreTraining (decoder dropped, ``layernorm`` kept) and the transformers v4
    ``q_bias``/``v_bias`` names load to the same backbone."""
    arch = dict(embed_dims=96, depth=2, num_heads=2, mlp_hidden_dims=192)
    cfg = _hf_config(arch, 4, 64, use_mean_pooling=False)
    cfg.decoder_hidden_size, cfg.decoder_num_hidden_layers = 48, 1
    cfg.decoder_num_attention_heads, cfg.decoder_intermediate_size = 2, 96
    torch.manual_seed(0)
    hf = transformers.VideoMAEForPreTraining(cfg).eval()
    _perturb(hf)
    sd = hf.state_dict()
    v4 = {k.replace('attention.attention.query.bias', 'attention.attention.q_bias')
           .replace('attention.attention.value.bias', 'attention.attention.v_bias'): v
          for k, v in sd.items()}
    x = torch.randn(1, 3, 4, 64, 64)
    with torch.no_grad():
        ref = hf.videomae(pixel_values=x.permute(0, 2, 1, 3, 4)).last_hidden_state
    for i, state in enumerate((sd, v4)):
        torch.save(state, tmp_path / f'pt{i}.bin')
        ours = MODELS.build(dict(type='VideoMAEv2ViT', arch=arch, img_size=64, num_frames=4,
                                 pos_embed_grid_from=None, use_mean_pooling=False,
                                 out_type='tokens')).eval()
        report = load_backbone_checkpoint(ours, str(tmp_path / f'pt{i}.bin'), strict=True)
        assert any(k.startswith('decoder.') for k in report['dropped'])
        with torch.no_grad():
            assert (ours(x) - ref).abs().max().item() < TOL


@pytest.mark.parametrize('base,frames,size', [
    ('videomaev2_vit_base.py', 8, 112),
    ('videomaev2_vit_base.py', 16, 160),
    ('videomaev2_vit_giant.py', 64, 266),  # patch 14: 32 x 19 x 19 tokens, the ViT-g headline input
])
def test_shipped_config_defaults_match_hf(base, frames, size, tmp_path):
    """The backbone exactly as the shipped model bases build it (no position-table option
    given) matches HF at inputs other than 16x224: the default table is the native one.
    Width and depth are shrunk (the table depends only on the token grid and the width)."""
    import os.path as osp

    from mmengine.config import Config
    root = osp.join(osp.dirname(__file__), '..', '..', '..', 'configs', '_base_', 'models')
    cfg = Config.fromfile(osp.join(root, base)).model.backbone.to_dict()
    assert 'pos_embed_grid_from' not in cfg
    patch = 14 if cfg['arch'] == 'giant' else 16
    arch = dict(embed_dims=32, depth=1, num_heads=1, mlp_hidden_dims=64, patch_size=patch)
    cfg.update(arch=arch, num_frames=frames, img_size=size, out_type='tokens',
               use_mean_pooling=False)
    torch.manual_seed(0)
    hf = transformers.VideoMAEModel(_hf_config(arch, frames, size, use_mean_pooling=False)).eval()
    _perturb(hf)
    torch.save(hf.state_dict(), tmp_path / 'hf.bin')
    ours = MODELS.build(cfg).eval()
    load_backbone_checkpoint(ours, str(tmp_path / 'hf.bin'))
    x = torch.randn(1, 3, frames, size, size)
    with torch.no_grad():
        ref = hf(pixel_values=x.permute(0, 2, 1, 3, 4)).last_hidden_state
        got = ours(x)
    assert got.shape == ref.shape == (1, (frames // 2) * (size // patch)**2, 32)
    assert (got - ref).abs().max().item() < TOL
