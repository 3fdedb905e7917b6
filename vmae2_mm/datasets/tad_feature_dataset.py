"""Temporal action detection datasets over pre-extracted clip features (THUMOS14, FineAction).

Annotations are ActionFormer-style JSON::

    {"database": {"<video_id>": {"subset": "Validation" | "Test" | ...,
                                 "duration": 180.5, "fps": 30.0,
                                 "annotations": [{"segment": [t0, t1],      # seconds
                                                  "label": "Diving", "label_id": 7}, ...]}}}

and features are one ``<feat_dir>/<feat_prefix><video_id><feat_ext>`` ``.npy`` array [T, C] per
video (``tools/extract_features.py`` writes them). mmaction2 has no such dataset: its
``ActivityNetDataset`` serves BSN/BMN proposal CSV features with a different JSON layout.

Feature timing has one source of truth. ``tools/extract_features.py`` writes a metadata JSON
next to each feature file (same name, ``.json``) with ``clip_len`` (frames per clip), ``stride``
(frames between clips) and ``fps`` (the video's frame rate); when it resamples to a fixed rate
the grid's rate is under one of :data:`GRID_FPS_KEYS`. The dataset reads them and raises when
they disagree with the config (``feat_num_frames``, ``feat_stride``) or with the annotation's
``fps``; a resampled grid's rate replaces the annotation fps for the seconds <-> grid mapping.
Where no metadata JSON exists (e.g. released features) the config values are used and that is
logged once.

Checks when the dataset is built (each error names the file and the video):

* segments starting before 0 s or ending after ``duration``: ``bad_segments='clip'`` (default;
  clipped to [0, duration], counted in ``counts['clipped_segments']``; a segment with nothing
  left is dropped, ``counts['dropped_segments']``) or ``'error'``;
* the feature array is [T, C] float; all videos share C, and C equals ``feat_dim`` when given
  (the model's ``in_channels``);
* T is within ``length_tolerance`` of the length the timing implies,
  ``(round(duration * fps) - clip_len) // stride + 1`` (tolerance: that fraction of it, at
  least :data:`MIN_LENGTH_SLACK` features, for decoders that count a few frames differently);
  skipped for a video whose fps is only the ``default_fps`` guess (counted, logged);
* NaN/inf values are found when features are loaded (``LoadTADFeatures``), naming the file.
"""
import json
import logging
import os.path as osp
from collections import defaultdict
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmaction.registry import DATASETS
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from vmae2_mm.utils.tad_time import default_offset_frames

MISSING_FEATURE_POLICIES = ('error', 'skip')
BAD_SEGMENT_POLICIES = ('clip', 'error')
#: metadata keys holding the frame rate of a resampled feature grid (frames per second)
GRID_FPS_KEYS = ('grid_fps', 'target_fps')
#: relative fps difference (metadata vs annotation) accepted as equal
FPS_RTOL = 0.01
#: absolute slack (features) of the length check, added to the relative tolerance
MIN_LENGTH_SLACK = 2


def expected_num_features(duration: float, fps: float, clip_len: float, stride: float) -> int:
    """Features a sliding window of ``clip_len`` frames every ``stride`` frames gives over
    ``duration`` seconds at ``fps`` (the extraction rule; 0 when the video is shorter)."""
    frames = int(round(duration * fps))
    return 0 if frames < clip_len else int((frames - clip_len) // stride) + 1


def read_feature_meta(feat_path: str, feat_ext: str) -> Tuple[str, Optional[dict]]:
    """Path of the metadata JSON written next to ``feat_path`` and its content (None if absent).

    Raises:
        ValueError: the file exists but is not a JSON object (names the file).
    """
    stem = feat_path[:-len(feat_ext)] if feat_ext and feat_path.endswith(feat_ext) else \
        osp.splitext(feat_path)[0]
    path = stem + '.json'
    if not osp.isfile(path):
        return path, None
    try:
        with open(path) as f:
            meta = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f'{path}: feature metadata is not valid JSON ({e})') from None
    if not isinstance(meta, dict):
        raise ValueError(f'{path}: feature metadata must be a JSON object')
    return path, meta


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x)


