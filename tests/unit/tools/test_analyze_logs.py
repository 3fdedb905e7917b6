"""tools/analysis/analyze_logs.py on scalars.json files written by mmengine's own
LocalVisBackend (the writer behind every run's vis_data/): exact series, two runs overlaid,
train times, a partial last line, bad input named. A real run's log is read in
tests/e2e/test_recognition_e2e.py."""
import cv2
import numpy as np
import pytest
from mmengine.visualization import LocalVisBackend

from tests.conftest import load_script


def write_run(work_dir, losses, accs, time_s):
    """A work dir as a Runner leaves it: <timestamp>/vis_data/scalars.json."""
    vis = work_dir / '20261207_000000' / 'vis_data'
    backend = LocalVisBackend(str(vis))
    for i, loss in enumerate(losses):
        step = 10 * (i + 1)
        backend.add_scalars(dict(lr=1e-3, loss=loss, time=time_s[i], epoch=1 + i // 2,
                                 iter=step), step=step)
        if i % 2 == 1:  # validation after every 2nd logging interval, x = epoch
            backend.add_scalars({'acc/top1': accs[i // 2]}, step=1 + i // 2)
    backend.close()
    return vis / 'scalars.json'


def test_curves_of_two_runs_and_train_time(tmp_path):
    tool = load_script('tools/analysis/analyze_logs.py')
    a = write_run(tmp_path / 'a', [1.4, 1.0, 0.7, 0.5], [0.5, 0.9], [0.2, 0.3, 0.2, 0.1])
    b = write_run(tmp_path / 'b', [1.4, 1.3, 1.2, 1.1], [0.25, 0.4], [0.5, 0.5, 0.5, 0.5])
    out = tmp_path / 'curves.png'
    curves = tool.main(['plot_curve', str(tmp_path / 'a'), str(b), '--keys', 'loss', 'acc/top1',
                        '--legend', 'A', 'B', '--out', str(out)])
    x, y = curves['A']['loss']
    np.testing.assert_array_equal(x, [10, 20, 30, 40])
    np.testing.assert_allclose(y, [1.4, 1.0, 0.7, 0.5])
    np.testing.assert_allclose(curves['B']['acc/top1'][1], [0.25, 0.4])
    np.testing.assert_array_equal(curves['B']['acc/top1'][0], [1, 2])
    img = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB).astype(int)
    assert img.shape[0] == 2 * 260  # two panels of 2.6 in at 100 dpi
    for rgb in ((31, 119, 180), (255, 127, 14)):  # both runs drawn (C0, C1)
        assert (np.abs(img - rgb).sum(-1) <= 30).sum() > 100, rgb

    times = tool.main(['cal_train_time', str(a), str(b)])
    assert times[str(a)]['mean'] == pytest.approx(0.2)
    assert (times[str(a)]['slowest'], times[str(a)]['fastest']) == (0.3, 0.1)
    assert times[str(b)]['records'] == 4


def test_partial_last_line_and_bad_input(tmp_path):
    tool = load_script('tools/analysis/analyze_logs.py')
    path = write_run(tmp_path / 'a', [1.0, 0.5], [0.5], [0.1, 0.1])
    with open(path, 'a') as f:
        f.write('{"loss": 0.4, "st')  # a killed run's half-written record
    assert len(tool.load_records(str(path))) == 3
    with pytest.raises(KeyError, match=r"no run logged 'acc/top5'.*logged keys: \[.*'loss'"):
        tool.main(['plot_curve', str(path), '--keys', 'acc/top5',
                   '--out', str(tmp_path / 'x.png')])
    with pytest.raises(FileNotFoundError, match='no scalars.json'):
        tool.main(['plot_curve', str(tmp_path / 'nothing')])
    bad = tmp_path / 'bad.json'
    bad.write_text('{"loss": 1, "step": 1}\nnot json\n{"loss": 1, "step": 2}\n')
    with pytest.raises(ValueError, match='bad.json:2: not a JSON record'):
        tool.load_records(str(bad))
