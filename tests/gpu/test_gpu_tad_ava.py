"""CUDA paths of the downstream tasks: ``tools/extract_features.py`` on CUDA vs CPU (fp32),
ActionFormer trained and tested on CUDA on generated mini-THUMOS features, Soft-NMS on CUDA
tensors, and the AVA detector on CUDA where mmcv's CUDA RoIAlign is built."""
import os.path as osp
import re

import numpy as np
import pytest
import torch

from tests.conftest import REPO_ROOT, load_script, run_python
from tests.gpu.conftest import need

pytestmark = pytest.mark.gpu

TINY_VIT = dict(type='VideoMAEv2ViT', arch=dict(embed_dims=64, depth=2, num_heads=2,
                                                 mlp_ratio=2.0),
                img_size=32, num_frames=16, pos_embed_grid_from=None)


@pytest.fixture(scope='module')
def mini_thumos_features(tmp_path_factory):
    """mini-THUMOS videos, a random tiny ViT checkpoint, and its features extracted by
    ``tools/extract_features.py`` once on CPU and once on CUDA (fp32)."""
    need('decord', 'feature extraction decodes with decord')
    from vmae2_mm.models.backbones import VideoMAEv2ViT
    from vmae2_mm.testing.thumos import generate_mini_thumos
    tmp = tmp_path_factory.mktemp('tad_gpu')
    data = generate_mini_thumos(str(tmp / 'data'), num_val=24, num_test=8, num_classes=4,
                                size=32, fps=10.0, min_duration=20.0, max_duration=40.0, seed=0)
    torch.manual_seed(0)
    vit = VideoMAEv2ViT(**{k: v for k, v in TINY_VIT.items() if k != 'type'})
    ckpt = tmp / 'tiny_vit.pth'
    torch.save(dict(model=vit.state_dict()), ckpt)
    ext_cfg = tmp / 'extract.py'
    ext_cfg.write_text(f'model = {TINY_VIT!r}\nfeature_extraction = dict(stride=4, '
                       'batch_size=16)\n')
    out = {}
    for device in ('cpu', 'cuda:0'):
        feat_dir = tmp / f'features_{device.replace(":", "")}'
        run_python(['tools/extract_features.py', str(ext_cfg), str(ckpt), '--videos',
                    data['video_dir'], '--out', str(feat_dir), '--no-progress', '--device',
                    device], env=dict(OMP_NUM_THREADS='4'))
        out[device] = feat_dir
    return data, out


def test_extract_features_cuda_equal_cpu_fp32(mini_thumos_features):
    data, dirs = mini_thumos_features
    stems = sorted(p.stem for p in dirs['cpu'].glob('*.npy'))
    assert stems and stems == sorted(p.stem for p in dirs['cuda:0'].glob('*.npy'))
    worst = 0.
    for stem in stems:
        a, b = np.load(dirs['cpu'] / f'{stem}.npy'), np.load(dirs['cuda:0'] / f'{stem}.npy')
        assert a.shape == b.shape, (stem, a.shape, b.shape)
        worst = max(worst, float(np.abs(a - b).max()))
    print(f'{len(stems)} videos: max |CUDA - CPU| feature difference {worst:.2e}')
    assert worst <= 1e-4


def test_actionformer_train_and_test_on_cuda(mini_thumos_features, tmp_path):
    """The CPU e2e test's recipe (z-scored features, the tiny config) on CUDA: the Runner puts
    the model on the GPU; the same mAP bar as on CPU."""
    from tests.e2e.test_tad_e2e import _train_config, zscore_features
    import shutil
    data, dirs = mini_thumos_features
    feat_dir = tmp_path / 'features'
    shutil.copytree(dirs['cuda:0'], feat_dir)
    zscore_features(str(feat_dir), data['ann_file'])
    work_dir = tmp_path / 'work'
    cfg = tmp_path / 'actionformer_tiny_mini-thumos.py'
    cfg.write_text(_train_config(REPO_ROOT, data['ann_file'], str(feat_dir), work_dir))
    run_python(['tools/train.py', str(cfg)])
    ckpts = sorted(work_dir.glob('epoch_*.pth'))
    assert ckpts, f'no checkpoint in {work_dir}'
    out = run_python(['tools/test.py', str(cfg), str(ckpts[-1]), '--work-dir',
                      str(tmp_path / 'test')])
    found = re.findall(r'mAP/avg: ([0-9.]+)', out.stdout + out.stderr)
    assert found, (out.stdout + out.stderr)[-3000:]
    print(f'mini-THUMOS average mAP on CUDA = {float(found[-1]):.2f}%')
    assert float(found[-1]) >= 50.0


@pytest.mark.parametrize('multiclass', [True, False])
def test_soft_nms_on_cuda_tensors_equals_cpu_exactly(multiclass):
    from vmae2_mm.models.localizers.soft_nms import batched_soft_nms_1d
    g = torch.Generator().manual_seed(0)
    n = 2000
    start = torch.rand(n, generator=g) * 500
    segs = torch.stack([start, start + 1 + torch.rand(n, generator=g) * 40], 1)
    scores = torch.rand(n, generator=g)
    labels = torch.randint(0, 20, (n,), generator=g)
    cpu = batched_soft_nms_1d(segs, scores, labels, multiclass=multiclass,
                              voting_thresh=0. if multiclass else 0.7)
    gpu = batched_soft_nms_1d(segs.cuda(), scores.cuda(), labels.cuda(),
                              multiclass=multiclass, voting_thresh=0. if multiclass else 0.7)
    for a, b in zip(cpu, gpu):
        assert b.device.type == 'cuda'
        assert torch.equal(a, b.cpu())


def _cuda_roi_align_reason() -> str:
    """'' when mmcv's RoIAlign runs on CUDA here, else why not."""
    try:
        from mmcv.ops import RoIAlign
    except Exception as e:  # noqa: BLE001  (mmcv without compiled ops raises ModuleNotFoundError)
        return f'mmcv compiled ops are not installed ({type(e).__name__}: {e})'
    try:
        x = torch.zeros(1, 1, 4, 4, device='cuda')
        RoIAlign((2, 2), 1.0)(x, torch.tensor([[0., 0., 0., 3., 3.]], device='cuda'))
    except Exception as e:  # noqa: BLE001
        return f'mmcv was built without CUDA ops ({type(e).__name__}: {e})'
    return ''


def test_ava_detector_trains_and_tests_on_cuda(tmp_path):
    reason = _cuda_roi_align_reason()
    if reason:
        pytest.skip(f'AVA detector needs mmcv CUDA RoIAlign: {reason}')
    from tests.e2e.test_ava_e2e import CONFIG, TINY
    from vmae2_mm.testing.ava import generate_mini_ava
    data = generate_mini_ava(str(tmp_path / 'data'), num_train_videos=8, num_val_videos=3,
                             seconds=6, height=96, width=128, seed=1)
    cfg = tmp_path / 'tiny_ava.py'
    cfg.write_text(CONFIG.format(base=TINY, ann=osp.join(data['root'], 'annotations'),
                                 frames=osp.join(data['root'], 'rawframes'))
                   + 'train_cfg = dict(max_epochs=2)\n'
                   + 'default_hooks = dict(checkpoint=dict(interval=1))\n')
    work_dir = str(tmp_path / 'work')
    load_script('tools/train.py').main([str(cfg), '--work-dir', work_dir, '--no-validate'])
    metrics = load_script('tools/test.py').main([str(cfg), osp.join(work_dir, 'epoch_2.pth'),
                                                '--work-dir', work_dir])
    assert 0. <= metrics['mAP/overall'] <= 1.
