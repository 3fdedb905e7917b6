"""VideoRandAugment: timm ``rand-m7-n4-mstd0.5-inc1`` semantics, one draw per clip."""
import numpy as np
import pytest
from mmaction.registry import TRANSFORMS
from PIL import Image

import vmae2_mm  # noqa: F401
from vmae2_mm.datasets.transforms.rand_augment import (INCREASING_OPS, VideoRandAugment,
                                                       apply_op, op_argument,
                                                       parse_rand_augment)


def test_parse_official_string():
    assert parse_rand_augment('rand-m7-n4-mstd0.5-inc1') == dict(
        magnitude=7., num_layers=4, magnitude_std=.5, increasing=True)
    with pytest.raises(ValueError, match="cannot parse 'x3'"):
        parse_rand_augment('rand-m7-x3')
    t = TRANSFORMS.build(dict(type='VideoRandAugment', config_str='rand-m9-n2-mstd0-inc0'))
    assert (t.magnitude, t.num_layers, t.magnitude_std, len(t.ops)) == (9., 2, 0., 15)
    assert len(INCREASING_OPS) == 15


@pytest.mark.parametrize('kw,match', [
    (dict(magnitude=11), 'magnitude=11 must be in'),
    (dict(prob=1.5), 'prob=1.5 must be in'),
    (dict(num_layers=-1), 'num_layers=-1'),
    (dict(interpolation='lanczos'), 'interpolation must be one of'),
])
def test_bad_arguments_name_the_field(kw, match):
    with pytest.raises(ValueError, match=match):
        VideoRandAugment(**kw)


class _Fixed(np.random.RandomState):
    """RandomState whose sign draws are fixed (random_sample -> value)."""

    def __init__(self, value):
        super().__init__(0)
        self.value = value

    def random_sample(self, *a):
        return self.value


@pytest.mark.parametrize('name,expected', [
    ('Rotate', 21.), ('ShearX', .21), ('TranslateYRel', .315), ('ColorIncreasing', 1.63),
    ('SharpnessIncreasing', 1.63), ('PosterizeIncreasing', 2), ('SolarizeIncreasing', 77),
    ('SolarizeAdd', 77), ('Contrast', 1.36), ('Posterize', 2), ('Solarize', 179),
    ('Equalize', None),
])
def test_level_to_argument_at_magnitude_7(name, expected):
    args = op_argument(name, 7., _Fixed(0.))  # sign draw <= 0.5: positive
    if expected is None:
        assert args == ()
    else:
        assert args[0] == pytest.approx(expected)
    if name in ('Rotate', 'ShearX', 'TranslateYRel'):
        assert op_argument(name, 7., _Fixed(1.))[0] == pytest.approx(-expected)
    if name == 'ColorIncreasing':
        assert op_argument(name, 7., _Fixed(1.))[0] == pytest.approx(1 - .63)


def _img(values):
    return Image.fromarray(np.asarray(values, dtype=np.uint8))


def test_pixel_ops_on_hand_checked_values():
    px = np.array([[[10, 100, 200], [50, 128, 255]]], dtype=np.uint8)  # [1, 2, 3]
    fill, nearest = (0, 0, 0), Image.NEAREST
    out = lambda name, *args: np.asarray(apply_op(_img(px), name, args, fill, nearest))  # noqa
    assert out('Invert').tolist() == [[[245, 155, 55], [205, 127, 0]]]
    assert out('SolarizeAdd', 77).tolist() == [[[87, 177, 200], [127, 128, 255]]]
    assert out('SolarizeIncreasing', 77).tolist() == [[[10, 155, 55], [50, 127, 0]]]
    assert out('PosterizeIncreasing', 2).tolist() == [[[0, 64, 192], [0, 128, 192]]]


def test_geometric_ops_on_hand_checked_values():
    a = np.arange(16, dtype=np.uint8).reshape(4, 4, 1).repeat(3, axis=2) * 10
    img, fill = _img(a), (7, 7, 7)
    # output x samples input x + 0.5 * 4: content moves left by 2, fill enters on the right
    got = np.asarray(apply_op(img, 'TranslateXRel', (0.5, ), fill, Image.NEAREST))[..., 0]
    assert got.tolist() == [[20, 30, 7, 7], [60, 70, 7, 7], [100, 110, 7, 7], [140, 150, 7, 7]]
    got = np.asarray(apply_op(img, 'Rotate', (90., ), fill, Image.NEAREST))[..., 0]
    assert np.array_equal(got, np.rot90(a[..., 0], 1))  # counter-clockwise


def _clip(num_frames=3, seed=0):
    rng = np.random.RandomState(seed)
    return [rng.randint(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(num_frames)]


@pytest.mark.parametrize('seed', range(6))
def test_same_draw_is_applied_to_every_frame(seed):
    t = VideoRandAugment()
    frames = _clip()
    np.random.seed(seed)
    ops = t.sample_ops()
    np.random.seed(seed)
    out = t.transform(dict(imgs=[f.copy() for f in frames]))['imgs']
    for frame, got in zip(frames, out):
        img = Image.fromarray(frame)
        for name, args in ops:
            img = apply_op(img, name, args, t.fill, Image.BICUBIC)
        assert np.array_equal(np.asarray(img), got)
    # identical frames stay identical (one draw per clip, not per frame)
    np.random.seed(seed)
    same = t.transform(dict(imgs=[frames[0].copy() for _ in range(4)]))['imgs']
    assert all(np.array_equal(same[0], s) for s in same[1:])
    assert all(s.shape == (24, 32, 3) and s.dtype == np.uint8 for s in out)


def test_draw_statistics_match_rand_m7_n4_mstd05():
    t = VideoRandAugment()
    rng = np.random.RandomState(0)
    draws = [t.sample_ops(rng) for _ in range(4000)]
    fired = np.array([len(d) for d in draws])
    assert fired.max() <= 4
    assert abs(fired.mean() - 2.0) < 0.06          # 4 ops x p=0.5
    assert abs((fired == 0).mean() - 1 / 16) < 0.015
    names = [n for d in draws for n, _ in d]
    counts = np.array([names.count(op) for op in INCREASING_OPS])
    assert counts.min() > 0.8 * len(names) / 15    # uniform over the 15 inc1 ops
    rot = np.array([abs(a[0]) for d in draws for n, a in d if n == 'Rotate'])
    assert abs(rot.mean() / 3. - 7.) < 0.1           # magnitude ~ N(7, 0.5) -> 21 deg
    assert rot.std() / 3. == pytest.approx(0.5, abs=0.08)


def test_bad_frames_are_rejected():
    t = VideoRandAugment(prob=1.)
    np.random.seed(0)
    with pytest.raises(ValueError, match='uint8 RGB frames'):
        t.transform(dict(imgs=[np.zeros((4, 4), np.float32)]))
