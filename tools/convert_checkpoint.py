"""Convert a VideoMAE (V2) checkpoint into a vmae2_mm recognizer checkpoint.

Usage::

    python tools/convert_checkpoint.py SRC DST [--src auto|official|hf|mmaction2]
        [--label-map k710to400|k710to600|k710to700|MAP.json] [--no-head] [--keep-norm]

SRC is an official OpenGVLab/VideoMAEv2 file (pre-train, fine-tuned or distilled; raw or under
``model``/``module``), a Hugging Face ``transformers`` VideoMAE checkpoint (``.bin``,
``.safetensors`` or a ``save_pretrained`` folder) or an mmaction2 VideoMAE / VideoMAE V2
checkpoint; the layout is auto-detected unless ``--src`` forces it. DST is an mmengine-style
file ``{'state_dict': {'backbone.*', 'cls_head.fc_cls.*'}, 'meta': {...}}`` that
``tools/test.py CONFIG DST`` and ``load_from=DST`` load directly. ``--label-map`` selects head
rows (a K710 head becomes a K400/K600/K700 head, as official fine-tuning does).
"""
import argparse
import os
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from vmae2_mm.checkpoint.videomaev2 import (FORMATS, canonicalize, read_checkpoint,  # noqa: E402
                                       to_recognizer_state_dict, unwrap_state_dict)


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
    return parser.parse_args(argv)


def convert(src: str, dst: str, fmt: str = 'auto', label_map=None, no_head: bool = False,
            keep_norm: bool = False) -> dict:
    """Convert ``src`` to ``dst``; returns the written checkpoint dict."""
    c = canonicalize(unwrap_state_dict(read_checkpoint(src)), fmt)
    if no_head:
        if label_map:
            raise ValueError('--label-map and --no-head are exclusive')
        c.head.clear()
    sd = to_recognizer_state_dict(c, label_map, use_mean_pooling=not keep_norm)
    meta = dict(source=osp.basename(osp.normpath(src)), source_format=c.fmt,
                label_map=str(label_map) if label_map else None, converted_by='vmae2_mm',
                num_classes=int(sd['cls_head.fc_cls.weight'].shape[0])
                if 'cls_head.fc_cls.weight' in sd else None)
    ckpt = dict(state_dict=sd, meta=meta)
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(ckpt, dst)
    return ckpt


def main(argv=None):
    args = parse_args(argv)
    ckpt = convert(args.src, args.dst, args.fmt, args.label_map, args.no_head, args.keep_norm)
    meta = ckpt['meta']
    print(f"{args.dst}: {len(ckpt['state_dict'])} tensors from a {meta['source_format']} "
          f"checkpoint; classes: {meta['num_classes']}")


if __name__ == '__main__':
    main()
