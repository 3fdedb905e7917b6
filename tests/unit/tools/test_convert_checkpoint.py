"""tools/convert_checkpoint.py: HF / official files -> mmengine recognizer checkpoints that
mmengine's own loader (``load_from`` / ``tools/test.py``) reads with identical logits."""

import pytest
import torch
from mmaction.registry import MODELS
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

import vmae2_mm  # noqa: F401
from vmae2_mm.checkpoint.label_maps import load_label_map
from tests.conftest import load_script

transformers = pytest.importorskip('transformers')


def _tool():
    return load_script('tools/convert_checkpoint.py')


def _recognizer(num_classes, dims=48, img_size=32, num_frames=4):
    init_default_scope('mmaction')
    return MODELS.build(dict(
        type='Recognizer3D',
        backbone=dict(type='VideoMAEv2ViT', arch=dict(embed_dims=dims, depth=2, num_heads=3,
                                                        mlp_ratio=2), img_size=img_size,
                      num_frames=num_frames, pos_embed_grid_from=None),
        cls_head=dict(type='VideoMAEv2Head', num_classes=num_classes, in_channels=dims))).eval()


def test_hf_folder_to_mmengine_checkpoint_same_logits(tmp_path):
    cfg = transformers.VideoMAEConfig(image_size=32, num_frames=4, hidden_size=48,
                                      num_hidden_layers=2, num_attention_heads=3,
                                      intermediate_size=96, layer_norm_eps=1e-6, num_labels=5)
    torch.manual_seed(0)
    hf = transformers.VideoMAEForVideoClassification(cfg).eval()
    hf.fc_norm.eps = 1e-6
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    hf.save_pretrained(str(tmp_path / 'hf'))  # model.safetensors + config.json
    dst = str(tmp_path / 'out' / 'converted.pth')
    _tool().main([str(tmp_path / 'hf'), dst])

    ckpt = torch.load(dst, weights_only=False)
    assert ckpt['meta']['source_format'] == 'hf' and ckpt['meta']['num_classes'] == 5
    assert set(k.split('.')[0] for k in ckpt['state_dict']) == {'backbone', 'cls_head'}
    model = _recognizer(5)
    load_checkpoint(model, dst, strict=True)  # mmengine's loader, as load_from / tools/test.py
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        ref = hf(pixel_values=x.permute(0, 2, 1, 3, 4)).logits
        got = model.cls_head(model.extract_feat(x[:, None], stage='backbone')[0])
    assert (got - ref).abs().max().item() < 1e-5


def test_official_k710_head_mapped_to_k400(tmp_path):
    src_model = _recognizer(710)
    sd = {k[len('backbone.'):]: v.half() for k, v in src_model.state_dict().items()
          if k.startswith('backbone.')}
    sd['head.weight'] = torch.randn(710, 48).half()
    sd['head.bias'] = torch.randn(710).half()
    torch.save({'module': sd}, tmp_path / 'vit_k710_ft.pth')
    dst = str(tmp_path / 'k400.pth')
    idx = sorted(__import__('random').Random(0).sample(range(710), 400))
    (tmp_path / 'map.json').write_text(__import__('json').dumps(idx))
    _tool().main([str(tmp_path / 'vit_k710_ft.pth'), dst, '--label-map',
                  str(tmp_path / 'map.json')])
    out = torch.load(dst, weights_only=False)['state_dict']
    assert load_label_map(str(tmp_path / 'map.json')) == idx
    assert torch.equal(out['cls_head.fc_cls.weight'], sd['head.weight'][idx].float())
    assert torch.equal(out['cls_head.fc_cls.bias'], sd['head.bias'][idx].float())
    assert out['backbone.blocks.0.attn.qkv.weight'].dtype == torch.float32
    load_checkpoint(_recognizer(400), dst, strict=True)

    dst2 = str(tmp_path / 'headless.pth')
    _tool().main([str(tmp_path / 'vit_k710_ft.pth'), dst2, '--no-head'])
    assert not any(k.startswith('cls_head') for k in torch.load(dst2, weights_only=False)
                   ['state_dict'])
    with pytest.raises(ValueError, match='HF VideoMAE checkpoint has keys with no VideoMAE V2'):
        _tool().main([str(tmp_path / 'vit_k710_ft.pth'), dst2, '--src', 'hf'])
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        _tool().main([str(tmp_path / 'missing.pth'), dst2])
