"""StandardizeTADFeatures + tools/data/tad_feature_stats.py: the statistics are exactly those of
the training subset's feature rows, and standardised training features have zero mean and unit
variance per channel."""
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

from vmae2_mm.datasets.transforms import StandardizeTADFeatures

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


@pytest.fixture
def feats(tmp_path):
    rng = np.random.default_rng(0)
    db, arrays = {}, {}
    for i, (subset, t) in enumerate([('Validation', 7), ('Validation', 12), ('Test', 5)]):
        x = (rng.normal(size=(t, 3)) * [1.0, 0.01, 5.0] + [3.0, -2.0, 0.5]).astype(np.float32)
        np.save(tmp_path / f'v{i}.npy', x)
        arrays[f'v{i}'] = x
        db[f'v{i}'] = dict(subset=subset, duration=10.0, fps=10.0, annotations=[])
    ann = tmp_path / 'ann.json'
    ann.write_text(json.dumps(dict(database=db)))
    return tmp_path, ann, arrays


def test_stats_tool_and_transform(feats):
    folder, ann, arrays = feats
    out = subprocess.run([sys.executable, osp.join(ROOT, 'tools/data/tad_feature_stats.py'),
                          str(folder), str(ann), '--subset', 'Validation'],
                         capture_output=True, text=True, check=True)
    assert 'over 19 features of 2 Validation videos' in out.stdout
    train = np.concatenate([arrays['v0'], arrays['v1']]).astype(np.float64)
    with np.load(folder / 'channel_stats.npz') as z:
        np.testing.assert_allclose(z['mean'], train.mean(0), rtol=1e-12)
        np.testing.assert_allclose(z['std'], train.std(0) + 1e-6, rtol=1e-9)
    t = StandardizeTADFeatures()  # channel_stats.npz next to each feature file
    rows = [t(dict(feats=arrays[v], feat_path=str(folder / f'{v}.npy')))['feats']
            for v in ('v0', 'v1')]
    z = np.concatenate(rows)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-5)
    # unit variance up to the 1e-6 guard added to std (visible on the 0.01-scale channel)
    np.testing.assert_allclose(z.std(0), train.std(0) / (train.std(0) + 1e-6), rtol=1e-5)


def test_bad_inputs_are_named(feats, tmp_path):
    folder, ann, arrays = feats
    with pytest.raises(FileNotFoundError, match=r'channel_stats\.npz.*tad_feature_stats\.py'):
        StandardizeTADFeatures()(dict(feats=arrays['v0'], feat_path=str(folder / 'v0.npy')))
    with pytest.raises(FileNotFoundError, match='not found'):
        StandardizeTADFeatures(stats_file=str(tmp_path / 'missing.npz'))  # at build time
    np.savez(tmp_path / 'four.npz', mean=np.zeros(4), std=np.ones(4))
    t = StandardizeTADFeatures(stats_file=str(tmp_path / 'four.npz'))
    with pytest.raises(ValueError, match=r'v0\.npy: 3 channels, but .*four\.npz has 4'):
        t(dict(feats=arrays['v0'], feat_path=str(folder / 'v0.npy')))
    sys.path.insert(0, osp.join(ROOT, 'tools', 'data'))
    try:
        from tad_feature_stats import feature_stats
    finally:
        sys.path.pop(0)
    with pytest.raises(ValueError, match=r"no video in subset 'Training'.*'Test', 'Validation'"):
        feature_stats(str(folder), str(ann), 'Training')
