"""Convert a VideoMAE (V2) checkpoint into a vmae2_mm recognizer checkpoint.

Usage::

    python tools/convert_checkpoint.py SRC DST [--src auto|official|hf|mmaction2]
        [--label-map k710to400|k710to600|k710to700|MAP.json] [--no-head] [--keep-norm]
        [--check-config CONFIG]

SRC is an official OpenGVLab/VideoMAEv2 file (pre-train, fine-tuned or distilled; raw or under
``model``/``module``), a Hugging Face ``transformers`` VideoMAE checkpoint (``.bin``,
``.safetensors`` or a ``save_pretrained`` folder) or an mmaction2 VideoMAE / VideoMAE V2
checkpoint; the layout is auto-detected unless ``--src`` forces it. DST is an mmengine-style
file ``{'state_dict': {'backbone.*', 'cls_head.fc_cls.*'}, 'meta': {...}}`` that
``tools/test.py CONFIG DST`` and ``load_from=DST`` load directly. ``--label-map`` selects head
rows (a K710 head becomes a K400/K600/K700 head, as official fine-tuning does).

Keys that are no ``VideoMAEv2ViT`` parameter (e.g. a k bias, an unknown module) are listed and
left out of DST, never passed through. ``--check-config CONFIG`` builds the config's model and
compares DST with it strictly (keys, shapes, likely cause) before writing anything.
"""
import argparse
import os
import os.path as osp
import re
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from vmae2_mm.checkpoint.io import read_checkpoint, unwrap_state_dict  # noqa: E402
from vmae2_mm.checkpoint.videomaev2 import (FORMATS, canonicalize,  # noqa: E402
                                            to_recognizer_state_dict)

#: ``VideoMAEv2ViT`` parameter names (any arch); other backbone keys are reported, not written.
BACKBONE_KEY = re.compile(
    r'^backbone\.(patch_embed\.proj\.(weight|bias)|pos_embed|(fc_norm|norm)\.(weight|bias)|'
    r'blocks\.\d+\.((norm1|norm2|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias)|'
    r'attn\.qkv\.weight|attn\.q_bias|attn\.v_bias))$')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='source checkpoint (file or HF folder)')
    parser.add_argument('dst', help='output .pth')
    parser.add_argument('--src', dest='fmt', default='auto', choices=('auto', ) + FORMATS,
                        help='force the source layout (default: auto-detect)')
    parser.add_argument('--label-map', help='head row map: k710to400, k710to600, k710to700 or '
                        'a JSON list file')
    parser.add_argument('--no-head', action='store_true', help='drop the classifier')
    parser.add_argument('--keep-norm', action='store_true',
                        help='keep the final encoder norm (for use_mean_pooling=False models)')
    parser.add_argument('--check-config', metavar='CONFIG',
                        help='fail unless the output loads strictly into this config\'s model')
    return parser.parse_args(argv)


def check_against_config(state_dict: dict, config: str, source: str) -> None:
    """Raise ``CheckpointMismatchError`` unless ``state_dict`` fits ``config``'s model."""
    import vmae2_mm  # noqa: F401  (registration)
    from mmaction.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from vmae2_mm.checkpoint.foreign import check_state_dict
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    model_cfg = cfg.model.copy()
    if isinstance(model_cfg.get('backbone'), dict):
        model_cfg.backbone = dict(model_cfg.backbone, init_cfg=None)  # no pretrained download
    model = MODELS.build(model_cfg)
    check_state_dict(model, dict(state_dict), strict=True,
                     source=f'{source} (checked against {osp.basename(config)})')


def convert(src: str, dst: str, fmt: str = 'auto', label_map=None, no_head: bool = False,
            keep_norm: bool = False, check_config: str = None) -> dict:
    """Convert ``src`` to ``dst``; returns the written checkpoint dict.

    Raises:
        CheckpointMismatchError: ``check_config`` given and the output does not fit its model.
    """
    c = canonicalize(unwrap_state_dict(read_checkpoint(src)), fmt)
    if no_head:
        if label_map:
            raise ValueError('--label-map and --no-head are exclusive')
        c.head.clear()
    sd = to_recognizer_state_dict(c, label_map, use_mean_pooling=not keep_norm)
    unexpected = [k for k in sd if k.startswith('backbone.') and not BACKBONE_KEY.match(k)]
    for k in unexpected:
        del sd[k]
    if unexpected:
        print(f'{src}: {len(unexpected)} keys are no VideoMAEv2ViT parameter and are NOT written: '
              + ', '.join(unexpected[:20]) + (' ...' if len(unexpected) > 20 else ''),
              file=sys.stderr)
    if check_config is not None:
        check_against_config(sd, check_config, dst)
    meta = dict(source=osp.basename(osp.normpath(src)), source_format=c.fmt,
                label_map=str(label_map) if label_map else None, converted_by='vmae2_mm',
                num_classes=int(sd['cls_head.fc_cls.weight'].shape[0])
                if 'cls_head.fc_cls.weight' in sd else None,
                unexpected_keys=unexpected)
    ckpt = dict(state_dict=sd, meta=meta)
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(ckpt, dst)
    return ckpt


def main(argv=None):
    args = parse_args(argv)
    ckpt = convert(args.src, args.dst, args.fmt, args.label_map, args.no_head, args.keep_norm,
                   args.check_config)
    meta = ckpt['meta']
    print(f"{args.dst}: {len(ckpt['state_dict'])} tensors from a {meta['source_format']} "
          f"checkpoint; classes: {meta['num_classes']}")


if __name__ == '__main__':
    main()
