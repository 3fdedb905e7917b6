import numpy as np
import pytest
import torch

from vmae2_mm.utils.tad_time import default_offset_frames, grid_to_seconds, seconds_to_grid


def test_thumos_example_by_hand():
    # fps 30, 16-frame clips at stride 4: g = (10 * 30 - 8) / 4 = 73 and back to 10 s
    assert seconds_to_grid(10.0, 30.0, 4, default_offset_frames(16)) == 73.0
    assert grid_to_seconds(73.0, 30.0, 4, 8.0, duration=100.0) == pytest.approx(10.0)


def test_round_trip_numpy_and_torch():
    t = np.array([[0.3, 2.0], [5.5, 9.75], [11.0, 11.9]])
    for fps, stride, offset in [(30.0, 4, 8.0), (29.97, 16, 8.0), (15.0, 3.7, 1.85), (25, 4, 2.0)]:
        g = seconds_to_grid(t, fps, stride, offset)
        np.testing.assert_allclose(grid_to_seconds(g, fps, stride, offset, duration=12.0), t,
                                   rtol=0, atol=1e-12)
        gt = seconds_to_grid(torch.from_numpy(t), fps, stride, offset)
        assert isinstance(gt, torch.Tensor)
        back = grid_to_seconds(gt, fps, stride, offset, duration=12.0)
        torch.testing.assert_close(back, torch.from_numpy(t), rtol=0, atol=1e-12)


def test_grid_to_seconds_clamps_to_video():
    # g = -3 -> (-12 + 8) / 30 < 0 -> 0; g = 100 -> 408 / 30 = 13.6 > duration 12 -> 12
    out = grid_to_seconds(np.array([-3.0, 100.0]), 30.0, 4, 8.0, duration=12.0)
    np.testing.assert_array_equal(out, [0.0, 12.0])
    assert grid_to_seconds(-3.0, 30.0, 4, 8.0) == 0.0
    assert grid_to_seconds(100.0, 30.0, 4, 8.0) == pytest.approx(13.6)
    t = grid_to_seconds(torch.tensor([-3.0, 100.0]), 30.0, 4, 8.0, duration=12.0)
    assert t.tolist() == [0.0, 12.0]


def test_bad_arguments():
    with pytest.raises(ValueError, match='fps'):
        seconds_to_grid(1.0, 0.0, 4, 8)
    with pytest.raises(ValueError, match='feat_stride'):
        grid_to_seconds(1.0, 30.0, -1, 8)
