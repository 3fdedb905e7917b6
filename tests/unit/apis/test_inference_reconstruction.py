"""Reconstruction view of the dual-mask pretrainer (issue 24): exact masks per row, the exact
inverse of the per-cube target normalisation, and a PNG whose rows show what they claim."""
import json
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from vmae2_mm.apis.inference_reconstruction import (GREY, _masked, init_pretrainer, reconstruct_clip,
                                                    render_grid, unnormalize_cubes)
from vmae2_mm.models.pretrainers.targets import normalize_cubes
from vmae2_mm.testing.recognition import write_mp4

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
CFG = osp.join(ROOT, 'configs/pretrain/videomaev2/'
               'vit-tiny-p16_videomaev2-tube90-cell50_1xb8-8x2x1-25e_synthetic-ramps.py')


@pytest.fixture(scope='module')
def video(tmp_path_factory):
    # 20 frames 80x64 of smooth colour ramps (no flat cube: a flat cube's std is 0)
    rng = np.random.default_rng(0)
    t, y, x = np.meshgrid(np.arange(20), np.arange(64), np.arange(80), indexing='ij')
    frames = np.stack([(x * 3 + t * 5) % 256, (y * 4) % 256, (x + y + 7 * t) % 256], -1)
    frames = np.clip(frames + rng.integers(0, 20, frames.shape), 0, 255).astype(np.uint8)
    path = str(tmp_path_factory.mktemp('v') / 'ramps.mp4')
    write_mp4(path, frames, fps=10.0)
    return path


def test_unnormalize_is_the_inverse_of_the_target_normalisation():
    g = torch.Generator().manual_seed(0)
    cubes = torch.rand(5, 2 * 4 * 4, 3, generator=g)
    target = normalize_cubes(cubes[None], True, 1e-6)[0]
    torch.testing.assert_close(unnormalize_cubes(target, cubes, True), cubes, atol=1e-5,
                               rtol=0)
    torch.testing.assert_close(unnormalize_cubes(cubes.flatten(1), cubes, False), cubes)


@pytest.fixture(scope='module')
def pretrainer():
    return init_pretrainer(CFG)


def test_rows_show_exactly_the_masks(video, pretrainer):
    model, cfg = pretrainer
    res = reconstruct_clip(model, cfg, video, seed=3)
    assert res['grid'] == (4, 4, 4) and res['frames'].shape == (8, 64, 64, 3)
    hidden, kept = res['enc_hidden'], res['dec_kept']
    # tube 0.9 of 16 cells per slice -> 2 visible per slice; running cell keeps half
    assert (~hidden).sum() == 4 * 2 and kept.sum() == 32
    assert np.array_equal(res['loss_mask'], hidden & kept)
    # reconstruction: input pixels on visible cubes, grey on hidden cubes the decoder drops
    full = lambda m: np.repeat(np.repeat(np.repeat(np.asarray(m), 2, 0), 16, 1), 16, 2)  # noqa
    vis = full(~hidden)
    assert np.array_equal(res['recon'][vis], res['frames'][vis])
    dropped = full(hidden & ~kept)
    assert (res['recon'][dropped] == GREY).all()
    # the predicted cubes hold the per-cube un-normalised predictions of the model
    pred_px = full(hidden & kept)
    assert not (res['recon'][pred_px] == GREY).all()
    img = render_grid(res, gap=2)
    s = 64
    assert img.shape == (4 * s + 3 * 2, 4 * s + 3 * 2, 3)
    for c in range(4):  # one column per tubelet, its first frame
        cell = lambda r: img[r * (s + 2):r * (s + 2) + s, c * (s + 2):c * (s + 2) + s]  # noqa
        assert np.array_equal(cell(0), res['frames'][2 * c])
        assert np.array_equal(cell(1), _masked(res['frames'], ~hidden, 16, 2)[2 * c])
        assert np.array_equal(cell(2), _masked(res['frames'], hidden & kept, 16, 2)[2 * c])
        assert np.array_equal(cell(3), res['recon'][2 * c])


def test_perfect_predictions_reconstruct_the_input(video):
    """With the pretrainer's targets as predictions, the reconstruction is the input (so the
    un-normalisation and the cube placement are right, not only plausible)."""
    model, cfg = init_pretrainer(CFG)
    model.reconstruct = lambda inputs, enc_hidden, dec_kept: model.targets(inputs, dec_kept)
    res = reconstruct_clip(model, cfg, video, seed=1)
    shown = np.repeat(np.repeat(np.repeat(
        ~res['enc_hidden'] | res['loss_mask'], 2, 0), 16, 1), 16, 2)
    diff = np.abs(res['recon'].astype(int) - res['frames'].astype(int))[shown]
    assert diff.max() <= 1, diff.max()  # uint8 rounding
    assert res['recon_loss'] < 1e-8


def test_cli_writes_png_json_and_mp4(video, tmp_path):
    out = subprocess.run([sys.executable, osp.join(ROOT, 'tools/visualize_reconstruction.py'),
                          CFG, video, '--out-dir', str(tmp_path), '--scale', '2', '--mp4'],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    info = json.load(open(tmp_path / 'ramps_recon.json'))
    assert info['tokens'] == 64 and info['encoder_visible'] == 8 and info['decoder_kept'] == 32
    img = cv2.imread(str(tmp_path / 'ramps_recon.png'))
    assert img.shape == (2 * (4 * 64 + 6), 2 * (4 * 64 + 6), 3)
    # row 2 (encoder-visible) is mostly grey: 2 of 16 cells per slice are visible
    row = img[2 * 66:2 * 66 + 128, :128]
    assert 0.8 < (row == GREY).all(-1).mean() < 0.95
    cap = cv2.VideoCapture(str(tmp_path / 'ramps_recon.mp4'))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 8


def test_bad_inputs(tmp_path, video, pretrainer):
    with pytest.raises(TypeError, match='needs a VideoMAEv2Pretrainer'):
        init_pretrainer(osp.join(ROOT, 'configs/recognition/videomaev2/'
                                 'vit-tiny-p8_scratch_1xb16-8x2x1-20e_synthetic-motion-32px.py'))
    model, cfg = pretrainer
    bad = tmp_path / 'broken.mp4'
    bad.write_bytes(b'not a video')
    with pytest.raises(ValueError, match='broken.mp4: cannot open'):
        reconstruct_clip(model, cfg, str(bad))
    short = str(tmp_path / 'short.mp4')
    write_mp4(short, np.zeros((5, 64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match=r'short.mp4: 5 frames, one clip needs 15'):
        reconstruct_clip(model, cfg, short)
