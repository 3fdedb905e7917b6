"""Recognition video lists, validated line by line, with the shared bad-sample policy.

List format (one video per line; what :class:`RecognitionVideoDataset` accepts)::

    relative/path/video.mp4 7
    folder with spaces/clip 01.mp4	12      <- a tab or several spaces also separate

* Fields are separated by runs of spaces or tabs. **The label is the last field and the path is
  everything before it**, kept verbatim (inner spaces included) after stripping the line's
  leading/trailing whitespace; so paths with spaces need no quoting. With ``multi_class=True``
  the labels are all trailing integer fields.
* The label is a decimal integer in ``[0, num_classes)``.
* Blank (whitespace-only) lines are skipped. The file is UTF-8 (a leading byte-order mark is
  ignored); any other bytes are an error naming the line.
* A list with no video is an error.

A malformed line (no label, a label that is not an integer or is out of range) is an error
naming ``file:line`` by default (``on_bad_line='error'``); ``'skip'`` drops it, logs it and
counts it in ``bad_lines``. The same holds in training and at test time, so an impossible
label is never scored and never reaches the loss (where it would be an ``IndexError``).

``num_classes`` comes from the dataset config when given (checked as the list is read). Without
it, :class:`~vmae2_mm.datasets.model_checks.DatasetModelCheckHook` compares the labels found
with the model head's ``num_classes`` before the run starts: a label >= the head size is an
error naming the line of the largest label; a head larger than the labels found is logged
(classes never seen).
"""
import logging
import os.path as osp
from typing import List, Optional, Tuple, Union

from mmaction.datasets import VideoDataset
from mmaction.registry import DATASETS
from mmengine.fileio import get as get_bytes
from mmengine.logging import print_log

from vmae2_mm.utils.video_probe import probe_video

from .bad_samples import BadSampleError, BadSampleLog, BadSampleMixin, check_policy, run_pipeline

LINE_POLICIES = ('error', 'skip')
VFR_POLICIES = ('warn', 'error', 'ignore')


class BadVideoError(BadSampleError):
    """A video in a dataset list is missing, unreadable or shorter than the sampled clip."""


def required_frames_from_pipeline(pipeline_cfg) -> Optional[int]:
    """Frames a ``SampleFrames`` step in ``pipeline_cfg`` spans (``clip_len * frame_interval``),
    or None when the pipeline has no such step."""
    for step in pipeline_cfg or []:
        if isinstance(step, dict):
            if step.get('type') in ('SampleFrames', 'mmaction.SampleFrames'):
                return int(step.get('clip_len', 1)) * int(step.get('frame_interval', 1))
        elif type(step).__name__ == 'SampleFrames':
            return int(step.clip_len) * int(step.frame_interval)
    return None


def _is_int(token: str) -> bool:
    return token.lstrip('+-').isdigit()


def parse_list_line(line: str, multi_class: bool = False
                    ) -> Tuple[str, Union[int, List[int]]]:
    """Split one non-blank list line into (path, label) per the module's format.

    Raises:
        ValueError: without a file:line prefix (the caller adds it).
    """
    text = line.strip()
    fields = text.split()
    if len(fields) < 2:
        raise ValueError(f"expected '<path> <label>' (label = last field), got {text!r}: "
                         'no label')
    if multi_class:
        k = len(fields)
        while k > 1 and _is_int(fields[k - 1]):
            k -= 1
        if k == len(fields):
            raise ValueError(f'last field {fields[-1]!r} is not an integer label in {text!r}')
        labels = [int(t) for t in fields[k:]]
        return _path_before(text, len(fields) - k), labels
    if not _is_int(fields[-1]):
        raise ValueError(f'label {fields[-1]!r} is not an integer (the label is the last '
                         f'whitespace-separated field) in {text!r}')
    return _path_before(text, 1), int(fields[-1])


def _path_before(text: str, num_trailing: int) -> str:
    """``text`` without its last ``num_trailing`` whitespace-separated fields, verbatim."""
    rest = text
    for _ in range(num_trailing):
        rest = rest.rstrip()
        cut = max(rest.rfind(' '), rest.rfind('\t'))
        rest = rest[:cut + 1]
    return rest.rstrip()


def read_list_lines(ann_file: str) -> List[Tuple[int, str]]:
    """Non-blank lines of ``ann_file`` as (1-based line number, text), decoded as UTF-8.

    Raises:
        FileNotFoundError: naming the file.
        ValueError: ``file:line`` of the first line that is not UTF-8, or an empty list.
    """
    try:
        raw = get_bytes(ann_file)
    except FileNotFoundError:
        raise FileNotFoundError(f'annotation list not found: {ann_file}') from None
    if raw.startswith(b'\xef\xbb\xbf'):
        raw = raw[3:]
    out = []
    for lineno, line in enumerate(raw.splitlines(), 1):
        try:
            text = line.decode('utf-8')
        except UnicodeDecodeError as e:
            raise ValueError(
                f'{ann_file}:{lineno}: not UTF-8 (byte {line[e.start]:#04x} at column '
                f'{e.start + 1}); re-encode the list as UTF-8, e.g. `iconv -f latin1 -t utf-8`'
                ) from None
        if text.strip():
            out.append((lineno, text))
    if not out:
        raise ValueError(f'{ann_file}: the list is empty (no video line)')
    return out


