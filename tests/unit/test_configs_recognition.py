"""Every recognition config builds, trains one epoch (2 iterations) and runs its multi-view test
on tiny generated clips: the real pipelines, datasets, optimiser constructor, schedulers and
evaluator of each recipe, with the backbone shrunk to 2 blocks of width 48."""
import glob
import os
import os.path as osp

import cv2
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from vmae2_mm.testing.recognition import generate_motion_dataset

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# distributed/ holds FSDP/DeepSpeed variants of these recipes for FlexibleRunner; they are
# built and run by tests/unit/engine/test_strategy_configs.py and tests/e2e/test_distributed_e2e.py
CONFIGS = sorted(c for c in glob.glob(osp.join(ROOT, 'configs', 'recognition', '**', '*.py'),
                                      recursive=True)
                 if osp.join('videomaev2', 'distributed') not in c)
TINY = dict(embed_dims=48, depth=2, num_heads=3, mlp_ratio=2)
FRAMES = 4


@pytest.fixture(scope='module')
def clips(tmp_path_factory):
    out = tmp_path_factory.mktemp('clips')
    generate_motion_dataset(str(out), num_classes=4, train_per_class=1, val_per_class=1,
                            num_frames=20, size=40)
    # two test videos are enough to run a multi-view batch
    lines = open(osp.join(out, 'val.txt')).read().splitlines()[:2]
    with open(osp.join(out, 'test.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    _write_frame_folders(str(out))
    return str(out)


def _write_frame_folders(root: str) -> None:
    """The clips again as SSv1-style JPEG folders (``frames/<name>/00001.jpg``, ...) with
    RawframeDataset lists ``frames_{split}.txt`` (``<name> total_frames label``)."""
    for split in ('train', 'val', 'test'):
        lines = []
        for rel, label in (ln.split() for ln in open(osp.join(root, f'{split}.txt'))):
            name = osp.splitext(osp.basename(rel))[0]
            folder = osp.join(root, 'frames', name)
            os.makedirs(folder, exist_ok=True)
            cap = cv2.VideoCapture(osp.join(root, rel))
            n = 0
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                n += 1
                cv2.imwrite(osp.join(folder, f'{n:05}.jpg'), frame)
            cap.release()
            lines.append(f'{name} {n} {label}')
        with open(osp.join(root, f'frames_{split}.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')


def _patch_size(arch) -> int:
    if arch == 'giant':
        return 14
    return arch.get('patch_size', 16) if isinstance(arch, dict) else 16


def _shrink_pipeline(pipeline, size):
    for t in pipeline:
        kind = t['type']
        if kind == 'SampleFrames':
            t.update(clip_len=FRAMES, frame_interval=1)
        elif kind == 'UniformSample':
            t.update(clip_len=FRAMES)
        elif kind == 'Resize':
            t['scale'] = (-1, size) if t['scale'][0] == -1 else (size, size)
        elif kind in ('CenterCrop', 'ThreeCrop', 'TenCrop'):
            t['crop_size'] = size


def _tiny(cfg: Config, clips: str, work_dir: str) -> int:
    patch = _patch_size(cfg.model.backbone.arch)
    size = 2 * patch
    cfg.model.backbone.update(arch=dict(TINY, patch_size=patch), img_size=size,
                              num_frames=FRAMES, init_cfg=None)
    cfg.model.cls_head.in_channels = TINY['embed_dims']
    cfg.load_from = None
    for split, ann in (('train', 'train.txt'), ('val', 'val.txt'), ('test', 'test.txt')):
        loader = cfg[f'{split}_dataloader']
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        if loader.dataset.type == 'RawframeDataset':
            loader.dataset.update(ann_file=osp.join(clips, f'frames_{ann}'),
                                  data_prefix=dict(img=osp.join(clips, 'frames')))
        else:
            loader.dataset.update(ann_file=osp.join(clips, ann), data_prefix=dict(video=clips))
        _shrink_pipeline(loader.dataset.pipeline, size)
    cfg.train_cfg.update(max_epochs=1, val_begin=10)
    cfg.work_dir = work_dir
    cfg.log_level = 'WARNING'
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    return size


@pytest.mark.parametrize('config', CONFIGS, ids=[osp.basename(c)[:-3] for c in CONFIGS])
def test_config_trains_and_tests_on_tiny_clips(config, clips, tmp_path):
    cfg = Config.fromfile(config)
    num_classes = cfg.model.cls_head.num_classes
    test_pipeline = cfg.test_dataloader.dataset.pipeline
    clips_per_video = next(t.get('num_clips', 1) for t in test_pipeline
                           if t['type'] in ('SampleFrames', 'UniformSample'))
    crops = 3 if any(t['type'] == 'ThreeCrop' for t in test_pipeline) else 1
    views = clips_per_video * crops
    size = _tiny(cfg, clips, str(tmp_path))

    runner = Runner.from_cfg(cfg)
    runner.train()
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert torch.isfinite(torch.as_tensor(loss))
    assert runner.iter == 2 if cfg.train_dataloader.dataset.type != 'RepeatAugDataset' \
        else runner.iter >= 2

    sample = runner.test_dataloader.dataset[0]
    assert tuple(sample['inputs'].shape) == (views, 3, FRAMES, size, size)
    metrics = runner.test()
    assert {'acc/top1', 'acc/top5', 'acc/mean1'} <= set(metrics)
    assert 0 <= metrics['acc/top1'] <= 1
    assert runner.model.cls_head.fc_cls.out_features == num_classes
