"""Transforms for temporal action detection on clip features (ActionFormer semantics).

A pipeline for THUMOS14 training is::

    LoadTADFeatures -> RandomTruncateTADFeatures(max_seq_len=2304, ...) -> PackTADInputs

and for FineAction ``LoadTADFeatures -> ResizeTADFeatures(seq_len=192) ->
[DropOutsideTADSegments] -> PackTADInputs``. Segments live in ``results['gt_segments']`` on the
feature grid (level-0 index, see :mod:`vmae2_mm.utils.tad_time`) from loading on; the
seconds in ``gt_segments_seconds`` are kept so that a change of grid (resizing) re-derives them.
mmaction2's localisation transforms (``LoadLocalizationFeature``, ``GenerateLocalizationLabels``)
serve BSN/BMN's fixed 100-step ActivityNet CSVs and have none of this.
"""
import random
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmaction.registry import TRANSFORMS
from mmaction.structures import ActionDataSample
from mmcv.transforms import BaseTransform
from mmengine.structures import InstanceData

from vmae2_mm.utils.tad_time import seconds_to_grid


def _update_grid_segments(results: dict) -> None:
    """Re-derive ``gt_segments`` [M, 2] (grid units, float32) from the seconds."""
    secs = np.asarray(results.get('gt_segments_seconds', np.zeros((0, 2))),
                      dtype=np.float64).reshape(-1, 2)
    results['gt_segments'] = seconds_to_grid(secs, results['fps'], results['feat_stride'],
                                             results['offset_frames']).astype(np.float32)
    results['gt_labels'] = np.asarray(results.get('gt_labels', np.zeros(0)),
                                      dtype=np.int64).reshape(-1)


@TRANSFORMS.register_module()
class LoadTADFeatures(BaseTransform):
    """Load a video's clip features [T, C] and put its segments on the feature grid.

    Required keys: ``feat_path``, ``fps``, ``duration``, ``feat_stride``, ``feat_num_frames``,
    ``offset_frames``, ``gt_segments_seconds`` [M, 2], ``gt_labels`` [M].

    Added keys: ``feats`` [T, C] float32, ``feat_len``, ``gt_segments`` [M, 2] float32 grid
    units. For fixed-length features (``feat_stride <= 0``) the stride becomes
    ``duration * fps / T`` and each feature covers one stride (ActionFormer ANet case 3).
    Features with NaN/inf values are an error naming the file (they would turn the loss
    non-finite several steps later, far from the cause).

    Args:
        mmap (bool): Memory-map the ``.npy`` (useful for very long videos that are truncated
            anyway). Defaults to False.
    """

    def __init__(self, mmap: bool = False) -> None:
        self.mmap = mmap

    def transform(self, results: dict) -> dict:
        path = results['feat_path']
        try:
            feats = np.load(path, mmap_mode='r' if self.mmap else None, allow_pickle=False)
        except FileNotFoundError:
            raise FileNotFoundError(f'feature file not found: {path}') from None
        except (ValueError, OSError, EOFError) as e:
            raise ValueError(f'{path}: cannot read a .npy feature array ({e})') from None
        if feats.ndim != 2 or feats.shape[0] < 1 or not np.issubdtype(feats.dtype, np.floating):
            raise ValueError(f'{path}: features must be a float array [T, C] with T >= 1, got '
                             f'{feats.dtype} {feats.shape}')
        feats = np.ascontiguousarray(feats, dtype=np.float32)
        finite = np.isfinite(feats)
        if not finite.all():
            rows = np.flatnonzero(~finite.all(axis=1))
            raise ValueError(f'{path}: {int((~finite).sum())} NaN/inf feature values in '
                             f'{len(rows)} of {len(feats)} time steps (first at step '
                             f'{int(rows[0])}); re-extract this video')
        results['feats'] = feats
        results['feat_len'] = int(feats.shape[0])
        if results['feat_stride'] <= 0:
            stride = results['duration'] * results['fps'] / feats.shape[0]
            results['feat_stride'] = stride
            results['feat_num_frames'] = stride
            results['offset_frames'] = 0.5 * stride
        _update_grid_segments(results)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(mmap={self.mmap})'


