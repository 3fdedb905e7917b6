"""``tools/analysis/get_flops.py``: mmengine's counter with attention counted, checked against the
closed-form multiply-add count of a ViT, and (e2e) the ViT-B 16x224 config against mmaction2's
published 180 GFLOPs per view."""
import os.path as osp

import pytest
from mmengine.config import Config

from tests.conftest import load_script

tool = load_script('tools/analysis/get_flops.py')
recipe = load_script('tests/e2e/test_recognition_recipe_e2e.py')
VIT_B = osp.join(osp.dirname(recipe.CONFIG),
                 'vit-base-p16_videomaev2-vit-g-dist-k710-pre_16x4x1_kinetics-400.py')


def vit_macs(frames, size, patch, tubelet, dims, depth, mlp_ratio, num_classes):
    """Multiply-adds of a ViT video classifier: patch embedding, per block qkv + proj + MLP
    (12 N D^2 at ratio 4) and attention (q k^T and attn v: 2 N^2 D), the two LayerNorms per
    block and the pooled ``fc_norm`` (mmengine counts 5 per normalised element), the head."""
    n = (frames // tubelet) * (size // patch) ** 2
    embed = n * dims * 3 * tubelet * patch * patch
    block = n * dims * dims * (4 + 2 * mlp_ratio) + 2 * n * n * dims
    norms = 5 * dims * (2 * depth * n + 1)
    return embed + depth * block + norms + dims * num_classes


def test_tiny_vit_count_is_closed_form_with_attention(tmp_path):
    cfg = recipe._cfg(str(tmp_path), str(tmp_path / 'work'))  # 64 wide, depth 2, patch 8, 4 cls
    res = tool.get_flops(cfg, [1, 3, 8, 32, 32])
    assert res['attention_modules'] >= 2  # the blocks' Attention (and the backbone's record)
    assert res['flops'] == vit_macs(8, 32, 8, 2, 64, 2, 2, 4)
    # the default 'auto' attention (SDPA on CPU) would not be counted: the count drops by 2N^2D
    n = 4 * 4 * 4
    assert res['flops'] - 2 * 2 * n * n * 64 > 0
    # params: every weight of the built model
    from mmaction.registry import MODELS
    cfg.model.backbone.init_cfg = None
    assert res['params'] == sum(p.numel() for p in MODELS.build(cfg.model).parameters())


def test_cli_prints_flops_and_params(tmp_path, capsys):
    cfg = recipe._cfg(str(tmp_path), str(tmp_path / 'work'))
    path = str(tmp_path / 'cfg.py')
    cfg.dump(path)
    res = tool.main([path, '--shape', '1', '3', '8', '32', '32', '--stage', 'backbone'])
    out = capsys.readouterr().out
    assert 'Flops:' in out and 'Params:' in out
    assert res['flops'] == vit_macs(8, 32, 8, 2, 64, 2, 2, 4) - 64 * 4  # no head


@pytest.mark.e2e
def test_vit_b_16x224_matches_paper_180_gflops():
    res = tool.get_flops(Config.fromfile(VIT_B), [1, 3, 16, 224, 224])
    assert res['flops'] == vit_macs(16, 224, 16, 2, 768, 12, 4, 400)
    gflops = res['flops'] / 1e9
    assert abs(gflops - 180) / 180 < 0.01, gflops  # mmaction2's ViT-B figure: 180G per view
    assert 86e6 < res['params'] < 87e6  # ViT-B/16 with a 400-class head
