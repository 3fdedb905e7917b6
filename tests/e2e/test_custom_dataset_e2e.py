"""Learning check of the custom-dataset template, used as docs/custom_dataset.md says.

A generated dataset the template was never tuned on (3 motion directions, seed 2026: other
tests use 4 classes and seeds 0 / 123) is written as a user's video folder with list files;
the template is copied and only its top block is edited (paths, classes, clip sampling, size,
epochs, batch and accumulation, lr). The start checkpoint is a tiny self-made file in the
released fine-tuned layout (``model``-nested ``blocks.*`` / ``fc_norm`` / 710-row ``head``), so
the template's load-backbone-and-replace-the-head path runs as with the real ViT-B; only the
arch is shrunk outside the block (a CPU cannot train ViT-B). Training goes through the Runner
with gradient accumulation (2 micro-batches per step) and the multi-view test must beat chance
(1/3) by a wide margin.
"""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from torch import nn

from tests.conftest import load_script
from vmae2_mm.models.backbones import VideoMAEv2ViT
from vmae2_mm.testing.recognition import generate_motion_dataset, render_motion_clip

template = load_script('tests/unit/test_custom_dataset_template.py')
NUM_CLASSES, SIZE, FRAMES, INTERVAL, EPOCHS = 3, 32, 8, 2, 10
#: chance is 1/3
TOP1_BAR = 0.75
MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1, 1)


def pretrain_tiny_checkpoint(path: str, steps: int = 300, classes: int = 4) -> float:
    """Train the tiny backbone + a linear head on clean generated clips of ``classes``
    directions (seed 7, rendered in memory, 16 per step, AdamW 1e-3) and save both in the
    released fine-tuned layout. Returns the accuracy on the last 10 training batches."""
    torch.manual_seed(7)
    rng = np.random.default_rng(7)
    backbone = VideoMAEv2ViT(arch=template.TINY_ARCH, img_size=SIZE, num_frames=FRAMES)
    backbone.init_weights()
    head = nn.Linear(template.TINY_ARCH['embed_dims'], classes)
    params = list(backbone.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.05)
    hits = []
    for step in range(steps):
        labels = rng.integers(0, classes, 16)
        # [B, T, H, W, 3] uint8 -> [B, 3, T, H, W] normalised as the data preprocessor does
        clips = np.stack([render_motion_clip(rng, int(k), classes, FRAMES * INTERVAL, SIZE,
                                             speed=2.0)[::INTERVAL] for k in labels])
        x = (torch.from_numpy(clips).permute(0, 4, 1, 2, 3).float() - MEAN) / STD
        logits = head(backbone(x))
        loss = nn.functional.cross_entropy(logits, torch.from_numpy(labels))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step >= steps - 10:
            hits.append((logits.argmax(1).numpy() == labels).mean())
    sd = {k: v.detach().clone() for k, v in backbone.state_dict().items() if k != 'pos_embed'}
    sd.update({'head.weight': head.weight.detach().clone(),
               'head.bias': head.bias.detach().clone()})
    torch.save({'model': sd}, path)
    return float(np.mean(hits))


@pytest.mark.e2e
def test_template_learns_an_unseen_dataset(tmp_path):
    data = str(tmp_path / 'my_videos')
    generate_motion_dataset(data, num_classes=NUM_CLASSES, train_per_class=64,
                            val_per_class=8, num_frames=32, size=SIZE, speed=2.0, seed=2026)
    ckpt = str(tmp_path / 'released_layout.pth')
    pretrain_acc = pretrain_tiny_checkpoint(ckpt)
    print(f'stand-in checkpoint: train accuracy {pretrain_acc:.3f} on its 4-direction task')
    path = template.write_user_config(
        str(tmp_path), data_root=data, ann_file_train=osp.join(data, 'train.txt'),
        ann_file_val=osp.join(data, 'val.txt'), ann_file_test=osp.join(data, 'val.txt'),
        num_classes=NUM_CLASSES, clip_len=FRAMES, num_clips=2,
        input_size=SIZE, hflip=False,  # mirroring would swap the motion classes
        frame_interval=INTERVAL,
        max_epochs=EPOCHS, warmup_epochs=1, batch_size=4, num_gpus=1, total_batch=8,
        base_lr=0.032,  # 1e-3 at 8 videos per step
        pretrained=ckpt)
    cfg = Config.fromfile(path)
    assert cfg.optim_wrapper.accumulative_counts == 2
    # outside the block, test-only: the tiny arch of the checkpoint, CPU-friendly loaders
    cfg.model.backbone.arch = template.TINY_ARCH
    cfg.model.cls_head.in_channels = template.TINY_ARCH['embed_dims']
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].update(num_workers=2 if split == 'train' else 0,
                                         persistent_workers=split == 'train')
    cfg.train_cfg.update(val_begin=EPOCHS, val_interval=EPOCHS)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=EPOCHS)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=20)
    cfg.randomness = dict(seed=0)
    cfg.work_dir = str(tmp_path / 'work')

    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    print({k: round(v, 4) for k, v in metrics.items()})
    assert runner.model.cls_head.fc_cls.out_features == NUM_CLASSES
    assert metrics['acc/top1'] >= TOP1_BAR, metrics
    assert metrics['acc/mean1'] >= TOP1_BAR, metrics
