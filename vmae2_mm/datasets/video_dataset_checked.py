"""mmaction2 ``VideoDataset`` that reports missing, corrupt and too-short videos by path."""
import logging
import os.path as osp
from typing import Optional, Union

from mmaction.datasets import VideoDataset
from mmaction.registry import DATASETS
from mmengine.logging import print_log

BAD_VIDEO_POLICIES = ('skip', 'error')


class BadVideoError(RuntimeError):
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


def probe_video(path: str) -> int:
    """Open ``path`` with decord and return its frame count; raise BadVideoError otherwise."""
    if not osp.isfile(path):
        raise BadVideoError(f'{path}: file not found')
    try:
        import decord
        return len(decord.VideoReader(path, num_threads=1))
    except Exception as e:  # decord raises its own DECORDError and RuntimeErrors
        raise BadVideoError(f'{path}: cannot be decoded ({type(e).__name__}: {e})') from e


@DATASETS.register_module()
class VideoDatasetChecked(VideoDataset):
    """``VideoDataset`` (``relative/path.mp4 label`` lists) with explicit bad-video handling.

    mmaction2 would raise a bare decord traceback inside a worker for a missing or corrupt file
    and silently loop a too-short video. Here every such video is reported with its path and,
    per ``on_bad_video``, either skipped and counted or raised as :class:`BadVideoError`.

    Args:
        on_bad_video (str): ``'skip'`` (log and count; training fetches another sample) or
            ``'error'`` (fail fast). Defaults to ``'skip'``.
        min_frames (int | str | None): Frames a video needs. ``'auto'`` takes ``clip_len *
            frame_interval`` of the pipeline's ``SampleFrames``; None disables the check.
            Defaults to ``'auto'``.
        check_on_init (bool): Probe every video when the dataset is built and drop (or raise
            for) bad ones up front. Needed to skip bad videos at test time, where a sample
            cannot be replaced. Defaults to False.
        **kwargs: ``VideoDataset`` arguments.
    """

    def __init__(self, ann_file: str, pipeline: list, *, on_bad_video: str = 'skip',
                 min_frames: Union[int, str, None] = 'auto', check_on_init: bool = False,
                 **kwargs) -> None:
        if on_bad_video not in BAD_VIDEO_POLICIES:
            raise ValueError(f'on_bad_video must be one of {BAD_VIDEO_POLICIES}, '
                             f'got {on_bad_video!r}')
        if min_frames == 'auto':
            min_frames = required_frames_from_pipeline(pipeline)
        elif min_frames is not None and (not isinstance(min_frames, int) or min_frames < 1):
            raise ValueError(f"min_frames must be a positive int, 'auto' or None, "
                             f'got {min_frames!r}')
        self.on_bad_video = on_bad_video
        self.min_frames = min_frames
        self.check_on_init = check_on_init
        self.bad_videos = []
        super().__init__(ann_file, pipeline, **kwargs)

    def _check_length(self, path: str, total_frames: int) -> None:
        if self.min_frames is not None and total_frames < self.min_frames:
            raise BadVideoError(f'{path}: {total_frames} frames, shorter than the sampled clip '
                                f'({self.min_frames} frames = clip_len x frame_interval)')

    def _bad(self, err: BadVideoError) -> None:
        self.bad_videos.append(str(err))
        if self.on_bad_video == 'error':
            raise err
        print_log(f'skipping bad video ({len(self.bad_videos)} skipped so far in this process): '
                  f'{err}', logger='current', level=logging.WARNING)

    def load_data_list(self):
        data_list = super().load_data_list()
        if not self.check_on_init:
            return data_list
        kept = []
        for info in data_list:
            try:
                self._check_length(info['filename'], probe_video(info['filename']))
                kept.append(info)
            except BadVideoError as err:
                self._bad(err)
        if len(kept) < len(data_list):
            print_log(f'{self.ann_file}: dropped {len(data_list) - len(kept)} of '
                      f'{len(data_list)} videos as missing, corrupt or too short',
                      logger='current', level=logging.WARNING)
        if not kept:
            raise BadVideoError(f'{self.ann_file}: no usable video left')
        return kept

    def prepare_data(self, idx: int):
        """Run the pipeline; a failure while opening/decoding a video (``*Init`` / ``*Decode``
        transforms) or a too-short video is a bad video, reported with its path. Failures in
        other transforms are bugs, not bad data, and propagate."""
        results = self.get_data_info(idx)
        path = results.get('filename', '?')
        length_checked = False
        try:
            for transform in self.pipeline.transforms:
                name = type(transform).__name__
                try:
                    results = transform(results)
                except Exception as e:
                    if not name.endswith(('Init', 'Decode')):
                        raise
                    reason = ('file not found' if not osp.isfile(path) else
                              f'cannot be decoded by {name} ({type(e).__name__}: {e})')
                    raise BadVideoError(f'{path}: {reason}') from e
                if results is None:
                    return None
                if not length_checked and 'total_frames' in results:
                    self._check_length(path, results['total_frames'])
                    length_checked = True
            return results
        except BadVideoError as err:
            self._bad(err)
            if self.test_mode:
                raise BadVideoError(f'{err} -- a test sample cannot be skipped; build the '
                                    'dataset with check_on_init=True to drop bad videos up '
                                    'front') from err
            return None
