"""Classify one video with a VideoMAE V2 recognizer and print the top-k labels.

Usage::

    python tools/demo_recognizer.py CONFIG CHECKPOINT VIDEO [--label-map k400|FILE]
        [--top-k 5] [--device cpu] [--head-map k710to400]

Uses mmaction2's ``init_recognizer`` / ``inference_recognizer`` with the config's
``test_pipeline`` (e.g. 5 clips x 3 crops, softmax per view, averaged). CHECKPOINT may be a
vmae2_mm / mmengine checkpoint (also the output of ``tools/convert_checkpoint.py``) or any layout
the vmae2_mm loader reads (official, HF transformers, mmaction2); ``--head-map`` selects head
rows of such a raw checkpoint (a K710 head for K400 classes). ``--label-map`` is a class-name
file, one per line in class-index order, or one of k400/k600/k700/k710.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402

import vmae2_mm  # noqa: E402,F401  (registration, stack fixes)
from vmae2_mm.checkpoint.videomaev2 import (load_recognizer_checkpoint,  # noqa: E402
                                       read_checkpoint)
from vmae2_mm.checkpoint.label_maps import read_class_list  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='recognition config file')
    parser.add_argument('checkpoint', help='checkpoint file (any supported layout)')
    parser.add_argument('video', help='video file')
    parser.add_argument('--label-map', help='class names: file (one per line) or k400/k600/...')
    parser.add_argument('--top-k', type=int, default=5, help='labels to print')
    parser.add_argument('--device', default='cpu', help='device, e.g. cpu or cuda:0')
    parser.add_argument('--head-map', help='head row map for raw checkpoints (k710to400, ...)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='config overrides key=value (e.g. model.cls_head.num_classes=400)')
    return parser.parse_args(argv)


def _is_mmengine_recognizer(path: str) -> bool:
    ckpt = read_checkpoint(path)
    sd = ckpt.get('state_dict') if isinstance(ckpt, dict) else None
    return isinstance(sd, dict) and any(k.startswith('backbone.') for k in sd) and \
        not any('patch_embed.projection' in k for k in sd)


def classify(config, checkpoint: str, video: str, top_k: int = 5, device: str = 'cpu',
             head_map=None, cfg_options=None):
    """Return ``[(class index, probability), ...]`` of the ``top_k`` classes for ``video``."""
    from mmaction.apis import inference_recognizer, init_recognizer
    from mmengine.config import Config
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    # weights come from CHECKPOINT: never read the config's pre-training init files
    cfg.model.backbone.init_cfg = None
    if not osp.isfile(video):
        raise FileNotFoundError(f'video {video!r} not found')
    if head_map is None and _is_mmengine_recognizer(checkpoint):
        model = init_recognizer(cfg, checkpoint, device=device)
    else:
        model = init_recognizer(cfg, None, device='cpu')
        load_recognizer_checkpoint(model, checkpoint, label_map=head_map, strict=False)
        model.to(device)
    result = inference_recognizer(model, video)
    scores = result.pred_score.detach().float().cpu()
    k = min(top_k, scores.numel())
    values, indices = scores.topk(k)
    return [(int(i), float(v)) for i, v in zip(indices, values)]


def main(argv=None):
    args = parse_args(argv)
    names = read_class_list(args.label_map) if args.label_map else None
    top = classify(args.config, args.checkpoint, args.video, args.top_k, args.device,
                   args.head_map, args.cfg_options)
    for rank, (idx, prob) in enumerate(top, 1):
        name = names[idx] if names and idx < len(names) else str(idx)
        print(f'{rank}. {name}: {prob:.4f}')
    return top


if __name__ == '__main__':
    main()