@DATASETS.register_module()
class RecognitionVideoDataset(BadSampleMixin, VideoDataset):
    """Labelled video list for action recognition, validated, with bad-video handling.

    mmaction2's ``VideoDataset`` splits lines on one space (a tab, a double space or a path
    with spaces is a ``ValueError`` without a line number), accepts any integer label (an
    out-of-range one is an ``IndexError`` in the loss or scored silently), and a missing or
    corrupt video is a bare decord traceback in a worker; a too-short one loops frames. Here
    the list follows the format in this module's docstring and every bad video is reported
    with its path and handled by the shared policy (:mod:`vmae2_mm.datasets.bad_samples`).

    Registered also as ``VideoDatasetChecked`` (its former name).

    Args:
        ann_file (str): Video list.
        pipeline (list): Transforms (``DecordInit``, ``SampleFrames``, ``DecordDecode``...).
        num_classes (int, optional): Head size; every label must be in ``[0, num_classes)``.
            Without it the labels are checked against the model by
            :class:`~vmae2_mm.datasets.model_checks.DatasetModelCheckHook`. Defaults to None.
        on_bad_line (str): ``'error'`` or ``'skip'`` (log, count in ``bad_lines``) for a
            malformed line or an out-of-range label. Defaults to ``'error'``.
        on_bad_video (str): ``'skip'`` (log and count; training fetches another sample) or
            ``'error'`` (fail fast). Defaults to ``'skip'``.
        min_frames (int | str | None): Frames a video needs. ``'auto'`` takes ``clip_len *
            frame_interval`` of the pipeline's ``SampleFrames``; None disables the check.
            Defaults to ``'auto'``.
        check_on_init (bool): Probe every video when the dataset is built
            (:func:`vmae2_mm.utils.video_probe.probe_video`: decodes the first, middle and last
            frame, checks [H, W, 3] uint8, reads timestamps for VFR) and drop (or raise for)
            bad ones up front. Needed to skip bad videos at test time, where a sample cannot be
            replaced. Defaults to False.
        on_vfr (str): What ``check_on_init`` does with a variable-frame-rate video: ``'warn'``
            (log it, keep it; listed in ``vfr_videos``), ``'error'`` (treat as a bad video)
            or ``'ignore'``. Defaults to ``'warn'``.
        **kwargs: ``VideoDataset`` arguments (``data_prefix``, ``multi_class``,
            ``test_mode``...).
    """

    def __init__(self, ann_file: str, pipeline: list, *, num_classes: Optional[int] = None,
                 on_bad_line: str = 'error', on_bad_video: str = 'skip',
                 min_frames: Union[int, str, None] = 'auto', check_on_init: bool = False,
                 on_vfr: str = 'warn', **kwargs) -> None:
        name = type(self).__name__
        if on_bad_line not in LINE_POLICIES:
            raise ValueError(f'{name}.on_bad_line must be one of {LINE_POLICIES}, got '
                             f'{on_bad_line!r}')
        if on_vfr not in VFR_POLICIES:
            raise ValueError(f'{name}.on_vfr must be one of {VFR_POLICIES}, got {on_vfr!r}')
        check_policy(name, 'on_bad_video', on_bad_video)
        if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
            raise ValueError(f'{name}.num_classes must be a positive int or None, got '
                             f'{num_classes!r}')
        if min_frames == 'auto':
            min_frames = required_frames_from_pipeline(pipeline)
        elif min_frames is not None and (not isinstance(min_frames, int) or min_frames < 1):
            raise ValueError(f"min_frames must be a positive int, 'auto' or None, "
                             f'got {min_frames!r}')
        self.on_bad_line = on_bad_line
        self.on_bad_video = on_bad_video
        self.on_vfr = on_vfr
        self.min_frames = min_frames
        self.check_on_init = check_on_init
        self.bad_sample_log = BadSampleLog(name, on_bad_video)
        self.bad_lines: List[str] = []
        self.vfr_videos: List[str] = []
        #: (largest label, 'file:line' where it is), None before loading or without labels
        self.max_label: Optional[Tuple[int, str]] = None
        super().__init__(ann_file, pipeline, num_classes=num_classes, **kwargs)

    @property
    def bad_videos(self) -> List[str]:
        """Messages of the bad videos met in this process (init probe and loading)."""
        return self.bad_sample_log.messages

    # ------------------------------------------------------------------ list
    def _bad_line(self, msg: str) -> None:
        if self.on_bad_line == 'error':
            raise ValueError(msg + " (set on_bad_line='skip' to drop such lines)")
        self.bad_lines.append(msg)
        print_log(f'{type(self).__name__}: skipping line: {msg}', logger='current',
                  level=logging.WARNING)

    def _parse_list(self) -> List[dict]:
        data_list = []
        for lineno, text in read_list_lines(self.ann_file):
            where = f'{self.ann_file}:{lineno}'
            try:
                path, label = parse_list_line(text, self.multi_class)
            except ValueError as e:
                self._bad_line(f'{where}: {e}')
                continue
            labels = label if isinstance(label, list) else [label]
            bad = [v for v in labels if v < 0 or (self.num_classes is not None
                                                  and v >= self.num_classes)]
            if bad:
                expected = (f'[0, {self.num_classes})' if self.num_classes is not None
                            else '>= 0')
                self._bad_line(f'{where}: label {bad[0]} outside {expected}'
                               + (f' (num_classes={self.num_classes})'
                                  if self.num_classes is not None else ''))
                continue
            top = max(labels)
            if self.max_label is None or top > self.max_label[0]:
                self.max_label = (top, where)
            if self.data_prefix['video'] is not None:
                path = osp.join(self.data_prefix['video'], path)
            data_list.append(dict(filename=path, label=label, list_line=where))
        if not data_list:
            raise ValueError(f'{self.ann_file}: no usable line left ({len(self.bad_lines)} '
                             'skipped as malformed)')
        if self.bad_lines:
            print_log(f'{self.ann_file}: skipped {len(self.bad_lines)} malformed lines',
                      logger='current', level=logging.WARNING)
        return data_list

    def _check_length(self, path: str, total_frames: int) -> None:
        if self.min_frames is not None and total_frames < self.min_frames:
            raise BadVideoError(f'{path}: {total_frames} frames, shorter than the sampled clip '
                                f'({self.min_frames} frames = clip_len x frame_interval)')

    def _probe(self, path: str) -> None:
        """Build-time check of one video with the shared probe
        (:func:`vmae2_mm.utils.video_probe.probe_video`: decord decodes the first, middle and
        last frame, which must be [H, W, 3] uint8, so a 4-channel or damaged file fails here;
        PyAV reads the packet timestamps for the VFR verdict)."""
        result = probe_video(path, self.min_frames)
        if not result.ok:
            raise BadVideoError(result.reason or f'{path}: {", ".join(result.problems)}')
        if result.vfr and self.on_vfr != 'ignore':
            msg = (f'{path}: variable frame rate (average {result.fps} fps); clips sampled by '
                   'frame index span unequal times -- re-encode at a constant rate, e.g. '
                   '`ffmpeg -i IN -fps_mode cfr -r 30 OUT.mp4`')
            if self.on_vfr == 'error':
                raise BadVideoError(msg)
            self.vfr_videos.append(msg)
            print_log(msg, logger='current', level=logging.WARNING)

    def load_data_list(self) -> List[dict]:
        data_list = self._parse_list()
        if not self.check_on_init:
            return data_list
        kept = []
        for info in data_list:
            try:
                self._probe(info['filename'])
                kept.append(info)
            except BadVideoError as err:
                # dropped up front: not an in-epoch skip, so not carried to BadSampleHook
                self.bad_sample_log.report(err, carry=False)
        if len(kept) < len(data_list):
            print_log(f'{self.ann_file}: dropped {len(data_list) - len(kept)} of '
                      f'{len(data_list)} videos as missing, corrupt or too short',
                      logger='current', level=logging.WARNING)
        if not kept:
            raise BadVideoError(f'{self.ann_file}: no usable video left')
        return kept

    # --------------------------------------------------------------- loading
    def prepare_data(self, idx: int):
        """Run the pipeline; a failure in a loading transform or a too-short video is a bad
        video (:mod:`~vmae2_mm.datasets.bad_samples`); other failures are bugs and propagate."""
        results = self.get_data_info(idx)
        path = results.get('filename', '?')
        checked = []

        def check_length(res: dict) -> None:
            if not checked and 'total_frames' in res:
                checked.append(True)
                self._check_length(path, res['total_frames'])

        try:
            return run_pipeline(self.pipeline.transforms, results, path, BadVideoError,
                                check_length)
        except BadVideoError as err:
            if not osp.isfile(path):
                err = BadVideoError(f'{path}: file not found')
            self.bad_sample_log.report(err)
            if self.test_mode:
                raise BadVideoError(f'{err} -- a test sample cannot be skipped; build the '
                                    'dataset with check_on_init=True to drop bad videos up '
                                    'front') from err
            return None


DATASETS.register_module(name='VideoDatasetChecked', module=RecognitionVideoDataset)
#: former name, kept so existing imports and configs work
VideoDatasetChecked = RecognitionVideoDataset


__all__ = ['RecognitionVideoDataset', 'VideoDatasetChecked', 'BadVideoError',
           'parse_list_line', 'read_list_lines',
           'required_frames_from_pipeline']
