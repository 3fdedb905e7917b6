"""AVA / AVA-Kinetics keyframe datasets: mmaction2's, with bad annotations and frames handled.

mmaction2's ``AVADataset``/``AVAKineticsDataset`` fail late and vaguely on bad input: a short
CSV row is a bare ``IndexError``, a label id >= ``num_classes`` an ``IndexError`` while
building multi-hot labels, a proposal outside [0, 1] an ``AssertionError`` inside a dataloader
worker, an empty proposal array a ``ValueError`` from ``max()`` of an empty sequence, and a
missing frame a ``FileNotFoundError`` deep in ``RawFrameDecode``. The subclasses here validate
everything when the dataset is built (errors name the file and line) and report bad samples
by frame directory. A keyframe whose timestamp lies outside its video's time range, which
mmaction2 turns into a clip of one repeated edge frame, is an error or a skip. Both classes
share :class:`_AVAChecks`; they live in one file because they differ only in how clip ids map
to timestamps and proposal keys. Bad frames follow the shared policy of
:mod:`vmae2_mm.datasets.bad_samples`.
"""
import logging
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional

import numpy as np
from mmaction.datasets import AVADataset, AVAKineticsDataset
from mmaction.registry import DATASETS
from mmengine.fileio import load
from mmengine.logging import print_log

from .bad_samples import BadSampleError, BadSampleLog, BadSampleMixin, run_pipeline

POLICIES = dict(unknown_label=('error', 'skip'), bad_box=('clip', 'error'),
                empty_proposals=('full_frame', 'drop'), bad_sample=('skip', 'error'),
                keyframe_outside=('error', 'skip'))


class BadAVASampleError(BadSampleError):
    """A keyframe's frames are missing or unreadable (message names the frame directory)."""


