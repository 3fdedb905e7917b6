"""decord (the training/test decoder) on every generated real-codec variant."""
import numpy as np
import pytest

decord = pytest.importorskip('decord')
pytest.importorskip('av')

from vmae2_mm.testing.video_variants import (VARIANTS, marker_corner,  # noqa: E402
                                             read_frame_index, write_variants)

FAST = [n for n in VARIANTS if n not in ('uhd_4k', 'hour_long')]


@pytest.fixture(scope='session')
def variants(tmp_path_factory):
    return write_variants(str(tmp_path_factory.mktemp('variants')), FAST)


@pytest.mark.parametrize('name', [n for n in FAST if n != 'corrupt_middle'])
def test_decord_decodes_variant(variants, name):
    info = variants[name]
    vr = decord.VideoReader(info['path'], num_threads=1)
    assert len(vr) == info['frames']
    frames = vr.get_batch(list(range(len(vr)))).asnumpy()
    assert frames.shape[1:] == (info['height'], info['width'], 3)
    # decord applies the display rotation (marker moves top-left -> top-right for 90 cw)
    assert marker_corner(frames[0]) == {0: 'tl', 90: 'tr'}[info['rotation']]
    upright = [np.rot90(f, k=info['rotation'] // 90) for f in frames]
    assert [read_frame_index(f) for f in upright] == list(range(info['frames']))
    if info['frames'] > 1:
        ts = vr.get_frame_timestamp(list(range(len(vr))))[:, 0]
        np.testing.assert_allclose(ts, info['timestamps'], atol=0.02)


def test_corrupt_middle_raises(variants):
    with pytest.raises(Exception):
        vr = decord.VideoReader(variants['corrupt_middle']['path'], num_threads=1)
        vr.get_batch(list(range(len(vr)))).asnumpy()
