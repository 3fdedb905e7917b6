"""Interop (issue 22 item 6): OpenGVLab hub layout in, HF VideoMAEForVideoClassification out."""
import pytest
import torch
from mmaction.registry import MODELS
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import load_checkpoint

import vmae2_mm  # noqa: F401
from tests.conftest import load_script
from vmae2_mm.checkpoint.foreign import install_foreign_checkpoint_hook
from vmae2_mm.checkpoint.videomaev2 import load_backbone_checkpoint

ARCH = dict(embed_dims=64, depth=2, num_heads=2, mlp_hidden_dims=128, patch_size=8)


def _recognizer(seed, num_classes=5):
    init_default_scope('mmaction')
    torch.manual_seed(seed)
    model = MODELS.build(dict(
        type='Recognizer3D',
        backbone=dict(type='VideoMAEv2ViT', arch=ARCH, img_size=32, num_frames=4,
                      pos_embed_grid_from=None),
        cls_head=dict(type='VideoMAEv2Head', num_classes=num_classes, in_channels=64,
                      init_scale=1.0),
        data_preprocessor=dict(type='ActionDataPreprocessor', format_shape='NCTHW'))).eval()
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():  # non-trivial norms and biases
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return model


def _logits(model, x):
    with torch.no_grad():
        return model.cls_head(model.extract_feat(x[:, None], stage='backbone')[0])


def test_opengvlab_hub_layout_model_nested_safetensors(tmp_path):
    """Remote-code hub repos nest the official keys under ``model.`` in model.safetensors."""
    from safetensors.torch import save_file
    src = _recognizer(0)
    sd = {}
    for k, v in src.state_dict().items():
        if k.startswith('backbone.'):
            sd['model.' + k[len('backbone.'):]] = v.contiguous()
        elif k.startswith('cls_head.fc_cls.'):
            sd['model.head.' + k.rsplit('.', 1)[1]] = v.contiguous()
    repo = tmp_path / 'OpenGVLab-VideoMAEv2-tiny'
    repo.mkdir()
    save_file(sd, str(repo / 'model.safetensors'))
    (repo / 'config.json').write_text('{"model_type": "VideoMAEv2", "auto_map": {}}')
    dst = _recognizer(1)
    install_foreign_checkpoint_hook(dst, strict=True, source=str(repo))
    load_checkpoint(dst, str(repo), map_location='cpu')
    x = torch.randn(2, 3, 4, 32, 32)
    assert torch.equal(_logits(dst, x), _logits(src, x))
    bb = _recognizer(2).backbone
    report = load_backbone_checkpoint(bb, str(repo))
    assert report['format'] == 'official' and not report['missing']


def test_export_hf_classification_logits(tmp_path):
    transformers = pytest.importorskip('transformers')
    export = load_script('tools/export_hf.py')
    ours = _recognizer(3)
    export.export_hf(ours, str(tmp_path / 'hf'))
    hf = transformers.VideoMAEForVideoClassification.from_pretrained(
        str(tmp_path / 'hf'), attn_implementation='eager').eval()
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        ref = hf(pixel_values=x.permute(0, 2, 1, 3, 4)).logits
    got = _logits(ours, x)
    assert got.abs().max() > 0.5
    # HF builds fc_norm with LayerNorm's default eps 1e-5 whatever the config says (ours: 1e-6,
    # official): as loaded, logits differ by that eps alone ...
    assert (got - ref).abs().max().item() <= 1e-4
    # ... and with the official eps they are equal within fp32 noise
    hf.fc_norm.eps = 1e-6
    with torch.no_grad():
        ref = hf(pixel_values=x.permute(0, 2, 1, 3, 4)).logits
    assert (got - ref).abs().max().item() <= 1e-5


def test_export_hf_refuses_a_resized_position_table():
    export = load_script('tools/export_hf.py')
    init_default_scope('mmaction')
    bb = MODELS.build(dict(type='VideoMAEv2ViT', arch=ARCH, img_size=32, num_frames=4,
                           pos_embed_grid_from=(16, 224)))
    with pytest.raises(ValueError, match='native sinusoid'):
        export.hf_config_kwargs(bb, 5)


@pytest.mark.parametrize('features', [False, True], ids=['recognizer', 'feature-extractor'])
def test_onnx_export_onnxruntime_parity_dynamic_batch(tmp_path, features):
    ort = pytest.importorskip('onnxruntime')
    export = load_script('tools/export_onnx.py')
    recipe = load_script('tests/e2e/test_recognition_recipe_e2e.py')
    cfg = recipe._cfg(str(tmp_path), str(tmp_path / 'work'))
    cfg_path = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_path)
    src = export.build_model(cfg_path)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in src.parameters():
            if p.dim() == 1:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
    ckpt = str(tmp_path / 'model.pth')
    torch.save({'state_dict': src.state_dict()}, ckpt)
    out = str(tmp_path / 'model.onnx')
    export.main([cfg_path, ckpt, out] + (['--features'] if features else []))
    model = export.build_model(cfg_path, ckpt)
    ref_module = (export.BackboneFeatures(model.backbone) if features
                  else export.RecognizerLogits(model))
    sess = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
    for batch in (1, 3):  # traced with batch 1
        x = torch.randn(batch, 3, recipe.FRAMES, recipe.SIZE, recipe.SIZE, generator=g)
        with torch.no_grad():
            ref = ref_module(x)
        got = torch.from_numpy(sess.run(None, {'video': x.numpy()})[0])
        assert got.shape == ref.shape
        assert ref.abs().max() > 0.1
        assert (got - ref).abs().max().item() <= 1e-4