class _AVAChecks:
    """Validation shared by :class:`AVADatasetChecked` and :class:`AVAKineticsDatasetChecked`.

    Args:
        unknown_label (str): A CSV row whose action id is outside ``[1, num_classes - 1]``:
            ``'error'`` (raise naming file and line) or ``'skip'`` (drop the row, count and
            log). With ``custom_classes``, rows of other ids are dropped silently as in
            mmaction2. Defaults to ``'error'``.
        bad_box (str): A GT box or proposal outside [0, 1]: ``'clip'`` (clip to [0, 1], count
            and log) or ``'error'``. Boxes that are empty after clipping (x2 <= x1 or
            y2 <= y1) are always an error for GT rows and dropped for proposals. Defaults to
            ``'clip'``.
        empty_proposals (str): A keyframe whose proposal array is empty: ``'full_frame'`` (one
            [0, 0, 1, 1] box with score 1, what mmaction2 does for a keyframe missing from the
            proposal file) or ``'drop'`` (drop the keyframe; at test time its GT then counts as
            missed). Keyframes missing from the file get the full-frame box as in mmaction2
            and are counted. Defaults to ``'full_frame'``.
        bad_sample (str): Missing/unreadable frames while loading a sample: ``'skip'`` (log,
            count, and in training fetch another sample; at test time a sample cannot be
            replaced, so it raises :class:`BadAVASampleError`) or ``'error'``. Defaults to
            ``'skip'``.
        check_frames_on_init (bool): When the dataset is built, check that every keyframe's
            frame directory and every frame its widest clip can read exist, and drop
            (or raise for) bad keyframes up front -- the way to skip them at test time.
            Defaults to False.
        keyframe_outside (str): A keyframe whose timestamp is outside
            ``[timestamp_start, timestamp_end]`` of its video (seconds; per clip for
            AVA-Kinetics), or, for video input, whose frame is past the decoded video's last
            frame: ``'error'`` (raise naming file and line) or ``'skip'`` (drop the keyframe,
            count and log; at decode time it is a bad sample). mmaction2 would clip every frame
            index to the video's edge and train or score on one repeated frame.
            Defaults to ``'error'``.
    """

    def _init_checks(self, unknown_label, bad_box, empty_proposals, bad_sample,
                     check_frames_on_init, kwargs, keyframe_outside='error') -> None:
        for name, value in (('unknown_label', unknown_label), ('bad_box', bad_box),
                            ('empty_proposals', empty_proposals), ('bad_sample', bad_sample),
                            ('keyframe_outside', keyframe_outside)):
            if value not in POLICIES[name]:
                raise ValueError(f'{type(self).__name__}.{name} must be one of '
                                 f'{POLICIES[name]}, got {value!r}')
        self.unknown_label, self.bad_box = unknown_label, bad_box
        self.empty_proposals, self.bad_sample = empty_proposals, bad_sample
        self.check_frames_on_init = check_frames_on_init
        self.keyframe_outside = keyframe_outside
        self.counts: Dict[str, int] = defaultdict(int)
        self.bad_sample_log = BadSampleLog(type(self).__name__, bad_sample)
        ann_file = kwargs.get('ann_file')
        if ann_file is not None and not osp.isfile(ann_file):
            raise FileNotFoundError(f'{type(self).__name__}.ann_file: file not found: '
                                    f'{ann_file}')
        for name in ('exclude_file', 'label_file', 'proposal_file'):
            path = kwargs.get(name)
            if path is not None and not osp.isfile(path):
                raise FileNotFoundError(f'{type(self).__name__}.{name}: file not found: {path}')
        proposal_file = kwargs.get('proposal_file')
        self._checked_proposals = (self._load_proposals(proposal_file)
                                   if proposal_file is not None else None)

    # -- proposals ------------------------------------------------------------------------
    def _load_proposals(self, path: str) -> dict:
        proposals = load(path)
        if not isinstance(proposals, dict):
            raise TypeError(f'{path}: expected a dict "video_id,ts" -> array [K, 4|5], got '
                            f'{type(proposals).__name__}')
        out = {}
        for key, arr in proposals.items():
            arr = np.asarray(arr, dtype=np.float32)
            if arr.size == 0:
                self.counts['empty_proposals'] += 1
                if self.empty_proposals == 'drop':
                    out[key] = None
                    continue
                arr = np.array([[0, 0, 1, 1, 1]], dtype=np.float32)
            if arr.ndim != 2 or arr.shape[1] not in (4, 5):
                raise ValueError(f'{path}: proposals of {key!r} must be [K, 4] or [K, 5], got '
                                 f'{arr.shape}')
            boxes = arr[:, :4]
            outside = (boxes < 0) | (boxes > 1)
            if outside.any():
                if self.bad_box == 'error':
                    raise ValueError(f'{path}: proposals of {key!r} leave [0, 1]: '
                                     f'{boxes[outside.any(1)][0].tolist()}')
                self.counts['clipped_proposals'] += int(outside.any(1).sum())
                arr = arr.copy()
                arr[:, :4] = np.clip(boxes, 0, 1)
            keep = (arr[:, 2] > arr[:, 0]) & (arr[:, 3] > arr[:, 1])
            if not keep.all():
                self.counts['empty_area_proposals'] += int((~keep).sum())
                arr = arr[keep]
                if len(arr) == 0:
                    arr = np.array([[0, 0, 1, 1, 1]], dtype=np.float32)[:, :arr.shape[1]]
            out[key] = arr
        for name in ('empty_proposals', 'clipped_proposals', 'empty_area_proposals'):
            if self.counts[name]:
                policy = self.empty_proposals if name == 'empty_proposals' else self.bad_box
                print_log(f'{path}: {self.counts[name]} {name.replace("_", " ")} '
                          f'(policy {policy!r})', logger='current', level=logging.WARNING)
        return out

    def _proposal_key(self, img_key: str) -> str:
        return img_key

    # -- annotations ----------------------------------------------------------------------
    def _label_column(self, label: int, lineno: int) -> Optional[int]:
        """Score column of an action id; None to drop the row silently (not a custom class)."""
        if self.custom_classes is not None:
            if label in self.custom_classes[1:]:
                return self.custom_classes.index(label)
            return None  # mmaction2 semantics: rows of other classes are not used
        if 1 <= label < self.num_classes:
            return label
        msg = (f'{self.ann_file}:{lineno}: action id {label} outside [1, '
               f'{self.num_classes - 1}] (num_classes={self.num_classes})')
        if self.unknown_label == 'error':
            raise ValueError(msg + "; fix the row or set unknown_label='skip'")
        self.counts['unknown_label_rows'] += 1
        return -1

    def _read_rows(self) -> List[dict]:
        rows = []
        with open(self.ann_file) as f:
            lines = f.read().splitlines()
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            parts = line.strip().split(',')
            if len(parts) != 8:
                raise ValueError(f'{self.ann_file}:{lineno}: expected 8 columns (video_id,'
                                 f'timestamp,x1,y1,x2,y2,action_id,person_id), got '
                                 f'{len(parts)}: {line!r}')
            try:
                timestamp, label, entity_id = int(parts[1]), int(parts[6]), int(parts[7])
                box = np.array([float(v) for v in parts[2:6]])
            except ValueError as e:
                raise ValueError(f'{self.ann_file}:{lineno}: bad number in {line!r}') from e
            column = self._label_column(label, lineno)
            if column is None or column < 0:
                continue
            if ((box < 0) | (box > 1)).any():
                if self.bad_box == 'error':
                    raise ValueError(f'{self.ann_file}:{lineno}: box {box.tolist()} leaves the '
                                     "normalised range [0, 1]; set bad_box='clip' to clip it")
                self.counts['clipped_gt_boxes'] += 1
                box = np.clip(box, 0, 1)
            if box[2] <= box[0] or box[3] <= box[1]:
                raise ValueError(f'{self.ann_file}:{lineno}: empty box {box.tolist()} '
                                 '(needs x1 < x2 and y1 < y2)')
            rows.append(dict(video_id=parts[0], timestamp=timestamp, entity_box=box,
                             label=column, entity_id=entity_id, lineno=lineno))
        return rows

    def _keyframe_info(self, video_id: str, timestamp: int) -> dict:
        """Per-keyframe fields besides boxes/labels (shot_info, frame_dir, ...)."""
        raise NotImplementedError

    def load_data_list(self) -> List[dict]:
        """Parse the CSV with validation, then group rows per keyframe and per box exactly as
        mmaction2 does (multi-hot labels via ``parse_img_record``)."""
        by_key = defaultdict(list)
        for row in self._read_rows():
            by_key[f"{row['video_id']},{row['timestamp']:04d}"].append(row)
        data_list = []
        for img_key, records in by_key.items():
            video_id, timestamp = img_key.split(',')
            lineno = records[0]['lineno']
            info = self._keyframe_info(video_id, int(timestamp))
            if not self._keyframe_inside(info, lineno):
                continue
            bboxes, labels, entity_ids = self.parse_img_record(records)
            info.update(img_key=img_key, ann=dict(gt_bboxes=bboxes, gt_labels=labels,
                                                  entity_ids=entity_ids))
            data_list.append(info)
        for name in ('unknown_label_rows', 'clipped_gt_boxes', 'keyframes_outside_video'):
            n = self.counts[name]
            if n:
                print_log(f'{self.ann_file}: {n} {name.replace("_", " ")}',
                          logger='current', level=logging.WARNING)
        return data_list

    def _keyframe_inside(self, info: dict, lineno: int) -> bool:
        """Whether the keyframe's timestamp is inside its video; else error or count a skip."""
        start = info.get('timestamp_start', self.timestamp_start)
        end = info.get('timestamp_end', self.timestamp_end)
        if start <= info['timestamp'] <= end:
            return True
        msg = (f"{self.ann_file}:{lineno}: keyframe {info['video_id']},{info['timestamp']} is "
               f'outside its video ({start} to {end} s); its clip would be one repeated edge '
               'frame')
        if self.keyframe_outside == 'error':
            raise ValueError(msg + "; fix the row, the timestamp_start/timestamp_end range, or "
                             "set keyframe_outside='skip'")
        self.counts['keyframes_outside_video'] += 1
        return False

    def _check_keyframe_frame(self, results: dict) -> None:
        """For video input, once decoding knows ``total_frames``: the keyframe's frame must
        be inside the video (mmaction2 would clip the clip to the last frame)."""
        if 'total_frames' not in results or 'timestamp' not in results:
            return
        start = results.get('timestamp_start', self.timestamp_start)
        centre = results['fps'] * (results['timestamp'] - start) + self.start_index
        if not 0 <= centre < results['total_frames'] + self.start_index:
            raise BadAVASampleError(
                f"{results.get('filename', results.get('frame_dir', '?'))}: keyframe "
                f"{results.get('img_key')} is frame {centre}, outside the video's "
                f"{results['total_frames']} frames")

    def filter_data(self) -> List[dict]:
        data_list = super().filter_data()
        if self._checked_proposals is not None:
            kept = []
            for info in data_list:
                props = self._checked_proposals.get(self._proposal_key(info['img_key']), 0)
                if props is None:  # empty proposals under 'drop'
                    self.counts['dropped_keyframes_without_proposals'] += 1
                    continue
                if isinstance(props, int):
                    self.counts['keyframes_missing_from_proposal_file'] += 1
                kept.append(info)
            for name in ('dropped_keyframes_without_proposals',
                         'keyframes_missing_from_proposal_file'):
                if self.counts[name]:
                    print_log(f'{self.proposal_file}: {self.counts[name]} '
                              f'{name.replace("_", " ")}'
                              + (' (given one full-frame box, as mmaction2 does)'
                                 if name.startswith('keyframes_missing') else ''),
                              logger='current', level=logging.WARNING)
            data_list = kept
        if self.check_frames_on_init:
            data_list = [info for info in data_list if self._frames_ok(info)]
        if not data_list:
            raise ValueError(f'{self.ann_file}: no usable keyframe left')
        return data_list

    # -- frames ---------------------------------------------------------------------------
    def _needed_frame_range(self, info: dict):
        """Every frame index the pipeline's widest ``SampleAVAFrames`` clip (with jitter) can
        read for this keyframe."""
        span = 0
        for t in self.pipeline.transforms:
            if type(t).__name__ == 'SampleAVAFrames':
                span = max(span, t.clip_len * t.frame_interval)
        ts_start = info.get('timestamp_start', self.timestamp_start)
        center = info['fps'] * (info['timestamp'] - ts_start) + self.start_index
        lo, hi = info['shot_info']
        first = int(np.clip(center - span // 2, lo, hi - 1)) + self.start_index
        last = int(np.clip(center + span // 2, lo, hi - 1)) + self.start_index
        return range(first, last + 1)

    def _frames_ok(self, info: dict) -> bool:
        if 'frame_dir' not in info:
            return True  # video input is checked when decoding
        try:
            if not osp.isdir(info['frame_dir']):
                raise BadAVASampleError(f"{info['frame_dir']}: frame directory not found "
                                        f"(keyframe {info['img_key']})")
            for idx in self._needed_frame_range(info):
                path = osp.join(info['frame_dir'], self.filename_tmpl.format(idx))
                if not osp.isfile(path):
                    raise BadAVASampleError(f'{path}: frame not found (keyframe '
                                            f"{info['img_key']})")
            return True
        except BadAVASampleError as err:
            self._bad(err)
            return False

    @property
    def bad_samples(self) -> List[str]:
        """Messages of the bad keyframes met in this process (init check and loading)."""
        return self.bad_sample_log.messages

    def _bad(self, err: BadAVASampleError) -> None:
        # found when the dataset is built: never drawn in an epoch, so not carried
        self.bad_sample_log.report(err, carry=False)

    def prepare_data(self, idx: int):
        """Run the pipeline; a failure in a loading transform (``RawFrameDecode``,
        ``DecordInit``...) is a bad sample reported with its frame directory and keyframe
        (skipped in training, raised at test time); other failures propagate."""
        results = self.get_data_info(idx)
        where = (f"{results.get('frame_dir', results.get('filename', '?'))}: keyframe "
                 f"{results.get('img_key')}")
        try:
            return run_pipeline(self.pipeline.transforms, results, where, BadAVASampleError,
                                self._check_keyframe_frame)
        except BadAVASampleError as err:
            self.bad_sample_log.report(err)
            if self.test_mode:
                raise BadAVASampleError(f'{err} -- a test sample cannot be skipped; build the '
                                        'dataset with check_frames_on_init=True to drop bad '
                                        'keyframes up front') from err
            return None


@DATASETS.register_module()
class AVAKeyframeDataset(BadSampleMixin, _AVAChecks, AVADataset):
    """AVA person boxes with actions per keyframe: mmaction2's ``AVADataset`` with validated
    annotations/proposals/keyframe times and bad-frame handling. Registered also as
    ``AVADatasetChecked`` (its former name).

    Samples, labels (multi-hot over ``num_classes`` with column 0 = background), proposal
    thresholding and frame sampling are mmaction2's. Note that, as in mmaction2, samples are
    enumerated from the GT CSV keyframes (not from the proposal keyframes).

    Args:
        unknown_label, bad_box, empty_proposals, bad_sample, check_frames_on_init,
            keyframe_outside: see :class:`_AVAChecks`.
        **kwargs: ``AVADataset`` arguments (``ann_file``, ``pipeline``, ``exclude_file``,
            ``label_file``, ``proposal_file``, ``timestamp_start``, ``timestamp_end``, ...).
    """

    def __init__(self, *args, unknown_label: str = 'error', bad_box: str = 'clip',
                 empty_proposals: str = 'full_frame', bad_sample: str = 'skip',
                 check_frames_on_init: bool = False, keyframe_outside: str = 'error',
                 **kwargs) -> None:
        self._init_checks(unknown_label, bad_box, empty_proposals, bad_sample,
                          check_frames_on_init, kwargs, keyframe_outside)
        super().__init__(*args, **kwargs)
        if self._checked_proposals is not None:
            self.proposals = self._checked_proposals

    def _keyframe_info(self, video_id: str, timestamp: int) -> dict:
        shot_info = ((0, (self.timestamp_end - self.timestamp_start) * self._FPS)
                     if self.use_frames else None)
        frame_dir = video_id
        if self.data_prefix['img'] is not None:
            frame_dir = osp.join(self.data_prefix['img'], frame_dir)
        info = dict(frame_dir=frame_dir, video_id=video_id, timestamp=timestamp,
                    shot_info=shot_info, fps=self._FPS)
        if not self.use_frames:
            info['filename'] = info.pop('frame_dir')
        return info


@DATASETS.register_module()
class AVAKineticsKeyframeDataset(BadSampleMixin, _AVAChecks, AVAKineticsDataset):
    """mmaction2 ``AVAKineticsDataset`` (AVA videos + Kinetics clips ``<ytid>_<start>_<end>``)
    with the validation of :class:`AVAKeyframeDataset`. Registered also as
    ``AVAKineticsDatasetChecked`` (its former name).

    Args:
        unknown_label, bad_box, empty_proposals, bad_sample, check_frames_on_init,
            keyframe_outside: see :class:`_AVAChecks`.
        **kwargs: ``AVAKineticsDataset`` arguments.
    """

    def __init__(self, *args, unknown_label: str = 'error', bad_box: str = 'clip',
                 empty_proposals: str = 'full_frame', bad_sample: str = 'skip',
                 check_frames_on_init: bool = False, keyframe_outside: str = 'error',
                 **kwargs) -> None:
        self._init_checks(unknown_label, bad_box, empty_proposals, bad_sample,
                          check_frames_on_init, kwargs, keyframe_outside)
        super().__init__(*args, **kwargs)
        if self._checked_proposals is not None:
            self.proposals = self._checked_proposals

    def _proposal_key(self, img_key: str) -> str:
        # AVAKineticsDataset: Kinetics clips look proposals up under the bare YouTube id
        if len(img_key) == 16:
            return img_key
        video_id, timestamp = img_key.split(',')
        return f"{'_'.join(video_id.split('_')[:-2])},{int(timestamp):04d}"

    def _keyframe_info(self, video_id: str, timestamp: int) -> dict:
        start, end = self.get_timestamp(video_id)
        frame_dir = video_id
        if self.data_prefix['img'] is not None:
            frame_dir = osp.join(self.data_prefix['img'], frame_dir)
        return dict(frame_dir=frame_dir, video_id=video_id, timestamp=timestamp,
                    timestamp_start=start, timestamp_end=end,
                    shot_info=(1, (end - start) * self._FPS + 1), fps=self._FPS)


DATASETS.register_module(name='AVADatasetChecked', module=AVAKeyframeDataset)
DATASETS.register_module(name='AVAKineticsDatasetChecked', module=AVAKineticsKeyframeDataset)
#: former names, kept so existing imports and configs work
AVADatasetChecked = AVAKeyframeDataset
AVAKineticsDatasetChecked = AVAKineticsKeyframeDataset

__all__ = ['AVAKeyframeDataset', 'AVAKineticsKeyframeDataset', 'AVADatasetChecked',
           'AVAKineticsDatasetChecked', 'BadAVASampleError']
