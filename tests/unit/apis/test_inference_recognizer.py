"""Sliding-window recognition: window plan, parity with mmaction2's single-clip inference,
batching, JSON record, timeline PNG and labelled video (random-weight tiny recognizer)."""
import json

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from tests.conftest import REPO_ROOT, run_python
from vmae2_mm.apis.inference_recognizer import (VideoTooShortError, WindowRecognizer,
                                                build_recognizer, class_colour,
                                                draw_labels_on_video, draw_timeline,
                                                plan_windows, result_record,
                                                timeline_segments, write_json)
from vmae2_mm.testing.recognition import render_motion_clip, write_mp4

CONFIG = str(REPO_ROOT / 'configs/recognition/videomaev2/'
             'vit-tiny-p8_scratch_1xb16-8x2x1-20e_synthetic-motion-32px.py')
NAMES = ['right', 'up', 'left', 'down']


@pytest.fixture(scope='module')
def model_cfg():
    torch.manual_seed(0)
    return build_recognizer(CONFIG, None, 'cpu')


@pytest.fixture(scope='module')
def two_part_video(tmp_path_factory):
    """100 frames at 25 fps: 48 frames moving right, then 52 moving left (32x32)."""
    rng = np.random.default_rng(0)
    frames = np.concatenate([render_motion_clip(rng, 0, 4, 48, 32, 1.0),
                             render_motion_clip(rng, 2, 4, 52, 32, 1.0)])
    path = tmp_path_factory.mktemp('rec_video') / 'two_part.mp4'
    write_mp4(str(path), frames, 25.0)
    return str(path)


def test_plan_windows_exact():
    # 96 frames, 8 x 2 = 16-frame windows, stride 0.32 s = 8 frames: starts 0..80, no tail
    wins = plan_windows(96, 25.0, 8, 2, 0.32)
    assert [w['start_frame'] for w in wins] == list(range(0, 81, 8))
    assert wins[-1]['end_frame'] == 96
    # 100 frames: the same and a tail window 84..100
    wins = plan_windows(100, 25.0, 8, 2, 0.32)
    assert [w['start_frame'] for w in wins] == list(range(0, 81, 8)) + [84]
    assert wins[3]['frame_inds'].tolist() == [24, 26, 28, 30, 32, 34, 36, 38]
    assert (wins[3]['start_s'], wins[3]['end_s']) == (24 / 25, 40 / 25)
    # default stride = one window: 0, 16, ..., 80 and a tail window 84..100
    wins = plan_windows(100, 25.0, 8, 2)
    assert [w['start_frame'] for w in wins] == [0, 16, 32, 48, 64, 80, 84]
    assert [w['index'] for w in wins] == list(range(7))
    # exactly one window
    assert [w['start_frame'] for w in plan_windows(16, 25.0, 8, 2)] == [0]


def test_plan_windows_bad_input():
    with pytest.raises(VideoTooShortError, match=r'clip\.mp4: 15 frames .* 8 x 2 = 16'):
        plan_windows(15, 25.0, 8, 2, video='clip.mp4')
    with pytest.raises(ValueError, match='stride must be > 0'):
        plan_windows(100, 25.0, 8, 2, 0)


def test_one_window_equals_mmaction_inference(model_cfg, tmp_path):
    """A 16-frame video is one window; mmaction2's inference_recognizer with the val pipeline
    (one clip, frames 0, 2, ..., 14) scores the same clip."""
    from mmaction.apis import inference_recognizer
    model, cfg = model_cfg
    rng = np.random.default_rng(1)
    path = str(tmp_path / 'one.mp4')
    write_mp4(path, render_motion_clip(rng, 1, 4, 16, 32, 1.0), 25.0)
    rec = WindowRecognizer(model, cfg, NAMES)(path, progress=False)
    assert len(rec['windows']) == 1 and rec['scores'].shape == (1, 4)
    ref_cfg = cfg.copy()
    ref_cfg.test_pipeline = cfg.val_pipeline
    model.cfg = ref_cfg
    ref = inference_recognizer(model, path).pred_score.numpy()
    np.testing.assert_allclose(rec['scores'][0], ref, rtol=0, atol=1e-6)


