"""tools/analysis/plot_tad_map.py on hand-checked fixtures: exact mAP per tIoU from a results
JSON and from a test.py-style dump, two runs overlaid in one PNG, CSV, bad input named."""
import json
import pickle

import cv2
import numpy as np
import pytest
import torch

from tests.conftest import load_script

TIOUS = [0.3, 0.4, 0.5, 0.6, 0.7]


@pytest.fixture
def files(tmp_path):
    # two test videos, one GT each: 'jump' [0, 10] in v1, 'run' [20, 30] in v2
    database = {
        'v1': dict(subset='Test', duration=40.0, fps=10.0, annotations=[
            dict(segment=[0.0, 10.0], label='jump', label_id=0)]),
        'v2': dict(subset='Test', duration=40.0, fps=10.0, annotations=[
            dict(segment=[20.0, 30.0], label='run', label_id=1)]),
        'v3': dict(subset='Validation', duration=40.0, fps=10.0, annotations=[
            dict(segment=[0.0, 5.0], label='jump', label_id=0)]),
    }
    ann = tmp_path / 'ann.json'
    ann.write_text(json.dumps(dict(database=database)))
    # run A: 'jump' found with tIoU 0.65 (a hit up to 0.6), 'run' with tIoU 0.9
    a = tmp_path / 'a.json'
    a.write_text(json.dumps(dict(version='x', external_data={}, results={
        'v1': [dict(label='jump', score=0.9, segment=[0.0, 6.5])],
        'v2': [dict(label='run', score=0.8, segment=[20.0, 29.0])]})))
    # run B as a tools/test.py dump: 'jump' with tIoU 0.45, 'run' missed (wrong class only)
    b = tmp_path / 'b.pkl'
    with open(b, 'wb') as f:
        pickle.dump([
            dict(video_id='v1', pred_instances=dict(segments=torch.tensor([[0.0, 4.5]]),
                                                    scores=torch.tensor([0.7]),
                                                    labels=torch.tensor([0]))),
            dict(video_id='v2', pred_instances=dict(segments=torch.tensor([[20.0, 30.0]]),
                                                    scores=torch.tensor([0.6]),
                                                    labels=torch.tensor([0])))], f)
    return dict(ann=str(ann), a=str(a), b=str(b), tmp=tmp_path)


def test_exact_map_per_tiou_png_and_csv(files, capsys):
    tool = load_script('tools/analysis/plot_tad_map.py')
    out = files['tmp'] / 'plot' / 'map.png'
    curves = tool.main([files['a'], files['b'], '--ann-file', files['ann'], '--names', 'A',
                        'B', '--out', str(out)])
    # A: class jump AP 1 up to 0.6 then 0, class run AP 1 everywhere -> mean over 2 classes
    np.testing.assert_allclose(curves['A'], [1, 1, 1, 1, 0.5])
    # B: jump AP 1 up to 0.4 (tIoU 0.45), run AP 0 (its only detection is labelled jump and
    # is a false positive of jump in v2, after the true positive in score order)
    np.testing.assert_allclose(curves['B'], [0.5, 0.5, 0, 0, 0])
    rows = (files['tmp'] / 'plot' / 'map.csv').read_text().splitlines()
    assert rows[0] == 'tiou,A,B' and rows[1] == '0.30,100.0000,50.0000'
    assert rows[-1] == '0.70,50.0000,0.0000'
    assert 'avg' in capsys.readouterr().out
    # both lines are drawn: matplotlib's first two colours (C0 blue, C1 orange) are present
    img = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB).astype(int)
    for rgb in ((31, 119, 180), (255, 127, 14)):
        assert (np.abs(img - rgb).sum(-1) <= 30).sum() > 50, rgb


def test_tiou_ranges_and_bad_input(files):
    tool = load_script('tools/analysis/plot_tad_map.py')
    assert tool.parse_tious('0.5:0.05:0.95') == pytest.approx(np.arange(10) * 0.05 + 0.5)
    assert tool.parse_tious('0.5,0.75') == [0.5, 0.75]
    bad = files['tmp'] / 'bad.json'
    bad.write_text(json.dumps(dict(results={'v1': [dict(label='swim', score=1.0,
                                                         segment=[0, 1])]})))
    with pytest.raises(ValueError, match="bad.json: video 'v1': label 'swim' is not a class"):
        tool.main([str(bad), '--ann-file', files['ann'], '--out', str(files['tmp'] / 'x.png')])
    with pytest.raises(FileNotFoundError, match='results file not found'):
        tool.main([str(files['tmp'] / 'none.json'), '--ann-file', files['ann']])