def load_tad_database(ann_file: str) -> Dict[str, dict]:
    """Read and validate an ActionFormer-style annotation JSON.

    Args:
        ann_file (str): Path of the JSON file.

    Returns:
        dict: ``database`` mapping video id -> entry, with every field checked: ``subset`` (str),
        ``duration`` (> 0 s), optional ``fps`` (> 0), ``annotations`` (list of dicts with
        ``segment`` [t0, t1] seconds, t1 >= t0, ``label`` str and ``label_id`` int >= 0).

    Raises:
        ValueError: naming the file, the video and the field when anything is malformed.
    """
    try:
        with open(ann_file) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f'annotation file not found: {ann_file}') from None
    except json.JSONDecodeError as e:
        raise ValueError(f'{ann_file}: not valid JSON ({e})') from None
    if not isinstance(data, dict) or not isinstance(data.get('database'), dict):
        raise ValueError(f'{ann_file}: expected a top-level object with a "database" object '
                         '(ActionFormer format)')
    database = data['database']
    for vid, entry in database.items():
        where = f'{ann_file}: video {vid!r}'
        if not isinstance(entry, dict):
            raise ValueError(f'{where}: entry must be an object, got {type(entry).__name__}')
        if not isinstance(entry.get('subset'), str):
            raise ValueError(f'{where}: field "subset" must be a string, got '
                             f'{entry.get("subset")!r}')
        if not _is_number(entry.get('duration')) or entry['duration'] <= 0:
            raise ValueError(f'{where}: field "duration" must be a positive number of seconds, '
                             f'got {entry.get("duration")!r}')
        if 'fps' in entry and (not _is_number(entry['fps']) or entry['fps'] <= 0):
            raise ValueError(f'{where}: field "fps" must be a positive number, got '
                             f'{entry["fps"]!r}')
        anns = entry.get('annotations', [])
        if not isinstance(anns, list):
            raise ValueError(f'{where}: field "annotations" must be a list, got '
                             f'{type(anns).__name__}')
        for i, ann in enumerate(anns):
            w = f'{where}: annotations[{i}]'
            seg = ann.get('segment') if isinstance(ann, dict) else None
            if (not isinstance(seg, (list, tuple)) or len(seg) != 2
                    or not all(_is_number(s) for s in seg)):
                raise ValueError(f'{w}: field "segment" must be [start, end] in seconds, got '
                                 f'{seg!r}')
            if seg[1] < seg[0]:
                raise ValueError(f'{w}: field "segment" ends before it starts: {seg}')
            lid = ann.get('label_id')
            if not isinstance(lid, int) or isinstance(lid, bool) or lid < 0:
                raise ValueError(f'{w}: field "label_id" must be an int >= 0, got {lid!r}')
            if not isinstance(ann.get('label'), str):
                raise ValueError(f'{w}: field "label" must be a string, got '
                                 f'{ann.get("label")!r}')
    return database


def class_names_from_database(database: Dict[str, dict], ann_file: str = '<json>'
                              ) -> Tuple[str, ...]:
    """Class names indexed by ``label_id``, collected over every subset (as ActionFormer does).

    Ids without any annotation get the placeholder name ``class_<id>``.

    Raises:
        ValueError: if one id carries two names or one name two ids.
    """
    id_to_name: Dict[int, str] = {}
    name_to_id: Dict[str, int] = {}
    for vid, entry in database.items():
        for ann in entry.get('annotations', []):
            lid, name = ann['label_id'], ann['label']
            if id_to_name.setdefault(lid, name) != name or name_to_id.setdefault(name, lid) != lid:
                raise ValueError(f'{ann_file}: video {vid!r}: label {name!r} / label_id {lid} '
                                 f'conflicts with label {id_to_name[lid]!r} / label_id '
                                 f'{name_to_id.get(name)} seen earlier')
    if not id_to_name:
        return ()
    return tuple(id_to_name.get(i, f'class_{i}') for i in range(max(id_to_name) + 1))


