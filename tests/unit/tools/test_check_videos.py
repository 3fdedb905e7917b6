"""``tools/analysis/check_videos.py`` and ``vmae2_mm.utils.video_probe`` on real files: every
generated codec/container variant (vmae2_mm.testing.video_variants) against its ground truth, a
frame folder, a missing file, the cleaned list and the clip read from shipped configs."""
import csv
import io
import json
import os.path as osp

import mmcv
import pytest
from mmengine.config import Config

from tests.conftest import REPO_ROOT, load_script

pytest.importorskip('decord')
pytest.importorskip('av')

from vmae2_mm.testing.video_variants import VARIANTS, make_frame, write_variants  # noqa: E402
from vmae2_mm.utils.video_probe import is_vfr, probe  # noqa: E402

tool = load_script('tools/analysis/check_videos.py')

# 4K and hour-long files are slow to encode and add nothing to the per-field checks
FAST = [n for n in VARIANTS if n not in ('uhd_4k', 'hour_long')]
CODEC = {'libx264': 'h264', 'libvpx-vp9': 'vp9', 'libx265': 'hevc', 'mpeg4': 'mpeg4'}


@pytest.fixture(scope='module')
def variants(tmp_path_factory):
    return write_variants(str(tmp_path_factory.mktemp('variants')), FAST)


def _frame_folder(folder, n, size=(48, 32)):
    """mmaction2 RawframeDataset layout with SSv1 names: 00001.jpg ..."""
    for i in range(n):
        mmcv.imwrite(make_frame(i, *size)[..., ::-1].copy(), osp.join(folder, f'{i + 1:05}.jpg'))


@pytest.mark.parametrize('name', FAST)
def test_probe_reports_each_variant(variants, name):
    info, spec = variants[name], VARIANTS[name]
    res = probe(info['path'], min_frames=32)
    assert res.kind == 'video'
    assert res.codec == CODEC[spec['codec']]
    assert res.decodable == info['decodable']
    assert res.frames == info['frames']
    assert res.duration == pytest.approx(info['duration'], abs=2e-3)
    assert res.fps == pytest.approx(info['fps'], rel=2e-3)
    assert res.rotation == info['rotation']
    assert res.vfr == info['vfr']
    if info['decodable']:
        assert (res.width, res.height) == (info['width'], info['height'])
    assert ('short' in res.problems) == (info['frames'] < 32)
    assert ('vfr' in res.problems) == info['vfr']
    assert ('rotated' in res.problems) == bool(info['rotation'])
    assert res.ok == (info['decodable'] and info['frames'] >= 32)


def test_corrupt_file_flagged_with_reason_naming_it(variants):
    path = variants['corrupt_middle']['path']
    res = probe(path)
    assert res.problems == ['undecodable'] and not res.ok
    assert res.reason.startswith(f'{path}: decord fails on the first/middle/last frame')


def test_frame_folder_and_missing(tmp_path):
    _frame_folder(str(tmp_path), 5)
    res = probe(str(tmp_path), min_frames=8)
    assert (res.kind, res.frames, res.width, res.height, res.codec, res.fps) == \
        ('frames', 5, 48, 32, 'jpeg', None)
    assert res.decodable and res.problems == ['short']
    (tmp_path / '00003.jpg').write_bytes(b'not a jpeg')
    res = probe(str(tmp_path))
    assert res.problems == ['undecodable'] and '00003.jpg' in res.reason
    missing = str(tmp_path / 'nope.mp4')
    res = probe(missing)
    assert res.problems == ['missing'] and res.reason == f'{missing}: file not found'


def test_is_vfr_tolerates_timestamp_rounding():
    ms = [round(i * 1000 / 24) / 1000 for i in range(48)]  # mkv: 41/42 ms steps at 24 fps
    assert not is_vfr(ms, tick=1e-3)
    assert is_vfr([i / 30 for i in range(30)] + [1 + i / 10 for i in range(20)], tick=1e-3)


