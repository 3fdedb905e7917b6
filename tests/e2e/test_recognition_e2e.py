"""End to end through the tools: train a tiny ViT on generated motion clips, test the saved
checkpoint, label the windows of a longer video with it (tools/infer_recognizer.py), train
with 2 CPU processes, resume, mixed precision."""
import json
import pickle
import re

import pytest

from tests.conftest import REPO_ROOT, run_python

CONFIG = REPO_ROOT / ('configs/recognition/videomaev2/'
                      'vit-tiny-p8_scratch_1xb16-8x2x1-20e_synthetic-motion-32px.py')

# The tiny demo config, pointed at a generated dataset, with a shorter schedule where needed.
TINY = '''
_base_ = [{base!r}]
d = {data!r}
train_dataloader = dict(dataset=dict(ann_file=d + '/train.txt', data_prefix=dict(video=d)))
val_dataloader = dict(dataset=dict(ann_file=d + '/val.txt', data_prefix=dict(video=d)))
test_dataloader = dict(dataset=dict(ann_file=d + '/val.txt', data_prefix=dict(video=d)))
train_cfg = dict(max_epochs={epochs}, val_interval={val_interval})
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max={epochs} - 1, eta_min=1e-6, by_epoch=True, begin=1,
         end={epochs}, convert_to_iter_based=True)]
default_hooks = dict(checkpoint=dict(interval={ckpt_interval}))
'''


def write_tiny_config(tmp_path, data_dir, epochs, val_interval=5, ckpt_interval=5):
    cfg = tmp_path / f'tiny_{epochs}e.py'
    cfg.write_text(TINY.format(base=str(CONFIG), data=str(data_dir), epochs=epochs,
                               val_interval=val_interval, ckpt_interval=ckpt_interval))
    return cfg


@pytest.fixture(scope='module')
def motion_dataset(tmp_path_factory):
    from vmae2_mm.testing.recognition import generate_motion_dataset
    out = tmp_path_factory.mktemp('motion_e2e')
    generate_motion_dataset(str(out), num_classes=4, train_per_class=48, val_per_class=16,
                            num_frames=32, size=32, speed=1.0, seed=0)
    return out


def top1(log: str, mode: str = 'test') -> float:
    found = re.findall(rf'Epoch\({mode}\).*?acc/top1: ([0-9.]+)', log)
    assert found, log[-3000:]
    return float(found[-1])


@pytest.fixture(scope='module')
def trained_tiny(motion_dataset, tmp_path_factory):
    """The tiny ViT trained 40 epochs by tools/train.py: ``(config, checkpoint, work dir)``.

    40 epochs: the config's 20 reach 0.98 at seed 0 but only 0.53 / 0.38 at seeds 1 / 2; 40
    epochs gave 1.0 at seeds 0, 1 and 2."""
    tmp = tmp_path_factory.mktemp('tiny_40e')
    cfg = write_tiny_config(tmp, motion_dataset, epochs=40, val_interval=40, ckpt_interval=40)
    work = tmp / 'work'
    run_python(['tools/train.py', str(cfg), '--work-dir', str(work), '--seed', '0'])
    ckpt = work / 'epoch_40.pth'
    assert ckpt.is_file()
    return cfg, ckpt


@pytest.mark.e2e
def test_tiny_vit_learns_motion_and_tests_from_checkpoint(trained_tiny, tmp_path):
    cfg, ckpt = trained_tiny
    dump = tmp_path / 'preds.pkl'
    proc = run_python(['tools/test.py', str(cfg), str(ckpt), '--work-dir', str(tmp_path / 'test'),
                       '--dump', str(dump)])
    acc = top1(proc.stdout + proc.stderr)
    print(f'held-out top-1 of the tiny ViT (2 clips x 1 crop): {acc:.4f}')
    assert acc >= 0.90
    preds = pickle.loads(dump.read_bytes())
    assert len(preds) == 64  # 16 held-out clips x 4 classes


PARTS = [0, 2, 1, 3]  # direction classes, 50 frames (2 s at 25 fps) each


