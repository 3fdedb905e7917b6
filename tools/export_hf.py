"""Export a vmae2_mm recognizer to a Hugging Face ``VideoMAEForVideoClassification`` folder.

Usage::

    python tools/export_hf.py CONFIG CHECKPOINT OUT_DIR [--cfg-options k=v ...]

OUT_DIR gets ``config.json`` + ``model.safetensors`` (``save_pretrained``), which
``VideoMAEForVideoClassification.from_pretrained(OUT_DIR)`` loads; its logits equal ours (fp32)
for inputs ``[B, T, C, H, W]`` (ours: ``[B, C, T, H, W]``). HF can represent the VideoMAE V2
archs whose position table is the native sinusoid of the model's grid
(``pos_embed_grid_from=None``), with q/v biases and without layer scale; anything else is refused
with the reason. The checkpoint loads strictly into the config's model first.
"""
import argparse
import os.path as osp
import sys
from collections import OrderedDict
from typing import Dict, Optional

import torch
from torch import Tensor, nn

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from vmae2_mm.checkpoint.pretrain import official_to_hf_pretrain  # noqa: E402
from vmae2_mm.utils.pos_embed import sinusoid_table  # noqa: E402
from vmae2_mm.utils.config_options import check_cfg_options  # noqa: E402


def hf_config_kwargs(backbone: nn.Module, num_labels: int) -> dict:
    """``VideoMAEConfig`` arguments of a ``VideoMAEv2ViT``; raises when HF cannot represent it."""
    problems = []
    n = backbone.pos_embed.shape[1]
    if not torch.allclose(backbone.pos_embed.float(), sinusoid_table(n, backbone.embed_dims),
                          atol=1e-5, rtol=0):
        problems.append('the position table is not the native sinusoid of the model grid '
                        '(HF builds that one only): set pos_embed_grid_from=None')
    own = backbone.state_dict()
    if any('gamma' in k for k in own):
        problems.append('layer scale (init_values > 0) has no HF VideoMAE equivalent')
    if 'blocks.0.attn.q_bias' not in own:
        problems.append('HF VideoMAE (qkv_bias=True) needs q/v biases')
    if problems:
        raise ValueError('cannot export to HF VideoMAE: ' + '; '.join(problems))
    proj = backbone.patch_embed.proj
    tubelet, patch = proj.kernel_size[0], proj.kernel_size[-1]
    t, h, _ = backbone.grid
    return dict(image_size=h * patch, patch_size=patch, num_frames=t * tubelet,
                tubelet_size=tubelet, num_channels=proj.in_channels,
                hidden_size=backbone.embed_dims, num_hidden_layers=len(backbone.blocks),
                num_attention_heads=backbone.blocks[0].attn.num_heads,
                intermediate_size=backbone.blocks[0].mlp.fc1.out_features, qkv_bias=True,
                layer_norm_eps=1e-6, use_mean_pooling=bool(backbone.use_mean_pooling),
                num_labels=num_labels, hidden_act='gelu')


def to_hf_state_dict(model: nn.Module) -> Dict[str, Tensor]:
    """Recognizer state dict -> ``VideoMAEForVideoClassification`` keys (q/k/v split)."""
    enc, out = OrderedDict(), OrderedDict()
    for k, v in model.state_dict().items():
        if k.startswith('backbone.fc_norm.'):
            out['fc_norm.' + k.rsplit('.', 1)[1]] = v
        elif k.startswith('backbone.'):
            enc['encoder.' + k[len('backbone.'):]] = v
        elif k.startswith('cls_head.fc_cls.'):
            out['classifier.' + k.rsplit('.', 1)[1]] = v
    hf = official_to_hf_pretrain(enc)
    hf.update(out)
    return OrderedDict((k, v.detach().float().contiguous()) for k, v in hf.items())


def export_hf(model: nn.Module, out_dir: str, id2label: Optional[Dict[int, str]] = None):
    """Write ``model`` (recognizer with a ``VideoMAEv2ViT`` backbone) as an HF folder.

    Returns:
        transformers.VideoMAEForVideoClassification: the exported model (eval mode).
    """
    import transformers
    num_labels = model.cls_head.fc_cls.weight.shape[0]
    cfg = transformers.VideoMAEConfig(**hf_config_kwargs(model.backbone, num_labels))
    if id2label:
        cfg.id2label = {int(i): str(n) for i, n in id2label.items()}
        cfg.label2id = {n: i for i, n in cfg.id2label.items()}
    hf = transformers.VideoMAEForVideoClassification(cfg).eval()
    # HF builds fc_norm with nn.LayerNorm's default eps, ignoring layer_norm_eps
    missing, unexpected = hf.load_state_dict(to_hf_state_dict(model), strict=False)
    missing = [k for k in missing if not k.endswith('position_embeddings')]
    if missing or unexpected:
        raise ValueError(f'HF export: missing {missing}, unexpected {unexpected}')
    hf.save_pretrained(out_dir, safe_serialization=True)
    return hf


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('out_dir')
    from mmengine.config import Config, DictAction
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)

    import vmae2_mm  # noqa: F401
    from mmaction.registry import MODELS
    from mmengine.registry import init_default_scope
    from mmengine.runner.checkpoint import load_checkpoint

    from vmae2_mm.checkpoint.foreign import install_foreign_checkpoint_hook
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        check_cfg_options(cfg, args.cfg_options)  # a typo'd key is an error, not a new key
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    model_cfg = cfg.model.copy()
    model_cfg.backbone = dict(model_cfg.backbone, init_cfg=None)
    model = MODELS.build(model_cfg).eval()
    install_foreign_checkpoint_hook(model, strict=True, source=args.checkpoint)
    load_checkpoint(model, args.checkpoint, map_location='cpu')
    export_hf(model, args.out_dir)
    print(f'{args.out_dir}: HF VideoMAEForVideoClassification')


if __name__ == '__main__':
    main()
