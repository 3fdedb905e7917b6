"""UnlabeledHybrid: multi-source unlabeled video data for VideoMAE V2 pre-training."""
import copy
import os.path as osp
from collections import Counter
from typing import Callable, List, Optional, Sequence, Union

from mmaction.datasets.transforms import DecordDecode, DecordInit, RawFrameDecode, SampleFrames
from mmaction.registry import DATASETS, TRANSFORMS
from mmengine.dataset import BaseDataset
from mmengine.fileio import list_from_file

from .bad_samples import BadSampleLog, BadSampleMixin
from .recognition_video_dataset import BadVideoError

SOURCE_KEYS = ('ann_file', 'data_prefix', 'frame_interval', 'filename_tmpl', 'name')


@DATASETS.register_module()
class UnlabeledHybridDataset(BadSampleMixin, BaseDataset):
    """Unlabeled videos from several list files, each with its own sampling stride.

    The paper's UnlabeledHybrid (K710, SSv2, AVA, WebVid, Instagram) is such a union; SSv2-like
    sources use stride 2 and the others 4 (paper appendix C.1). Each ``sources`` entry is a dict:

    * ``ann_file`` (str): list file. Lines are ``path`` or ``path label`` (label ignored; any
      mmaction2 video list works) or ``path start_idx total_frames`` with ``total_frames = -1``
      for a video (the official ``path 0 -1``) and ``> 0`` for a folder of raw frames;
    * ``data_prefix`` (str): prepended to every path. Defaults to ``''``;
    * ``frame_interval`` (int): sampling stride. Defaults to the dataset's ``frame_interval``;
    * ``filename_tmpl`` (str): frame file names of raw-frame folders (AVA: ``'image_{:06}.jpg'``).
      Defaults to ``'img_{:05}.jpg'``;
    * ``name`` (str): shown in logs. Defaults to the list file name.

    One clip of ``clip_len`` frames is sampled and decoded per video (decord for videos,
    mmaction's ``RawFrameDecode`` for frames), then ``pipeline`` (crop/resize, ``FormatShape``,
    masking, ``PackActionInputs``) runs ``num_sample`` times on copies of it: repeated
    augmentation, as the official ``--num_sample 4`` (same frames, fresh crop and masks per view).
    Every item is a list of ``num_sample`` packed views, so the dataloader needs
    ``collate_fn=dict(type='repeat_pseudo_collate')`` (mmaction2's).

    mmaction2's ``RepeatAugDataset`` decodes once as well but takes a single list, one stride,
    only videos, and crashes a worker on a corrupt file; here missing, unreadable or too-short
    videos and unreadable frames are skipped by the shared policy
    (:mod:`vmae2_mm.datasets.bad_samples`): each is logged with its path and a running count per
    process, carried to :class:`~vmae2_mm.datasets.bad_samples.BadSampleHook` for the totals over
    workers, and mmengine's refetch draws another sample (``max_refetch`` bounds the retries).

    Args:
        sources (list[dict]): Data sources, see above.
        pipeline (list[dict | callable]): Per-view transforms after decoding.
        clip_len (int): Frames per clip. Defaults to 16.
        frame_interval (int): Default stride for sources without one. Defaults to 4.
        num_sample (int): Augmented views per decoded clip. Defaults to 1.
        min_frames (int, optional): Videos with fewer frames are skipped as too short. Defaults
            to ``clip_len`` (shorter videos could only repeat frames).
        max_refetch (int): Retries with other samples after skips. Defaults to 100.
        **kwargs: Other ``mmengine.dataset.BaseDataset`` arguments (``indices``,
            ``serialize_data``, ``lazy_init``).
    """

    def __init__(self, sources: Sequence[dict], pipeline: List[Union[dict, Callable]],
                 clip_len: int = 16, frame_interval: int = 4, num_sample: int = 1,
                 min_frames: Optional[int] = None, max_refetch: int = 100, **kwargs) -> None:
        if not isinstance(sources, (list, tuple)) or not sources:
            raise ValueError("UnlabeledHybridDataset: 'sources' must be a non-empty list of dicts "
                             "with an 'ann_file'")
        self.sources = []
        for i, src in enumerate(sources):
            if not isinstance(src, dict) or 'ann_file' not in src:
                raise ValueError(f"UnlabeledHybridDataset: sources[{i}] must be a dict with an "
                                 f"'ann_file', got {src!r}")
            unknown = set(src) - set(SOURCE_KEYS)
            if unknown:
                raise ValueError(f'UnlabeledHybridDataset: sources[{i}] has unknown keys '
                                 f'{sorted(unknown)}; allowed {SOURCE_KEYS}')
            src = {**dict(data_prefix='', frame_interval=frame_interval,
                          filename_tmpl='img_{:05}.jpg', name=osp.basename(src['ann_file'])),
                   **src}
            if not isinstance(src['frame_interval'], int) or src['frame_interval'] < 1:
                raise ValueError(f"UnlabeledHybridDataset: sources[{i}].frame_interval must be a "
                                 f"positive int, got {src['frame_interval']!r}")
            self.sources.append(src)
        for name, value in (('clip_len', clip_len), ('num_sample', num_sample)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'UnlabeledHybridDataset: {name} must be a positive int, got '
                                 f'{value!r}')
        self.clip_len = clip_len
        self.num_sample = num_sample
        self.min_frames = clip_len if min_frames is None else min_frames
        self.skipped = Counter()
        self.bad_sample_log = BadSampleLog(type(self).__name__, 'skip')
        self._samplers = [SampleFrames(clip_len, src['frame_interval'], num_clips=1)
                          for src in self.sources]
        self._video_init = DecordInit(num_threads=1)
        self._video_decode = DecordDecode()
        self._frame_decode = RawFrameDecode()
        # mmaction's registry, so the dataset also builds outside a Runner's default scope
        pipeline = [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline]
        super().__init__(ann_file='', pipeline=pipeline, test_mode=False,
                         max_refetch=max_refetch, **kwargs)

    # ------------------------------------------------------------------ lists
    def load_data_list(self) -> List[dict]:
        data_list = []
        for s, src in enumerate(self.sources):
            if not osp.isfile(src['ann_file']):
                raise FileNotFoundError(f"UnlabeledHybridDataset: sources[{s}].ann_file "
                                        f"{src['ann_file']} does not exist")
            for lineno, line in enumerate(list_from_file(src['ann_file']), 1):
                parts = line.split()
                if not parts:
                    continue
                data_list.append(self._parse_line(parts, src, s, lineno))
        if not data_list:
            raise ValueError('UnlabeledHybridDataset: the source lists contain no video')
        return data_list

    @staticmethod
    def _parse_line(parts: List[str], src: dict, s: int, lineno: int) -> dict:
        path = osp.join(src['data_prefix'], parts[0])
        info = dict(source=s, filename=path)
        if len(parts) in (1, 2):  # `path` or an mmaction2 list `path label`
            return info
        if len(parts) == 3:
            try:
                start, total = int(parts[1]), int(parts[2])
            except ValueError:
                start = total = None
            if start is not None and total == -1:
                return info
            if start is not None and total > 0 and start >= 0:
                return dict(source=s, frame_dir=path, start_index=start, total_frames=total,
                            filename_tmpl=src['filename_tmpl'])
        raise ValueError(f"{src['ann_file']}:{lineno}: expected 'path', 'path label', 'path 0 -1' "
                         f"(video) or 'frame_dir start_idx total_frames' (frames), got "
                         f"{' '.join(parts)!r}")

    # --------------------------------------------------------------- loading
    def _load_clip(self, info: dict) -> dict:
        """Sample and decode one clip; raise BadVideoError for bad data."""
        sampler = self._samplers[info['source']]
        results = dict(info, modality='RGB')
        if 'frame_dir' in results:
            path = results['frame_dir']
            if not osp.isdir(path):
                raise BadVideoError(f'{path}: frame folder not found')
            self._check_length(path, results['total_frames'])
            results = sampler(results)
            try:
                results = self._frame_decode(results)
            except Exception as e:  # missing frame files raise FileNotFoundError/OSError
                raise BadVideoError(f'{path}: frames unreadable ({type(e).__name__}: {e})') from e
            if any(img is None for img in results['imgs']):
                raise BadVideoError(f'{path}: a frame file cannot be decoded as an image')
            return results
        path = results['filename']
        if not osp.isfile(path):
            raise BadVideoError(f'{path}: file not found')
        try:
            results = self._video_init(dict(results, start_index=0))
        except Exception as e:  # decord raises DECORDError / RuntimeError
            raise BadVideoError(f'{path}: cannot be opened ({type(e).__name__}: {e})') from e
        self._check_length(path, results['total_frames'])
        results = sampler(results)
        try:
            results = self._video_decode(results)
        except Exception as e:
            raise BadVideoError(f'{path}: cannot be decoded ({type(e).__name__}: {e})') from e
        return results

    def _check_length(self, path: str, total_frames: int) -> None:
        if total_frames < self.min_frames:
            raise BadVideoError(f'{path}: {total_frames} frames, fewer than min_frames='
                                f'{self.min_frames}')

    def prepare_data(self, idx: int) -> Optional[List[dict]]:
        """Decode one clip and return ``num_sample`` augmented views, or None (-> refetch) for
        bad data. Errors in the augmentation pipeline are bugs and propagate."""
        info = self.get_data_info(idx)
        try:
            clip = self._load_clip(info)
        except BadVideoError as err:
            src = self.sources[info['source']]['name']
            self.skipped[src] += 1
            self.bad_sample_log.report(BadVideoError(f'{err} (source {src})'))
            return None
        clip.pop('video_reader', None)
        views = []
        for _ in range(self.num_sample):
            views.append(self.pipeline(copy.deepcopy(clip)))
        return views


__all__ = ['UnlabeledHybridDataset']