def test_windows_batched_equal_single_clips(model_cfg, two_part_video):
    from decord import VideoReader
    model, cfg = model_cfg
    runner = WindowRecognizer(model, cfg, NAMES, batch_size=3)
    rec = runner(two_part_video, stride_seconds=0.32, topk=2, progress=False)
    assert rec['scores'].shape == (12, 4)
    frames = VideoReader(two_part_video).get_batch(list(range(100))).asnumpy()
    for k, start in ((0, 0), (5, 40), (10, 80), (11, 84)):
        one = runner.score_clips([frames[start + 2 * np.arange(8)]])[0]
        np.testing.assert_allclose(rec['scores'][k], one, rtol=0, atol=1e-5)
    np.testing.assert_allclose(rec['scores'].sum(1), 1, atol=1e-5)  # average_clips='prob'
    # bf16 autocast gives nearly the same probabilities
    bf16 = WindowRecognizer(model, cfg, NAMES, batch_size=4, dtype='bf16')(
        two_part_video, stride_seconds=0.32, progress=False)
    assert np.abs(bf16['scores'] - rec['scores']).max() < 0.05


def test_record_schema_exact(model_cfg, two_part_video, tmp_path):
    model, cfg = model_cfg
    rec = WindowRecognizer(model, cfg, NAMES)(two_part_video, topk=2, progress=False)
    path = str(tmp_path / 'r.json')
    write_json(rec, path)
    with open(path) as f:
        data = json.load(f)
    assert list(data) == ['video', 'num_frames', 'fps', 'duration_s', 'clip_len',
                          'frame_interval', 'window_s', 'stride_s', 'classes', 'windows',
                          'video_topk']
    assert (data['video'], data['num_frames'], data['fps'], data['duration_s']) == \
        ('two_part.mp4', 100, 25.0, 4.0)
    assert (data['clip_len'], data['frame_interval'], data['window_s'], data['stride_s']) == \
        (8, 2, 0.64, 0.64)
    assert data['classes'] == NAMES
    assert [(w['start_s'], w['end_s']) for w in data['windows']] == \
        [(0.0, 0.64), (0.64, 1.28), (1.28, 1.92), (1.92, 2.56), (2.56, 3.2), (3.2, 3.84),
         (3.36, 4.0)]
    w = data['windows'][2]
    assert list(w) == ['index', 'start_frame', 'end_frame', 'start_s', 'end_s', 'topk']
    assert list(w['topk'][0]) == ['label', 'name', 'score'] and len(w['topk']) == 2
    top = int(np.argmax(rec['scores'][2]))
    assert (w['topk'][0]['label'], w['topk'][0]['name']) == (top, NAMES[top])
    mean = rec['scores'].mean(0)
    assert data['video_topk'][0]['label'] == int(np.argmax(mean))
    assert data['video_topk'][0]['score'] == pytest.approx(float(mean.max()), abs=1e-6)


def test_label_count_mismatch_names_the_file():
    with pytest.raises(ValueError, match=r'my_labels\.txt: 3 class names, .* 4 classes'):
        build_recognizer(CONFIG, None, class_names=['a', 'b', 'c'],
                         label_file='my_labels.txt')


def _record_with_labels(labels, fps=25.0):
    """A record whose windows (16 frames, stride 8) have the given top-1 labels."""
    wins = plan_windows(8 * len(labels) + 8, fps, 8, 2, 8 / fps)
    scores = np.full((len(wins), 4), 0.1, np.float32)
    scores[np.arange(len(wins)), labels] = 0.7
    return result_record('x.mp4', 8 * len(labels) + 8, fps, 8, 2, 8 / fps, wins, scores,
                         NAMES, 2), scores


def test_timeline_segments_split_at_centres():
    rec, _ = _record_with_labels([0, 0, 2, 2, 1])
    # centres 0.32, 0.64, 0.96, 1.28, 1.6 s; pieces split halfway between centres
    segs = timeline_segments(rec)
    assert [s[2] for s in segs] == [0, 2, 1]
    assert segs[0][0] == 0.0 and segs[-1][1] == 1.92
    assert segs[0][1] == pytest.approx(0.8) and segs[1][1] == pytest.approx(1.44)


def _runs_of_class_colours(png_path):
    """Colour runs (label, length px) along the image row richest in class colours, left of
    the legends (which start at 77% of the width)."""
    img = cv2.cvtColor(cv2.imread(png_path), cv2.COLOR_BGR2RGB).astype(int)
    img = img[:, :int(0.77 * img.shape[1])]
    colours = {k: np.array(class_colour(k)) for k in range(4)}
    match = np.full(img.shape[:2], -1)
    for k, c in colours.items():
        match[np.abs(img - c).sum(-1) <= 3] = k
    row = match[int(np.argmax((match >= 0).sum(1)))]
    runs = []
    for v in row:
        if v < 0:
            continue
        if runs and runs[-1][0] == v:
            runs[-1][1] += 1
        else:
            runs.append([int(v), 1])
    return [r for r in runs if r[1] > 3]


