"""A non-finite pre-training loss stops the mmengine Runner with a clear error before the
optimizer step, and no checkpoint with NaN weights is ever written."""
import glob
import os.path as osp

import pytest
import torch
from mmaction.structures import ActionDataSample
from mmengine.hooks import Hook
from mmengine.runner import Runner
from torch.utils.data import Dataset

import vmae2_mm  # noqa: F401
from vmae2_mm.datasets.transforms.masking import RunningCellMasking, TubeMasking
from vmae2_mm.models.pretrainers import VideoMAEv2Pretrainer


class TinyClips(Dataset):
    """Random uint8 clips [1, 3, 4, 32, 32] with dual masks (grid 2x2x2)."""

    def __init__(self, n=8):
        self.n = n
        self.tube, self.cell = TubeMasking((2, 2, 2), 0.5, seed=0), RunningCellMasking((2, 2, 2))

    def __len__(self):
        return self.n

    def __getitem__(self, idx):
        g = torch.Generator().manual_seed(idx)
        r = self.cell(self.tube({}))
        ds = ActionDataSample()
        ds.set_field(r['enc_hidden'], 'enc_hidden')
        ds.set_field(r['dec_kept'], 'dec_kept')
        return dict(inputs=torch.randint(0, 256, (1, 3, 4, 32, 32), generator=g,
                                         dtype=torch.uint8), data_samples=ds)


class PoisonWeights(Hook):
    """Corrupt a weight right before iteration ``at`` (0-based), as an overflow would."""

    def __init__(self, at):
        self.at = at

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == self.at:
            with torch.no_grad():
                runner.model.decoder.head.bias.fill_(float('nan'))


def test_nan_loss_stops_runner_without_nan_checkpoint(tmp_path):
    model = VideoMAEv2Pretrainer(
        encoder=dict(arch=dict(embed_dims=32, depth=1, num_heads=2), img_size=32, num_frames=4),
        decoder=dict(embed_dims=16, num_heads=2, depth=1))
    runner = Runner(
        model=model, work_dir=str(tmp_path), default_scope='mmaction',
        train_dataloader=dict(dataset=TinyClips(), batch_size=2, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='pseudo_collate')),
        train_cfg=dict(by_epoch=False, max_iters=6),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[PoisonWeights(at=3)])
    with pytest.raises(FloatingPointError, match='non-finite reconstruction loss .* at '
                                                 'iteration 3'):
        runner.train()
    saved = sorted(glob.glob(osp.join(str(tmp_path), 'iter_*.pth')))
    assert [osp.basename(p) for p in saved] == ['iter_1.pth', 'iter_2.pth', 'iter_3.pth']
    for path in saved:
        sd = torch.load(path, map_location='cpu')['state_dict']
        assert all(torch.isfinite(v).all() for v in sd.values() if v.is_floating_point()), path