@TRANSFORMS.register_module()
class ResizeTADFeatures(BaseTransform):
    """Resize features to a fixed length (FineAction / ActivityNet style, ActionFormer's
    ``force_upsampling``).

    Features [T, C] are linearly interpolated (``align_corners=False``) to ``seq_len``; the
    grid then has ``feat_stride' = ((T - 1) * feat_stride + feat_num_frames) / seq_len`` frames
    per step, each feature covers ``feat_num_frames' = feat_stride'`` frames and the centre
    offset is half a cell, ``offset_frames' = 0.5 * feat_stride'``. Segments are re-derived on
    the new grid. A sequence already ``seq_len`` long is not interpolated (as official) but
    still gets the new grid parameters.

    Args:
        seq_len (int): Output length. Defaults to 192 (FineAction in the paper).
    """

    def __init__(self, seq_len: int = 192) -> None:
        if not isinstance(seq_len, int) or seq_len < 1:
            raise ValueError(f'ResizeTADFeatures: seq_len must be a positive int, got {seq_len!r}')
        self.seq_len = seq_len

    def transform(self, results: dict) -> dict:
        feats = results['feats']
        t = feats.shape[0]
        stride = ((t - 1) * results['feat_stride'] + results['feat_num_frames']) / self.seq_len
        if t != self.seq_len:
            x = torch.from_numpy(np.ascontiguousarray(feats.T))[None]  # [1, C, T]
            x = F.interpolate(x, size=self.seq_len, mode='linear', align_corners=False)
            feats = x[0].T.contiguous().numpy()
        results['feats'] = feats
        results['feat_len'] = self.seq_len
        results['feat_stride'] = float(stride)
        results['feat_num_frames'] = float(stride)
        results['offset_frames'] = 0.5 * float(stride)
        _update_grid_segments(results)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(seq_len={self.seq_len})'


@TRANSFORMS.register_module()
class DropOutsideTADSegments(BaseTransform):
    """Training-time fix for segments running past the feature map (ActionFormer ANet).

    With ``end = feat_len + offset`` (offset = ``offset_frames / feat_stride`` grid cells), a
    segment starting at or after ``end`` is dropped, one whose fraction before ``end`` is below
    ``trunc_thresh`` is dropped, and the rest are clipped to ``end``.

    Args:
        trunc_thresh (float): Minimum kept fraction. Defaults to 0.5.
    """

    def __init__(self, trunc_thresh: float = 0.5) -> None:
        if not 0 <= trunc_thresh <= 1:
            raise ValueError(f'DropOutsideTADSegments: trunc_thresh must be in [0, 1], got '
                             f'{trunc_thresh}')
        self.trunc_thresh = trunc_thresh

    def transform(self, results: dict) -> dict:
        segs, labels = results['gt_segments'], results['gt_labels']
        end = results['feat_len'] + results['offset_frames'] / results['feat_stride']
        with np.errstate(divide='ignore', invalid='ignore'):
            ratio = (np.minimum(segs[:, 1], end) - segs[:, 0]) / (segs[:, 1] - segs[:, 0])
        keep = (segs[:, 0] < end) & (ratio >= self.trunc_thresh)
        segs = segs[keep].copy()
        segs[:, 1] = np.minimum(segs[:, 1], end)
        results['gt_segments'] = segs.astype(np.float32)
        results['gt_labels'] = labels[keep]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(trunc_thresh={self.trunc_thresh})'