def test_timeline_png_shows_the_segments(tmp_path):
    rec, scores = _record_with_labels([0, 0, 2, 2, 1])
    path = str(tmp_path / 't.png')
    draw_timeline(rec, scores, path)
    runs = _runs_of_class_colours(path)
    assert [r[0] for r in runs] == [0, 2, 1]
    # piece lengths 0.8, 0.64, 0.48 s of the 1.92 s axis
    lengths = np.array([r[1] for r in runs], float)
    np.testing.assert_allclose(lengths / lengths.sum(), [0.8 / 1.92, 0.64 / 1.92, 0.48 / 1.92],
                               atol=0.01)


def test_labelled_video(tmp_path, two_part_video):
    rec, _ = _record_with_labels([0] * 5 + [2] * 6)  # windows cover 96 of the 100 frames
    out = str(tmp_path / 'l.mp4')
    assert draw_labels_on_video(two_part_video, rec, out) == 100
    cap_in, cap_out = cv2.VideoCapture(two_part_video), cv2.VideoCapture(out)
    assert int(cap_out.get(cv2.CAP_PROP_FRAME_COUNT)) == 100
    for i in range(100):
        ok1, a = cap_in.read()
        ok2, b = cap_out.read()
        assert ok1 and ok2
        assert b.shape == (256, 256, 3)  # 32 px enlarged 8x for readable text
        if i in (10, 90):
            # below the 28 px band: the enlarged input; in it: text in the label's colour
            big = cv2.resize(a, (256, 256), interpolation=cv2.INTER_NEAREST)
            assert np.abs(big[40:].astype(int) - b[40:]).mean() < 8
            band = b[:28].reshape(-1, 3)[:, ::-1].astype(int)
            near = {k: int((np.abs(band - class_colour(k)).sum(1) < 60).sum())
                    for k in range(4)}
            want = 0 if i == 10 else 2
            assert near[want] >= 20 and all(near[k] < near[want] / 4 for k in near
                                            if k != want), near


def test_cli_writes_outputs(tmp_path, two_part_video):
    ckpt = tmp_path / 'random.pth'
    torch.manual_seed(0)
    model, _ = build_recognizer(CONFIG, None)
    torch.save(dict(state_dict=model.state_dict(), meta={}), ckpt)
    labels = tmp_path / 'labels.txt'
    labels.write_text('\n'.join(NAMES) + '\n')
    out = tmp_path / 'out'
    proc = run_python(['tools/infer_recognizer.py', two_part_video, CONFIG, str(ckpt),
                       '--label-file', str(labels), '--out-dir', str(out),
                       '--window-stride', '0.32', '--topk', '2', '--no-progress',
                       '--out-video'], timeout=300)
    assert '12 windows of 0.64 s' in proc.stdout
    assert '    0.32 -     0.96 s' in proc.stdout
    data = json.loads((out / 'two_part.json').read_text())
    assert len(data['windows']) == 12 and data['stride_s'] == 0.32
    assert cv2.imread(str(out / 'two_part_timeline.png')).shape == (400, 1000, 3)
    assert int(cv2.VideoCapture(str(out / 'two_part_labelled.mp4')).get(
        cv2.CAP_PROP_FRAME_COUNT)) == 100


def test_bad_videos_are_named(model_cfg, tmp_path):
    model, cfg = model_cfg
    runner = WindowRecognizer(model, cfg, NAMES)
    with pytest.raises(FileNotFoundError, match='missing.mp4'):
        runner(str(tmp_path / 'missing.mp4'), progress=False)
    garbage = tmp_path / 'garbage.mp4'
    garbage.write_bytes(b'not a video' * 100)
    with pytest.raises(RuntimeError, match=r'garbage\.mp4: cannot be decoded'):
        runner(str(garbage), progress=False)
    short = str(tmp_path / 'short.mp4')
    write_mp4(short, render_motion_clip(np.random.default_rng(0), 0, 4, 12, 32), 25.0)
    with pytest.raises(VideoTooShortError, match=r'short\.mp4: 12 frames'):
        runner(short, progress=False)