@pytest.mark.e2e
def test_infer_recognizer_labels_the_right_windows(trained_tiny, motion_dataset, tmp_path):
    """Sliding-window recognition through tools/infer_recognizer.py: a generated video whose
    motion direction changes every 2 s gets the right label in the windows lying inside each
    part, and the timeline PNG shows the parts in order."""
    import cv2
    import numpy as np

    from vmae2_mm.apis.inference_recognizer import class_colour
    from vmae2_mm.testing.recognition import render_motion_clip, write_mp4
    cfg, ckpt = trained_tiny
    rng = np.random.default_rng(5)
    video = tmp_path / 'changing.mp4'
    write_mp4(str(video), np.concatenate([render_motion_clip(rng, c, 4, 50, 32, 1.0)
                                          for c in PARTS]), 25.0)
    out = tmp_path / 'out'
    run_python(['tools/infer_recognizer.py', str(video), str(cfg), str(ckpt),
                '--label-file', str(motion_dataset / 'classes.txt'), '--out-dir', str(out),
                '--window-stride', '0.32', '--topk', '2', '--no-progress'])
    rec = json.loads((out / 'changing.json').read_text())
    assert len(rec['windows']) == 24  # (200 - 16) // 8 + 1 = 24 windows of 0.64 s
    inside, right = 0, 0
    for w in rec['windows']:
        part = int(w['start_s'] // 2.0)
        if w['end_s'] <= 2.0 * (part + 1) + 1e-9:
            inside += 1
            right += w['topk'][0]['label'] == PARTS[part]
    print(f'windows inside one part labelled right: {right}/{inside}')
    assert inside == 18 and right / inside >= 0.9

    # the timeline bar: colour runs wider than 10% of the axis are the parts, in order
    img = cv2.cvtColor(cv2.imread(str(out / 'changing_timeline.png')), cv2.COLOR_BGR2RGB)
    img = img[:, :int(0.77 * img.shape[1])].astype(int)  # left of the legends
    match = np.full(img.shape[:2], -1)
    for k in range(4):
        match[np.abs(img - class_colour(k)).sum(-1) <= 3] = k
    row = match[int(np.argmax((match >= 0).sum(1)))]
    row = row[row >= 0]
    edges = np.flatnonzero(np.diff(row)) + 1
    runs = [(int(r[0]), len(r)) for r in np.split(row, edges)]
    assert [k for k, n in runs if n > 0.1 * len(row)] == PARTS, runs


@pytest.mark.e2e
def test_dist_train_two_cpu_processes(motion_dataset, tmp_path):
    cfg = write_tiny_config(tmp_path, motion_dataset, epochs=2, val_interval=2, ckpt_interval=2)
    work = tmp_path / 'work'
    import subprocess
    import sys
    env = dict(__import__('os').environ, PYTHON=sys.executable, PORT='29517')
    proc = subprocess.run(['bash', str(REPO_ROOT / 'tools/dist_train.sh'), str(cfg), '2',
                           '--work-dir', str(work)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    assert (work / 'epoch_2.pth').is_file()
    assert 'Distributed training: True' in out, out[-3000:]
    # 192 training clips, batch 16 per process, 2 processes -> 6 iterations per epoch
    assert re.search(r'Epoch\(train\) \[2\]\[6/6\]', out), out[-3000:]
    # 2-process test: 64 held-out clips, batch 4 per process -> 8 iterations
    proc = subprocess.run(['bash', str(REPO_ROOT / 'tools/dist_test.sh'), str(cfg),
                           str(work / 'epoch_2.pth'), '2', '--work-dir', str(tmp_path / 'test')],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    assert re.search(r'Epoch\(test\) \[8/8\].*acc/top1', out), out[-3000:]


@pytest.mark.e2e
def test_resume_and_bf16_autocast(motion_dataset, tmp_path):
    work = tmp_path / 'work'
    cfg1 = write_tiny_config(tmp_path, motion_dataset, epochs=2, val_interval=2, ckpt_interval=1)
    run_python(['tools/train.py', str(cfg1), '--work-dir', str(work), '--amp'])
    cfg2 = write_tiny_config(tmp_path, motion_dataset, epochs=3, val_interval=2, ckpt_interval=1)
    proc = run_python(['tools/train.py', str(cfg2), '--work-dir', str(work), '--resume',
                       '--amp'])
    out = proc.stdout + proc.stderr
    assert 'resumed epoch: 2' in out, out[-3000:]
    assert 'AutocastOptimWrapper' in (work / next(p.name for p in work.iterdir()
                                                 if p.suffix == '.py')).read_text()
    assert (work / 'epoch_3.pth').is_file()