@TRANSFORMS.register_module()
class RandomTruncateTADFeatures(BaseTransform):
    """Random window / crop of a training sequence (ActionFormer ``truncate_feats``).

    * ``T > max_seq_len``: a random window of ``max_seq_len`` features.
    * otherwise, with ``crop_ratio=(a, b)``: a random window whose length is drawn uniformly
      from ``[max(round(a*T), 1), min(round(b*T), T)]``; a draw of ``T`` keeps everything.
    * otherwise nothing changes.

    A segment ``[s, e]`` survives when its part inside the window widened by the feature
    offset (``offset_frames / feat_stride`` cells on each side) is at least ``trunc_thresh`` of
    its length; it is clipped to that widened window and shifted to the window start. Window
    starts are redrawn (up to ``max_num_trials``) until at least one segment survives
    (``has_action``), or, with ``no_trunc``, until no segment is cut and at least one survives.
    Random numbers come from Python's ``random`` (seeded per worker by mmengine).

    Added keys: ``trunc_start`` (window start on the original grid, int).

    Args:
        max_seq_len (int): Window length. Defaults to 2304 (THUMOS14).
        trunc_thresh (float): Minimum kept fraction of a segment. Defaults to 0.5.
        crop_ratio (Sequence[float], optional): (low, high) fraction for sequences that fit.
            Defaults to None (THUMOS14 uses (0.9, 1.0)).
        max_num_trials (int): Window draws before giving up. Defaults to 200.
        has_action (bool): Redraw until a segment survives. Defaults to True.
        no_trunc (bool): Redraw until no segment is cut. Defaults to False.
    """

    def __init__(self,
                 max_seq_len: int = 2304,
                 trunc_thresh: float = 0.5,
                 crop_ratio: Optional[Sequence[float]] = None,
                 max_num_trials: int = 200,
                 has_action: bool = True,
                 no_trunc: bool = False) -> None:
        errors = []
        if not isinstance(max_seq_len, int) or max_seq_len < 1:
            errors.append(f'max_seq_len must be a positive int, got {max_seq_len!r}')
        if not 0 <= trunc_thresh <= 1:
            errors.append(f'trunc_thresh must be in [0, 1], got {trunc_thresh}')
        if crop_ratio is not None and (len(crop_ratio) != 2
                                       or not 0 < crop_ratio[0] <= crop_ratio[1] <= 1):
            errors.append(f'crop_ratio must be (low, high) with 0 < low <= high <= 1, got '
                          f'{crop_ratio}')
        if max_num_trials < 1:
            errors.append(f'max_num_trials must be >= 1, got {max_num_trials}')
        if errors:
            raise ValueError('RandomTruncateTADFeatures: ' + '; '.join(errors))
        self.max_seq_len = max_seq_len
        self.trunc_thresh = trunc_thresh
        self.crop_ratio: Optional[Tuple[float, float]] = (
            None if crop_ratio is None else (float(crop_ratio[0]), float(crop_ratio[1])))
        self.max_num_trials = max_num_trials
        self.has_action = has_action
        self.no_trunc = no_trunc

    def _window_len(self, feat_len: int) -> Optional[int]:
        """Window length to cut, or None to keep the sequence whole."""
        if feat_len > self.max_seq_len:
            return self.max_seq_len
        if self.crop_ratio is None:
            return None
        lo = max(round(self.crop_ratio[0] * feat_len), 1)
        hi = min(round(self.crop_ratio[1] * feat_len), feat_len)
        length = random.randint(lo, hi)
        return None if length == feat_len else length

    def transform(self, results: dict) -> dict:
        feats, segs, labels = results['feats'], results['gt_segments'], results['gt_labels']
        feat_len = feats.shape[0]
        length = self._window_len(feat_len)
        results['trunc_start'] = 0
        if length is None:
            return results
        offset = results['offset_frames'] / results['feat_stride']
        seg_len = np.abs(segs[:, 1] - segs[:, 0])
        for _ in range(self.max_num_trials):
            start = random.randint(0, feat_len - length)
            left = np.maximum(start - offset, segs[:, 0])
            right = np.minimum(start + length + offset, segs[:, 1])
            with np.errstate(divide='ignore', invalid='ignore'):
                ratio = np.clip(right - left, 0, None) / seg_len
            keep = ratio >= self.trunc_thresh
            if self.no_trunc:
                cut = (ratio > 0) & (ratio < 1)
                if not cut.any() and keep.any():
                    break
            elif not self.has_action or keep.any():
                break
        results['feats'] = np.ascontiguousarray(feats[start:start + length])
        results['feat_len'] = int(length)
        results['gt_segments'] = (np.stack([left[keep], right[keep]], axis=1).reshape(-1, 2)
                                  - start).astype(np.float32)
        results['gt_labels'] = labels[keep]
        results['trunc_start'] = int(start)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(max_seq_len={self.max_seq_len}, '
                f'trunc_thresh={self.trunc_thresh}, crop_ratio={self.crop_ratio}, '
                f'max_num_trials={self.max_num_trials}, has_action={self.has_action}, '
                f'no_trunc={self.no_trunc})')


@TRANSFORMS.register_module()
class PackTADInputs(BaseTransform):
    """Pack features and segments for the TAD detector.

    Output: ``dict(inputs=Tensor[C, T] float32, data_samples=ActionDataSample)`` whose metainfo
    has ``video_id`` (str), ``duration`` (s), ``fps``, ``feat_stride``, ``feat_num_frames``,
    ``offset_frames`` (floats, frames), ``feat_len`` (int T) plus ``meta_keys``, and whose
    ``gt_instances`` are ``InstanceData(segments=FloatTensor[M, 2] grid units,
    labels=LongTensor[M])``. Batches use mmengine's ``pseudo_collate``.

    Args:
        meta_keys (Sequence[str]): Extra keys copied into the metainfo when present. Defaults
            to ``('sample_idx', 'trunc_start')``.
    """

    REQUIRED_META = ('video_id', 'duration', 'fps', 'feat_stride', 'feat_num_frames',
                     'offset_frames', 'feat_len')

    def __init__(self, meta_keys: Sequence[str] = ('sample_idx', 'trunc_start')) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        missing = [k for k in self.REQUIRED_META + ('feats', 'gt_segments', 'gt_labels')
                   if k not in results]
        if missing:
            raise KeyError(f'PackTADInputs: missing keys {missing}; is LoadTADFeatures in the '
                           'pipeline?')
        inputs = torch.from_numpy(np.ascontiguousarray(results['feats'].T, dtype=np.float32))
        sample = ActionDataSample()
        meta = dict(video_id=str(results['video_id']), duration=float(results['duration']),
                    fps=float(results['fps']), feat_stride=float(results['feat_stride']),
                    feat_num_frames=float(results['feat_num_frames']),
                    offset_frames=float(results['offset_frames']),
                    feat_len=int(results['feat_len']))
        meta.update({k: results[k] for k in self.meta_keys if k in results})
        sample.set_metainfo(meta)
        sample.gt_instances = InstanceData(
            segments=torch.as_tensor(results['gt_segments'], dtype=torch.float32).reshape(-1, 2),
            labels=torch.as_tensor(results['gt_labels'], dtype=torch.long).reshape(-1))
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'


__all__ = ['LoadTADFeatures', 'ResizeTADFeatures', 'DropOutsideTADSegments',
           'RandomTruncateTADFeatures', 'PackTADInputs']
