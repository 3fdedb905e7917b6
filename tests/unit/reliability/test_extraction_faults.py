"""tools/extract_features.py under faults (issue 21 item 6), on real mp4s with a tiny ViT:

- a write the disk cannot take (here a file-size limit, RLIMIT_FSIZE -> EFBIG, the same path as
  ENOSPC) stops the run with exit status 2 and a message naming the video and the file, keeps
  every finished pair, leaves no temporary file, and the failures seen so far are on disk;
- temporary files of a killed writer are removed on the next run, a live writer's are kept;
- an existing ``.npy`` that is truncated, empty, of the wrong shape or without metadata is
  extracted again, not counted as finished.
"""
import json
import os
import resource
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.conftest import REPO_ROOT, load_script
from vmae2_mm.testing.recognition import write_mp4

TINY = dict(type='VideoMAEv2ViT', arch=dict(embed_dims=32, depth=1, num_heads=2, mlp_ratio=2.0),
            img_size=32, num_frames=16, pos_embed_grid_from=None)
# frames per video: the long one's features (97 x 32 float32 = 12.4 kB) exceed the 8 kB limit
# below, the short ones' (2 x 32) and every metadata file (about 1 kB) stay under it
FRAMES = {'a_short': 20, 'b_long': 400, 'c_short': 20}
LIMIT = 8192


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    from vmae2_mm.models.backbones import VideoMAEv2ViT
    root = tmp_path_factory.mktemp('extraction_faults')
    videos = root / 'videos'
    videos.mkdir()
    rng = np.random.default_rng(0)
    for name, n in FRAMES.items():
        write_mp4(str(videos / f'{name}.mp4'),
                  rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), fps=10.0)
    (videos / 'a0_corrupt.mp4').write_bytes(rng.integers(0, 256, 4096, np.uint8).tobytes())
    cfg = root / 'tiny_extract.py'
    cfg.write_text(f'model = {TINY!r}\nfeature_extraction = dict(stride=4, batch_size=8)\n')
    torch.manual_seed(0)
    ckpt = root / 'tiny.pth'
    torch.save(dict(model=VideoMAEv2ViT(**{k: v for k, v in TINY.items() if k != 'type'})
                    .state_dict()), ckpt)
    return dict(videos=str(videos), cfg=str(cfg), ckpt=str(ckpt))


def _limit_file_size():
    # without the signal ignored, the kernel kills the writer (SIGXFSZ) instead of failing the
    # write with EFBIG; an ignored disposition survives exec
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def _extract(setup, out, limited):
    return subprocess.run(
        [sys.executable, 'tools/extract_features.py', setup['cfg'], setup['ckpt'], '--videos',
         setup['videos'], '--out', str(out), '--no-progress', '--device', 'cpu'],
        cwd=REPO_ROOT, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS='1'),
        capture_output=True, text=True, timeout=600,
        preexec_fn=_limit_file_size if limited else None)


def test_disk_full_stops_with_the_video_named_and_keeps_finished_files(setup, tmp_path):
    out = tmp_path / 'feats'
    proc = _extract(setup, out, limited=True)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text[-3000:]
    long_video = os.path.join(setup['videos'], 'b_long.mp4')
    assert f'writing the features of {long_video} to {out / "b_long.npy"} failed: File too large' \
        in text, text[-3000:]
    assert 'finished videos are skipped' in text
    # the finished video is complete, the failed one and the unreached one are absent, and no
    # temporary file is left
    assert np.load(out / 'a_short.npy').shape == (2, 32)
    assert not (out / 'b_long.npy').exists() and not (out / 'c_short.npy').exists()
    assert [p for p in os.listdir(out) if '.tmp.' in p] == []
    # the failure seen before the stop is on disk, in a report marked unfinished
    report = json.loads((out / 'failures.json').read_text())
    assert report['finished'] is False
    assert [os.path.basename(f['video']) for f in report['failures']] == ['a0_corrupt.mp4']

    # the same command with room: the finished video is skipped, the rest are extracted
    mtime = os.stat(out / 'a_short.npy').st_mtime_ns
    proc = _extract(setup, out, limited=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / 'failures.json').read_text())
    assert (report['finished'], report['done'], report['skipped'], report['failed']) == (
        True, 2, 1, 1)
    assert os.stat(out / 'a_short.npy').st_mtime_ns == mtime
    assert np.load(out / 'b_long.npy').shape == ((400 - 16) // 4 + 1, 32)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, '-c', 'pass'])
    child.wait()
    return child.pid


def test_stale_tmp_removed_and_incomplete_features_redone(setup, tmp_path):
    tool = load_script('tools/extract_features.py')
    out = tmp_path / 'feats'
    args = [setup['cfg'], setup['ckpt'], '--videos', setup['videos'], '--out', str(out),
            '--no-progress', '--device', 'cpu']
    assert tool.main(args) == 0
    good = {v: np.load(out / f'{v}.npy') for v in FRAMES}

    host = socket.gethostname()
    dead = out / f'b_long.npy.tmp.{host}.{_dead_pid()}'
    dead.write_bytes(b'partial write of a killed run')
    live = out / f'c_short.npy.tmp.{host}.{os.getppid()}'  # a writer that is still running
    live.write_bytes(b'being written')
    # truncated: the header promises more bytes than the file holds
    data = (out / 'b_long.npy').read_bytes()
    (out / 'b_long.npy').write_bytes(data[:len(data) // 2])
    (out / 'a_short.npy').write_bytes(b'')  # empty
    np.save(out / 'c_short.npy', np.zeros(5, np.float32))  # wrong shape
    mtime = os.stat(out / 'c_short.json').st_mtime_ns

    assert tool.main(args) == 0
    report = json.loads((out / 'failures.json').read_text())
    assert (report['done'], report['skipped'], report['redone']) == (3, 0, 3)
    assert not dead.exists() and live.exists()
    for v, ref in good.items():
        np.testing.assert_array_equal(np.load(out / f'{v}.npy'), ref)
    assert os.stat(out / 'c_short.json').st_mtime_ns != mtime

    # features without their metadata are not finished either
    os.remove(out / 'a_short.json')
    assert tool.main(args) == 0
    report = json.loads((out / 'failures.json').read_text())
    assert (report['done'], report['skipped'], report['redone']) == (1, 2, 1)
    assert (out / 'a_short.json').exists()
