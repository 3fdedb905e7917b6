"""tools/analysis/confusion_matrix.py on a pickle in the exact tools/test.py --dump format of
a recognizer (list of data-sample dicts with ``pred_score`` [K] and ``gt_label`` [1]): exact
matrix and CSV, the PNG decoded and checked for its cells."""
import csv
import pickle

import cv2
import numpy as np
import pytest
import torch

from tests.conftest import load_script

tool = load_script('tools/analysis/confusion_matrix.py')

# ground truth -> predicted: class 0: 0, 0, 1; class 1: 1, 1; class 2: 0, 2, 2, 2
PAIRS = [(0, 0), (0, 0), (0, 1), (1, 1), (1, 1), (2, 0), (2, 2), (2, 2), (2, 2)]


def _dump(path):
    samples = []
    for gt, pred in PAIRS:
        score = torch.full((3,), 0.1)
        score[pred] = 0.8
        samples.append(dict(pred_score=score, pred_label=torch.tensor([pred]),
                            gt_label=torch.tensor([gt]), num_classes=3))
    with open(path, 'wb') as f:
        pickle.dump(samples, f)


def test_counts_and_csv_exact(tmp_path):
    pkl = tmp_path / 'r.pkl'
    _dump(pkl)
    labels = tmp_path / 'labels.txt'
    labels.write_text('run\njump\nswim\n')
    cm = tool.main([str(pkl), '--out-dir', str(tmp_path), '--label-file', str(labels),
                    '--include-values'])
    np.testing.assert_array_equal(cm, [[2, 1, 0], [0, 2, 0], [1, 0, 3]])
    with open(tmp_path / 'confusion_matrix.csv') as f:
        rows = list(csv.reader(f))
    assert rows == [['gt\\pred', 'run', 'jump', 'swim'], ['run', '2', '1', '0'],
                    ['jump', '0', '2', '0'], ['swim', '1', '0', '3']]


def test_row_normalised_and_png(tmp_path):
    pkl = tmp_path / 'r.pkl'
    _dump(pkl)
    cm = tool.main([str(pkl), '--out-dir', str(tmp_path), '--normalize', '--include-values'])
    np.testing.assert_allclose(cm, [[2 / 3, 1 / 3, 0], [0, 1, 0], [0.25, 0, 0.75]])
    np.testing.assert_allclose(cm.sum(1), 1)
    img = cv2.imread(str(tmp_path / 'confusion_matrix.png'))
    assert img is not None
    # the heat map has one flat colour per distinct value (0, 1/4, 1/3, 2/3, 3/4, 1): the
    # colours covering large areas are at least those six
    colours, counts = np.unique(img.reshape(-1, 3), axis=0, return_counts=True)
    big = colours[counts > 2000]
    assert len(big) >= 6 + 1  # plus the white background


def test_bad_input_named(tmp_path):
    bad = tmp_path / 'bad.pkl'
    with open(bad, 'wb') as f:
        pickle.dump([dict(pred_instances={})], f)
    with pytest.raises(ValueError, match=r'bad\.pkl: recognition samples need'):
        tool.main([str(bad), '--out-dir', str(tmp_path)])
    pkl = tmp_path / 'r.pkl'
    _dump(pkl)
    labels = tmp_path / 'two.txt'
    labels.write_text('a\nb\n')
    with pytest.raises(ValueError, match=r'two\.txt: 2 class names, .* 3 classes'):
        tool.main([str(pkl), '--out-dir', str(tmp_path), '--label-file', str(labels)])
