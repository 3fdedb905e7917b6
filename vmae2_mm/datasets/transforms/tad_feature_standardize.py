"""Per-channel standardisation of TAD clip features with statistics of the training videos.

Why a transform (mmaction2 and ActionFormer have none): features of a weak or randomly
initialised extractor (the generated demos) vary only a few percent around a per-channel
constant, which a short ActionFormer run cannot learn from; standardised with the training
subset's mean/std they can. Released VideoMAE V2 features do not need it (the THUMOS14 /
FineAction recipes do not use it). The statistics come from ``tools/data/tad_feature_stats.py``
so training, validation and test use the same numbers and the ``.npy`` files stay untouched.
"""
import os.path as osp

import numpy as np
from mmcv.transforms import BaseTransform
from mmaction.registry import TRANSFORMS


def load_feature_stats(path: str):
    """``(mean [C], std [C])`` float32 from a ``tad_feature_stats.py`` ``.npz``."""
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'feature statistics file not found: {path}; write it with `python '
            'tools/data/tad_feature_stats.py FEAT_DIR ANN_FILE --subset <training subset> '
            f'--out {path}`')
    with np.load(path, allow_pickle=False) as z:
        if 'mean' not in z or 'std' not in z:
            raise ValueError(f'{path}: expected arrays "mean" and "std", found {sorted(z)}')
        mean, std = z['mean'].astype(np.float32), z['std'].astype(np.float32)
    if mean.ndim != 1 or mean.shape != std.shape or not (std > 0).all():
        raise ValueError(f'{path}: mean and std must be [C] with std > 0, got {mean.shape} '
                         f'and {std.shape}')
    return mean, std


@TRANSFORMS.register_module()
class StandardizeTADFeatures(BaseTransform):
    """``feats [T, C] -> (feats - mean) / std`` with per-channel statistics from a file.

    Required keys: ``feats`` [T, C] float32 (after ``LoadTADFeatures``). Modified: ``feats``.

    Args:
        stats_file (str): ``.npz`` with ``mean`` [C] and ``std`` [C]. An absolute path (or one
            that exists from the working directory) is read at build time, so a missing file
            fails before training starts; a bare relative name (default
            ``'channel_stats.npz'``, what the stats tool writes) is looked up next to each
            video's feature file, i.e. in the dataset's ``feat_dir``, and read once per folder.
    """

    def __init__(self, stats_file: str = 'channel_stats.npz') -> None:
        self.stats_file = stats_file
        self._stats = {}
        if osp.isabs(stats_file) or osp.exists(stats_file):
            self._stats[None] = load_feature_stats(stats_file)

    def _stats_for(self, results: dict):
        if None in self._stats:
            return self._stats[None], self.stats_file
        folder = osp.dirname(results['feat_path'])
        path = osp.join(folder, self.stats_file)
        if folder not in self._stats:
            self._stats[folder] = load_feature_stats(path)
        return self._stats[folder], path

    def transform(self, results: dict) -> dict:
        (mean, std), path = self._stats_for(results)
        feats = results['feats']
        if feats.shape[1] != mean.shape[0]:
            raise ValueError(f'{results.get("feat_path", "features")}: {feats.shape[1]} '
                             f'channels, but {path} has {mean.shape[0]}')
        results['feats'] = ((feats - mean) / std).astype(np.float32)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(stats_file={self.stats_file!r})'
