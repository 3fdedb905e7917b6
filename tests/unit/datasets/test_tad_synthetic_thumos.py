"""Generated mini-THUMOS: real mp4s whose action segments are visible and class-specific."""
import colorsys
import json
import os.path as osp

import cv2
import numpy as np
import pytest

from vmae2_mm.testing.thumos import generate_mini_thumos


@pytest.fixture(scope='module')
def mini(tmp_path_factory):
    out = tmp_path_factory.mktemp('mini_thumos')
    return generate_mini_thumos(str(out), num_val=2, num_test=2, num_classes=3, size=64,
                                fps=10.0, min_duration=10.0, max_duration=14.0,
                                num_corrupt=1, seed=5)


def test_json_format(mini):
    db = json.loads(open(mini['ann_file']).read())['database']
    assert sorted(db) == ['video_test_0000001', 'video_test_0000002',
                          'video_validation_0000001', 'video_validation_0000002']
    assert {e['subset'] for e in db.values()} == {'Validation', 'Test'}
    names = open(mini['classes_file']).read().split()
    for vid, e in db.items():
        assert e['fps'] == 10.0 and 10.0 <= e['duration'] <= 14.0
        assert len(e['annotations']) >= 1
        prev_end = 0.0
        for a in e['annotations']:
            f0, f1 = a['segment(frames)']
            assert a['segment'] == [f0 / 10.0, f1 / 10.0]
            assert 0 < a['segment'][0] < a['segment'][1] < e['duration']
            assert a['segment'][0] >= prev_end  # non-overlapping, in time order
            prev_end = a['segment'][1]
            assert names[a['label_id']] == a['label']


def test_deterministic(mini, tmp_path):
    again = generate_mini_thumos(str(tmp_path), num_val=2, num_test=2, num_classes=3, size=64,
                                 fps=10.0, min_duration=10.0, max_duration=14.0, seed=5)
    assert open(again['ann_file']).read() == open(mini['ann_file']).read()


def test_actions_visible_and_class_coloured(mini):
    from decord import VideoReader
    db = json.loads(open(mini['ann_file']).read())['database']
    for vid, e in db.items():
        vr = VideoReader(mini['videos'][vid], num_threads=1)
        assert len(vr) == round(e['duration'] * e['fps'])
        frames = vr.get_batch(list(range(len(vr)))).asnumpy()
        hsv = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2HSV) for f in frames])
        vivid = (hsv[..., 1] > 150) & (hsv[..., 2] > 150)  # saturated bright sprite pixels
        count = vivid.reshape(len(frames), -1).sum(1)
        inside = np.zeros(len(frames), bool)
        for a in e['annotations']:
            f0, f1 = a['segment(frames)']
            inside[f0:f1] = True
            # hue of the sprite pixels (OpenCV hue is 0..179) is the class hue k / K
            hue = np.median(hsv[f0:f1][..., 0][vivid[f0:f1]]) / 180.0
            expect = colorsys.rgb_to_hsv(*colorsys.hsv_to_rgb(a['label_id'] / 3, 1, 1))[0]
            assert min(abs(hue - expect), 1 - abs(hue - expect)) < 0.05, (vid, a)
        assert count[inside].min() > 30  # the sprite covers ~1/7 of the side squared
        assert count[~inside].max() < 5  # background is muted


def test_corrupt_file_and_bad_arguments(mini, tmp_path):
    assert len(mini['corrupt']) == 1 and osp.getsize(mini['corrupt'][0]) == 4096
    with pytest.raises(ValueError, match='min_duration'):
        generate_mini_thumos(str(tmp_path), min_duration=5, max_duration=2)
    with pytest.raises(ValueError, match='multiple of 32'):
        generate_mini_thumos(str(tmp_path), size=48)
