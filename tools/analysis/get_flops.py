"""Parameters and FLOPs of a config's model for one input clip (one view).

    python tools/analysis/get_flops.py CONFIG [--shape 1 3 16 224 224] [--stage head]
        [--show-table] [--cfg-options ...]

Named and behaving like mmaction2's ``tools/analysis_tools/get_flops.py``: the model is built
from the config and counted by mmengine's ``get_model_complexity_info`` (a jit-trace counter
whose "FLOPs" are multiply-adds, the unit of the paper's and mmaction2's figures). ``--shape``
is one sample without the batch dimension: ``C T H W`` for a 3D recognizer (a leading
``num_crops`` is allowed, ``1 3 16 224 224``), as mmaction2's tool takes it.

Why the attention backend is switched: mmengine has no counter handle for
``aten::scaled_dot_product_attention`` (it would be skipped, losing the ``2 N^2 D`` multiply-adds
per block, a quarter of ViT-B's cost at 16x224), so every module with an ``attn_impl`` is set to
``'manual'`` whose ``q @ k^T`` and ``attn @ v`` matmuls mmengine counts. The numbers are the
same model's; only the counted code path changes.
"""
import argparse

import torch
from torch import nn

import vmae2_mm  # noqa: F401  (compat fixes + registration before any config is built)
from mmengine.analysis import get_model_complexity_info
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from vmae2_mm.utils.config_options import check_cfg_options


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Count a model\'s parameters and FLOPs')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--shape', type=int, nargs='+', default=[1, 3, 16, 224, 224],
                        help='input shape of one sample, without the batch dimension')
    parser.add_argument('--stage', choices=['backbone', 'neck', 'head'], default='head',
                        help='count up to this stage of a recognizer (default: the whole '
                        'model, backbone + head)')
    parser.add_argument('--show-table', action='store_true',
                        help='also print mmengine\'s per-module table')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    return parser.parse_args(argv)


class _StageForward(nn.Module):
    """``inputs [1, *shape] -> model._forward(inputs, stage)``: a tensor-only forward the jit
    tracer can follow (a recognizer's ``forward`` also takes data samples and a mode)."""

    def __init__(self, model: nn.Module, stage: str) -> None:
        super().__init__()
        self.model = model
        self.stage = stage

    def forward(self, inputs: torch.Tensor):
        return self.model._forward(inputs, stage=self.stage)


def countable_attention(model: nn.Module) -> int:
    """Set every ``attn_impl`` in ``model`` to ``'manual'``; returns how many were changed."""
    changed = 0
    for module in model.modules():
        if getattr(module, 'attn_impl', 'manual') != 'manual':
            module.attn_impl = 'manual'
            changed += 1
    return changed


def get_flops(cfg: Config, shape, stage: str = 'head', show_table: bool = False) -> dict:
    """Build ``cfg.model`` (no pretrained weights) and count it on one ``[1, *shape]`` input.

    Returns:
        dict: ``flops`` (multiply-adds, int), ``params`` (int), their ``*_str`` forms,
        ``attention_modules`` (how many attention backends were switched to the counted one)
        and ``table`` (mmengine's per-module table, '' unless ``show_table``).
    """
    from mmaction.registry import MODELS
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    model_cfg = cfg.model.copy()
    if 'backbone' in model_cfg:
        model_cfg.backbone = dict(model_cfg.backbone, init_cfg=None)  # no weights to read
    model = MODELS.build(model_cfg)
    if not hasattr(model, '_forward'):
        raise TypeError(f'{type(model).__name__} has no tensor-only _forward; get_flops counts '
                        'recognizers (and other mmaction2 BaseModels with one)')
    model.eval()
    switched = countable_attention(model)
    with torch.no_grad():
        info = get_model_complexity_info(_StageForward(model, stage), input_shape=tuple(shape),
                                         show_table=show_table, show_arch=False)
    return dict(flops=int(info['flops']), flops_str=info['flops_str'],
                params=int(info['params']), params_str=info['params_str'],
                attention_modules=switched, table=info['out_table'])


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        check_cfg_options(cfg, args.cfg_options)  # a typo'd key is an error, not a new key
        cfg.merge_from_dict(args.cfg_options)
    res = get_flops(cfg, args.shape, args.stage, args.show_table)
    split = '=' * 30
    print(f'{split}\nInput shape: {tuple(args.shape)}\n'
          f'Flops: {res["flops_str"]} ({res["flops"] / 1e9:.2f} GFLOPs, multiply-adds)\n'
          f'Params: {res["params_str"]} ({res["params"] / 1e6:.2f} M)\n{split}')
    if res['table']:
        print(res['table'])
    return res


if __name__ == '__main__':
    main()
