"""Export a recognizer (logits) or its feature extractor (pooled backbone features) to ONNX.

Usage::

    python tools/export_onnx.py CONFIG CHECKPOINT OUT.onnx [--features] [--batch 1]
        [--cfg-options k=v ...]

Input ``video`` [B, 3, T, H, W] (normalised as the config's data preprocessor does; T, H, W of
the config), output ``logits`` [B, K] or ``features`` [B, C]; the batch axis is dynamic. The
backbone is rebuilt with ``attn_impl='manual'`` (explicit softmax attention, which every ONNX
opset represents; the fused kernels are not exportable). The checkpoint loads strictly.
"""
import argparse
import os.path as osp
import sys

import torch
from torch import Tensor, nn

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


class RecognizerLogits(nn.Module):
    """``[B, 3, T, H, W]`` -> logits ``[B, K]`` (one view; what ``cls_head`` scores)."""

    def __init__(self, recognizer: nn.Module) -> None:
        super().__init__()
        self.backbone, self.cls_head = recognizer.backbone, recognizer.cls_head

    def forward(self, video: Tensor) -> Tensor:
        return self.cls_head(self.backbone(video))


class BackboneFeatures(nn.Module):
    """``[B, 3, T, H, W]`` -> pooled features ``[B, C]`` (as ``extract_features``)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, video: Tensor) -> Tensor:
        return self.backbone(video)


def export_onnx(module: nn.Module, example: Tensor, path: str, output_name: str,
                opset: int = 17) -> None:
    """Trace ``module`` on ``example`` and write ``path`` with a dynamic batch axis."""
    module = module.eval()
    with torch.no_grad():
        torch.onnx.export(module, (example, ), path, input_names=['video'],
                          output_names=[output_name], opset_version=opset,
                          dynamic_axes={'video': {0: 'batch'}, output_name: {0: 'batch'}},
                          dynamo=False)


def build_model(config: str, checkpoint: str = None, cfg_options=None) -> nn.Module:
    """The config's recognizer with ``attn_impl='manual'``, loaded strictly from ``checkpoint``."""
    import vmae2_mm  # noqa: F401
    from mmaction.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner.checkpoint import load_checkpoint

    from vmae2_mm.checkpoint.foreign import install_foreign_checkpoint_hook
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    model_cfg = cfg.model.copy()
    model_cfg.backbone = dict(model_cfg.backbone, init_cfg=None, attn_impl='manual')
    model = MODELS.build(model_cfg).eval()
    if checkpoint:
        install_foreign_checkpoint_hook(model, strict=True, source=checkpoint)
        load_checkpoint(model, checkpoint, map_location='cpu')
    return model


def main(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('out')
    parser.add_argument('--features', action='store_true',
                        help='export the backbone features instead of the logits')
    parser.add_argument('--batch', type=int, default=1, help='example batch for tracing')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    model = build_model(args.config, args.checkpoint, args.cfg_options)
    bb = model.backbone
    t, h, w = bb.grid
    k = bb.patch_embed.proj.kernel_size
    example = torch.randn(args.batch, bb.patch_embed.proj.in_channels, t * k[0], h * k[1],
                          w * k[2])
    if args.features:
        export_onnx(BackboneFeatures(bb), example, args.out, 'features')
    else:
        export_onnx(RecognizerLogits(model), example, args.out, 'logits')
    print(f'{args.out}: {"features" if args.features else "logits"} of {args.config}')


if __name__ == '__main__':
    main()