@DATASETS.register_module()
class TADFeatureDataset(BaseDataset):
    """Untrimmed videos as clip-feature sequences with action segments (ActionFormer format).

    Each data info holds ``video_id``, ``feat_path``, ``duration`` (s), ``fps``,
    ``feat_stride`` (frames between features; <= 0 means fixed-length features whose stride is
    derived as duration * fps / T when loaded), ``feat_num_frames`` (frames per feature),
    ``offset_frames`` (frame at the centre of feature 0), ``gt_segments_seconds`` [M, 2] float64
    and ``gt_labels`` [M] int64. The TAD transforms (``LoadTADFeatures`` ...) turn it into
    ``inputs`` [C, T] and an ``ActionDataSample`` with ``gt_instances`` on the feature grid.

    Args:
        ann_file (str): ActionFormer-style JSON.
        feat_dir (str): Folder of ``.npy`` features [T, C]; joined to ``data_root`` if relative.
        subset (str | Sequence[str]): Subset(s) to keep, compared lower-cased (e.g.
            ``'validation'`` for THUMOS14 training, ``'test'`` for its evaluation).
        pipeline (list): Transforms.
        feat_prefix (str): File name prefix before the video id. Defaults to ''.
        feat_ext (str): File name suffix after the video id. Defaults to '.npy'.
        feat_stride (float): Frames between consecutive features; <= 0 for fixed-length
            features. Defaults to 4 (THUMOS14 16x4 clips).
        feat_num_frames (float): Frames each feature covers. Defaults to 16.
        offset_frames (float, optional): Frame at the centre of feature 0. Defaults to
            ``0.5 * feat_num_frames`` (ActionFormer); OpenTAD-style features use their own.
        default_fps (float, optional): Used for videos whose entry has no ``fps``; without it
            such a video is an error.
        class_agnostic (bool): Map every label to class 0 ``'action'`` (FineAction proposals).
            Defaults to False.
        num_classes (int, optional): When given, every ``label_id`` must be below it.
        missing_features (str): ``'error'`` raises listing the missing files; ``'skip'`` drops
            those videos and logs how many (ActionFormer skips silently). Defaults to 'error'.
        bad_segments (str): Segments outside [0, duration]: ``'clip'`` (count and log) or
            ``'error'``. Defaults to 'clip'.
        feat_dim (int, optional): Feature width C the model expects (its ``in_channels``);
            every video's features must have it. Defaults to None (only equal across videos).
        length_tolerance (float, optional): Accepted relative difference between T and the
            length implied by duration, fps, clip length and stride (plus
            :data:`MIN_LENGTH_SLACK`); None disables the check. Not applied to fixed-length
            features (``feat_stride <= 0``). Defaults to 0.05.
        filter_empty_gt (bool, optional): Drop videos without annotations. Defaults to
            ``not test_mode``.
        data_root (str): Prefix for ``ann_file`` and ``feat_dir``. Defaults to ''.
        test_mode (bool): Defaults to False.
        **kwargs: Other :class:`mmengine.dataset.BaseDataset` arguments (``indices``,
            ``serialize_data``, ``lazy_init``, ``max_refetch``, ``metainfo``).
    """

    def __init__(self,
                 ann_file: str,
                 feat_dir: str,
                 subset: Union[str, Sequence[str]],
                 pipeline: Optional[List[Union[dict, Callable]]] = None,
                 feat_prefix: str = '',
                 feat_ext: str = '.npy',
                 feat_stride: float = 4,
                 feat_num_frames: float = 16,
                 offset_frames: Optional[float] = None,
                 default_fps: Optional[float] = None,
                 class_agnostic: bool = False,
                 num_classes: Optional[int] = None,
                 missing_features: str = 'error',
                 bad_segments: str = 'clip',
                 feat_dim: Optional[int] = None,
                 length_tolerance: Optional[float] = 0.05,
                 filter_empty_gt: Optional[bool] = None,
                 data_root: str = '',
                 test_mode: bool = False,
                 **kwargs) -> None:
        subsets = [subset] if isinstance(subset, str) else list(subset)
        errors = []
        if not subsets or not all(isinstance(s, str) and s for s in subsets):
            errors.append(f'subset must be a non-empty string or list of strings, got {subset!r}')
        if missing_features not in MISSING_FEATURE_POLICIES:
            errors.append(f'missing_features must be one of {MISSING_FEATURE_POLICIES}, got '
                          f'{missing_features!r}')
        if feat_stride > 0 and not feat_num_frames > 0:
            errors.append(f'feat_num_frames must be > 0, got {feat_num_frames}')
        if default_fps is not None and not default_fps > 0:
            errors.append(f'default_fps must be > 0 or None, got {default_fps}')
        if num_classes is not None and num_classes < 1:
            errors.append(f'num_classes must be >= 1 or None, got {num_classes}')
        if bad_segments not in BAD_SEGMENT_POLICIES:
            errors.append(f'bad_segments must be one of {BAD_SEGMENT_POLICIES}, got '
                          f'{bad_segments!r}')
        if feat_dim is not None and (not isinstance(feat_dim, int) or feat_dim < 1):
            errors.append(f'feat_dim must be a positive int or None, got {feat_dim!r}')
        if length_tolerance is not None and not length_tolerance >= 0:
            errors.append(f'length_tolerance must be >= 0 or None, got {length_tolerance}')
        if errors:
            raise ValueError(f'{type(self).__name__}: ' + '; '.join(errors))
        self.subsets = [s.lower() for s in subsets]
        self.feat_prefix = feat_prefix
        self.feat_ext = feat_ext
        self.feat_stride = float(feat_stride)
        self.feat_num_frames = float(feat_num_frames)
        self.offset_frames = (default_offset_frames(feat_num_frames) if offset_frames is None
                              else float(offset_frames))
        self.default_fps = default_fps
        self.class_agnostic = class_agnostic
        self.num_classes = num_classes
        self.missing_features = missing_features
        self.bad_segments = bad_segments
        self.feat_dim = feat_dim
        self.length_tolerance = length_tolerance
        self.counts: Dict[str, int] = defaultdict(int)
        self.filter_empty_gt = (not test_mode) if filter_empty_gt is None else filter_empty_gt
        self.num_missing_features = 0
        self.missing_feature_videos: List[str] = []
        super().__init__(ann_file=ann_file, data_root=data_root,
                         data_prefix=dict(feat=feat_dir), pipeline=pipeline or [],
                         test_mode=test_mode, **kwargs)

    def feat_path(self, video_id: str) -> str:
        """Feature file of a video."""
        return osp.join(self.data_prefix['feat'],
                        f'{self.feat_prefix}{video_id}{self.feat_ext}')

    def load_data_list(self) -> List[dict]:
        database = load_tad_database(self.ann_file)
        classes = class_names_from_database(database, self.ann_file)
        if self.num_classes is not None and len(classes) > self.num_classes:
            raise ValueError(f'{self.ann_file}: label_id {len(classes) - 1} ({classes[-1]!r}) '
                             f'is out of range for num_classes={self.num_classes}')
        if self.num_classes is not None:
            classes = classes + tuple(f'class_{i}'
                                      for i in range(len(classes), self.num_classes))
        self._metainfo['classes'] = ('action', ) if self.class_agnostic else classes

        data_list, missing, in_subset, empty = [], [], 0, 0
        self._no_meta: List[str] = []
        #: feature width C -> a file that has it (one entry when all videos agree)
        self.feature_widths: Dict[int, str] = {}
        for vid, entry in database.items():
            if entry['subset'].lower() not in self.subsets:
                continue
            in_subset += 1
            fps = entry.get('fps', self.default_fps)
            if fps is None:
                raise ValueError(f'{self.ann_file}: video {vid!r} has no "fps" field and the '
                                 'dataset has no default_fps')
            anns = entry.get('annotations', [])
            segments = np.array([a['segment'] for a in anns], dtype=np.float64).reshape(-1, 2)
            labels = np.array([0 if self.class_agnostic else a['label_id'] for a in anns],
                              dtype=np.int64)
            segments, labels = self._check_segments(vid, float(entry['duration']), segments,
                                                    labels)
            if self.filter_empty_gt and not len(segments):
                empty += 1
                continue
            path = self.feat_path(vid)
            if not osp.isfile(path):
                missing.append(path)
                continue
            fps = self._check_features(vid, path, float(entry['duration']), float(fps),
                                       fps_guessed='fps' not in entry)
            data_list.append(dict(
                video_id=vid, feat_path=path, duration=float(entry['duration']),
                fps=fps, feat_stride=self.feat_stride,
                feat_num_frames=self.feat_num_frames, offset_frames=self.offset_frames,
                gt_segments_seconds=segments, gt_labels=labels))
        self._log_checks()
        self.num_missing_features = len(missing)
        self.missing_feature_videos = missing
        if missing:
            shown = ', '.join(missing[:5]) + (' ...' if len(missing) > 5 else '')
            msg = (f'{type(self).__name__}: {len(missing)} of {len(missing) + len(data_list)} '
                   f'videos of subset {self.subsets} in {self.ann_file} have no feature file: '
                   f'{shown}')
            if self.missing_features == 'error':
                raise FileNotFoundError(msg + " (set missing_features='skip' to drop them)")
            print_log(msg + ' -- skipped', logger='current', level=30)
        if not data_list:
            present = sorted({e['subset'] for e in database.values()})
            if not in_subset:
                raise ValueError(f'{type(self).__name__}: no video of subset {self.subsets} in '
                                 f'{self.ann_file} (subsets present: {present})')
            raise ValueError(
                f'{type(self).__name__}: none of the {in_subset} videos of subset '
                f'{self.subsets} in {self.ann_file} is usable: {empty} have no annotation '
                f'(dropped because filter_empty_gt=True; test_mode keeps them) and '
                f'{len(missing)} have no feature file')
        return data_list

    # ---------------------------------------------------------------- checks
    def _check_segments(self, vid: str, duration: float, segments: np.ndarray,
                        labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Apply ``bad_segments`` to segments [M, 2] (s) outside [0, duration]."""
        outside = (segments[:, 0] < 0) | (segments[:, 1] > duration)
        if not outside.any():
            return segments, labels
        if self.bad_segments == 'error':
            i = int(np.flatnonzero(outside)[0])
            raise ValueError(f'{self.ann_file}: video {vid!r}: annotations[{i}] segment '
                             f'{segments[i].tolist()} s leaves [0, duration={duration}]; fix '
                             "it or set bad_segments='clip'")
        self.counts['clipped_segments'] += int(outside.sum())
        segments = np.clip(segments, 0.0, duration)
        keep = segments[:, 1] > segments[:, 0]
        self.counts['dropped_segments'] += int((~keep).sum())
        return segments[keep], labels[keep]

    def _check_features(self, vid: str, path: str, duration: float, fps: float,
                        fps_guessed: bool = False) -> float:
        """Check the feature array's header and metadata; return the grid fps to use.

        ``fps_guessed``: the annotation has no fps and ``fps`` is the ``default_fps``; the
        metadata's fps then replaces it, and without metadata the length is not checked.
        """
        try:
            feats = np.load(path, mmap_mode='r', allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise ValueError(f'{path}: cannot read a .npy feature array ({e}) (video '
                             f'{vid!r})') from None
        if feats.ndim != 2 or not np.issubdtype(feats.dtype, np.floating) or not len(feats):
            raise ValueError(f'{path}: features of video {vid!r} must be a float array [T, C] '
                             f'with T >= 1, got {feats.dtype} {feats.shape}')
        width = int(feats.shape[1])
        if self.feat_dim is not None and width != self.feat_dim:
            raise ValueError(f'{path}: features of video {vid!r} are {width} wide, the model '
                             f'expects feat_dim={self.feat_dim} (its in_channels)')
        self.feature_widths.setdefault(width, path)
        if len(self.feature_widths) > 1:
            other = next(w for w in self.feature_widths if w != width)
            raise ValueError(f'{path}: features of video {vid!r} are {width} wide but '
                             f'{self.feature_widths[other]} is {other} wide; all videos need '
                             'the same feature width (the model in_channels)')
        meta_path, meta = read_feature_meta(path, self.feat_ext)
        stride, clip_len = self.feat_stride, self.feat_num_frames
        if meta is None:
            self._no_meta.append(meta_path)
        else:
            for key, ours, name in (('stride', stride, 'feat_stride'),
                                    ('clip_len', clip_len, 'feat_num_frames')):
                if key in meta and self.feat_stride > 0 and float(meta[key]) != ours:
                    raise ValueError(f'{meta_path}: features of video {vid!r} were extracted '
                                     f'with {key}={meta[key]} but the dataset config has '
                                     f'{name}={ours:g}; set {name}={meta[key]} (or re-extract)')
            grid_fps = next((float(meta[k]) for k in GRID_FPS_KEYS if k in meta), None)
            if grid_fps is not None:
                fps = grid_fps
            elif 'fps' in meta and fps_guessed:
                fps, fps_guessed = float(meta['fps']), False
            elif 'fps' in meta and abs(float(meta['fps']) - fps) > FPS_RTOL * fps:
                raise ValueError(f'{meta_path}: video {vid!r} was decoded at fps={meta["fps"]} '
                                 f'but {self.ann_file} says fps={fps}; segment times would be '
                                 'mapped to the wrong features. Fix the annotation fps or '
                                 're-extract')
        if fps_guessed:
            self.counts['length_unchecked'] += 1
        elif self.length_tolerance is not None and self.feat_stride > 0:
            expected = expected_num_features(duration, fps, clip_len, stride)
            slack = max(MIN_LENGTH_SLACK, self.length_tolerance * expected)
            if abs(len(feats) - expected) > slack:
                raise ValueError(
                    f'{path}: video {vid!r} has {len(feats)} features, but duration '
                    f'{duration} s x fps {fps:g} with clip_len {clip_len:g} / stride '
                    f'{stride:g} gives {expected} (tolerance {slack:g}); the features do not '
                    'belong to this video or were extracted with another stride/fps '
                    '(length_tolerance=None disables this check)')
        return fps

    def _log_checks(self) -> None:
        if self._no_meta:
            print_log(f'{type(self).__name__}: {len(self._no_meta)} feature files have no '
                      f'metadata JSON (e.g. {self._no_meta[0]}); using the config timing '
                      f'feat_stride={self.feat_stride:g}, feat_num_frames='
                      f'{self.feat_num_frames:g} and the annotation fps', logger='current',
                      level=logging.INFO)
        if self.counts['length_unchecked']:
            print_log(f'{type(self).__name__}: feature lengths of '
                      f"{self.counts['length_unchecked']} videos not checked: their fps is "
                      f'default_fps={self.default_fps}, not read from the annotation or the '
                      'feature metadata', logger='current', level=logging.WARNING)
        for name in ('clipped_segments', 'dropped_segments'):
            if self.counts[name]:
                print_log(f'{self.ann_file}: {self.counts[name]} {name.replace("_", " ")} '
                          f'(outside [0, duration]; bad_segments={self.bad_segments!r})',
                          logger='current', level=logging.WARNING)


@DATASETS.register_module()
class Thumos14FeatureDataset(TADFeatureDataset):
    """THUMOS14 features (ActionFormer JSON; 20 classes; train on ``validation``, test on
    ``test``). Defaults match the VideoMAE V2 release: 16-frame clips at stride 4."""

    def __init__(self, *args, feat_stride: float = 4, feat_num_frames: float = 16,
                 **kwargs) -> None:
        super().__init__(*args, feat_stride=feat_stride, feat_num_frames=feat_num_frames,
                         **kwargs)


@DATASETS.register_module()
class FineActionFeatureDataset(TADFeatureDataset):
    """FineAction features (ActionFormer ANet-style JSON). Defaults match the VideoMAE V2
    release (16-frame clips at stride 16); pair with ``ResizeTADFeatures(seq_len=192)`` and
    ``class_agnostic=True`` for the paper's proposal setting."""

    def __init__(self, *args, feat_stride: float = 16, feat_num_frames: float = 16,
                 **kwargs) -> None:
        super().__init__(*args, feat_stride=feat_stride, feat_num_frames=feat_num_frames,
                         **kwargs)


__all__ = ['TADFeatureDataset', 'Thumos14FeatureDataset', 'FineActionFeatureDataset',
           'load_tad_database', 'class_names_from_database', 'expected_num_features',
           'read_feature_meta']