def test_cli_on_a_list_with_config_writes_reports_and_cleaned_list(variants, tmp_path):
    root = osp.dirname(variants['h264_bframes']['path'])
    _frame_folder(osp.join(root, 'frames_a'), 40)
    names = FAST + ['frames_a', 'missing']
    lines = [f"{VARIANTS[n]['file'] if n in VARIANTS else n} {i}" for i, n in enumerate(names)]
    lines[0] = f'  {lines[0]}'  # odd spacing stays verbatim in the cleaned list
    lst = tmp_path / 'train_list.txt'
    lst.write_text('\n'.join(lines[:3] + [''] + lines[3:]) + '\n')
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(
        f"train_dataloader = dict(dataset=dict(type='VideoDataset', ann_file='x', "
        f"data_prefix=dict(video={root!r}), pipeline=[dict(type='DecordInit'), "
        f"dict(type='SampleFrames', clip_len=8, frame_interval=4, num_clips=1)]))\n")
    out = tmp_path / 'out'
    res = tool.main([str(lst), '--config', str(cfg), '--workers', '2', '--out-dir', str(out)])

    short = {n for n in FAST if variants[n]['frames'] < 32}
    assert short == {'odd_size', 'one_frame', 'rotate90'}
    bad = short | {'corrupt_middle', 'missing'}
    kept = [line for line, n in zip(lines, names) if n not in bad]
    assert (out / 'train_list_clean.txt').read_text() == ''.join(f'{x}\n' for x in kept)

    report = json.loads((out / 'report.json').read_text())
    assert report['summary'] == dict(
        total=len(names), ok=len(names) - len(bad), bad=len(bad), videos=len(names) - 1,
        frame_folders=1,
        problems=dict(missing=1, undecodable=1, short=3, vfr=1, rotated=1))
    assert res['summary'] == report['summary']
    rows = list(csv.DictReader(open(out / 'report.csv')))
    assert [osp.basename(r['path']) for r in rows] == [
        VARIANTS[n]['file'] if n in VARIANTS else n for n in names]
    by_name = dict(zip(names, rows))
    assert by_name['vp9_webm']['codec'] == 'vp9' and by_name['vp9_webm']['frames'] == '36'
    assert by_name['rotate90']['problems'] == 'short;rotated'
    assert by_name['frames_a']['kind'] == 'frames' and by_name['frames_a']['frames'] == '40'
    assert by_name['missing']['reason'] == f"{osp.join(root, 'missing')}: file not found"


def test_cli_on_a_folder(variants, tmp_path):
    root = osp.dirname(variants['h264_bframes']['path'])
    buf = io.StringIO()
    res = tool.check_videos(root, str(tmp_path), min_frames=None, workers=1, file=buf)
    found = {osp.basename(r.path) for r in res['results']}
    assert {VARIANTS[n]['file'] for n in FAST} <= found
    clean = (tmp_path / 'clean_list.txt').read_text().split()
    assert VARIANTS['corrupt_middle']['file'] not in clean
    assert VARIANTS['one_frame']['file'] in clean  # no clip given: length not checked
    assert 'undecodable' in buf.getvalue() and 'BAD ' in buf.getvalue()


def test_clip_from_shipped_configs():
    k400 = Config.fromfile(str(REPO_ROOT / 'configs/_base_/datasets/recognition_kinetics400.py'))
    assert tool.clip_from_config(k400) == (16, 4, 'data/kinetics400/videos_train')
    pre = Config.fromfile(str(
        REPO_ROOT / 'configs/pretrain/videomaev2/'
        'vit-base-p16_videomaev2-tube90-cell50_32xb32-16x4x1-200e_unlabeled-hybrid.py'))
    assert tool.clip_from_config(pre, list_file='ssv2_train.txt') == \
        (16, 2, 'data/unlabeled_hybrid/ssv2')
    assert tool.clip_from_config(pre, list_file='k710_train.txt')[:2] == (16, 4)


def test_bad_source_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.txt: neither a list file nor a folder'):
        tool.check_videos(str(tmp_path / 'nope.txt'), str(tmp_path / 'o'))
    empty = tmp_path / 'empty.txt'
    empty.write_text('\n\n')
    with pytest.raises(ValueError, match='empty.txt: the list holds no entry'):
        tool.check_videos(str(empty), str(tmp_path / 'o'))
