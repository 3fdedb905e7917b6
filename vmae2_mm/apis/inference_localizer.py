"""Temporal action detection on raw videos: video -> clip features -> ActionFormer -> segments.

Features are extracted in memory with :mod:`vmae2_mm.apis.feature_extraction`
(``build_extractor_from_config`` + ``ClipFeatureExtractor.extract``: the same clips, stride and
preprocessing as ``tools/extract_features.py``), optionally cached as the same
``<stem>.npy`` / ``<stem>.json`` pair that tool writes (an existing pair is reused). The
features go through the localizer config's test transforms after ``LoadTADFeatures`` (e.g.
``StandardizeTADFeatures``, ``PackTADInputs``) with the grid metadata a
``TADFeatureDataset`` gives a feature file (``feat_stride`` = extraction stride,
``feat_num_frames`` = clip length, ``offset_frames`` = half a clip, ``duration`` = frames /
fps), and ActionFormer's ``test_step`` decodes and Soft-NMSes them into segments in seconds,
exactly as ``tools/test.py`` does for a feature file.

Outputs per video: an ActivityNet-style result JSON (``{"version", "results": {video_id: [
{"label", "score", "segment": [start_s, end_s]}]}, "external_data"}``, the format
``TADmAPMetric`` and ActivityNet's evaluator read), an SRT subtitle file and a timeline PNG of
the segments scoring at least ``min_score``. Neither ActionFormer nor OpenTAD ships raw-video
inference (an open request in both), which is why this module exists;
``tools/infer_localizer.py`` is its thin CLI.
"""
import copy
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose

from vmae2_mm.apis.feature_extraction import (VIDEO_EXTS, ClipFeatureExtractor,
                                              atomic_save_json, atomic_save_npy,
                                              build_extractor_from_config,
                                              finished_features_problem, list_videos)


def build_localizer(config: Union[str, Config], checkpoint: Optional[str], device: str = 'cpu'):
    """ActionFormer of a TAD config in eval mode, weights from ``checkpoint`` (vmae2_mm /
    mmengine or official layout, loaded strictly; None keeps random weights: tests only).

    Returns:
        tuple: ``(model, cfg)``.
    """
    from mmaction.registry import MODELS

    import vmae2_mm  # noqa: F401  (registration)
    from vmae2_mm.checkpoint.actionformer import load_actionformer_checkpoint

    cfg = Config.fromfile(config) if isinstance(config, str) else copy.deepcopy(config)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.pop('init_cfg', None)  # weights come from the checkpoint
    model = MODELS.build(model_cfg)
    if checkpoint is not None:
        if not osp.exists(checkpoint):
            raise FileNotFoundError(f'localizer checkpoint {checkpoint!r} not found')
        load_actionformer_checkpoint(model, checkpoint, strict=True)
    return model.to(device).eval(), cfg


def localizer_class_names(cfg: Config, label_file: Optional[str] = None) -> List[str]:
    """Class names by label id: from ``label_file`` (one per line), else from the annotation
    file of the config's test dataset if it exists, else ``class_<i>``; checked against the
    head's ``num_classes``."""
    from vmae2_mm.datasets.tad_feature_dataset import (class_names_from_database,
                                                      load_tad_database)
    num_classes = int(cfg.model.head.num_classes)
    if label_file:
        from vmae2_mm.checkpoint.label_maps import read_class_list
        names, source = read_class_list(label_file), label_file
    else:
        ds = cfg.get('test_dataloader', {}).get('dataset', {})
        ann = ds.get('ann_file')
        if ann and not osp.isabs(ann) and ds.get('data_root'):
            ann = osp.join(ds['data_root'], ann)
        if not ann or not osp.isfile(ann):
            return [f'class_{i}' for i in range(num_classes)]
        names = list(class_names_from_database(load_tad_database(ann), ann))
        names += [f'class_{i}' for i in range(len(names), num_classes)]
        source = ann
    if len(names) != num_classes:
        raise ValueError(f'{source}: {len(names)} class names, but the localizer of '
                         f'{cfg.filename} has {num_classes} classes')
    return names


def post_load_transforms(cfg: Config, feat_stats: Optional[str] = None) -> Compose:
    """The localizer's test transforms after ``LoadTADFeatures``.

    A ``StandardizeTADFeatures`` step with a relative ``stats_file`` normally reads it next to
    the dataset's feature files; for raw videos the statistics of the training features must
    be named: ``feat_stats`` replaces its ``stats_file``.

    Raises:
        ValueError: no ``LoadTADFeatures`` step, or standardisation without ``feat_stats``
            and no readable ``stats_file``.
    """
    pipeline = copy.deepcopy(list(cfg.test_dataloader.dataset.pipeline))
    names = [t['type'] for t in pipeline]
    if 'LoadTADFeatures' not in names:
        raise ValueError(f'{cfg.filename}: the test pipeline has no LoadTADFeatures step '
                         f'({names})')
    steps = pipeline[names.index('LoadTADFeatures') + 1:]
    for step in steps:
        if step['type'] == 'StandardizeTADFeatures':
            stats = step.get('stats_file', 'channel_stats.npz')
            if feat_stats:
                step['stats_file'] = osp.abspath(feat_stats)
            elif not osp.isabs(stats):
                raise ValueError(
                    f'{cfg.filename}: the test pipeline standardises features with '
                    f'{stats!r} of the training feature folder; pass its path '
                    '(feat_stats / --feat-stats)')
    from mmaction.registry import TRANSFORMS
    return Compose([TRANSFORMS.build(step) for step in steps])


def feature_meta(video_id: str, num_frames: int, fps: float, clip_len: int, stride: int
                 ) -> dict:
    """The grid metadata ``TADFeatureDataset`` gives a feature file of this video.

    Feature ``i`` covers frames ``[i * stride, i * stride + clip_len)``; its centre,
    ``i * stride + clip_len / 2`` frames, is the grid point ActionFormer predicts around, so a
    grid position ``g`` is ``(g * stride + clip_len / 2) / fps`` seconds.
    """
    from vmae2_mm.utils.tad_time import default_offset_frames
    return dict(video_id=video_id, duration=num_frames / fps, fps=float(fps),
                feat_stride=float(stride), feat_num_frames=float(clip_len),
                offset_frames=default_offset_frames(clip_len),
                gt_segments_seconds=np.zeros((0, 2)), gt_labels=np.zeros(0, np.int64))


class VideoLocalizer:
    """Raw video(s) -> segments in seconds with class names and scores.

    Args:
        model (nn.Module): ActionFormer (eval mode).
        cfg (Config): Its config (test transforms, ``num_classes``).
        extractor (ClipFeatureExtractor): Feature extractor matching the training features.
        class_names (Sequence[str]): K names.
        feat_stats (str, optional): ``channel_stats.npz`` of the training features, for
            configs that standardise features.
        cache_dir (str, optional): Read / write ``<stem>.npy`` + ``<stem>.json`` here, as
            ``tools/extract_features.py`` does.
    """

    def __init__(self, model, cfg: Config, extractor: ClipFeatureExtractor,
                 class_names: Sequence[str], feat_stats: Optional[str] = None,
                 cache_dir: Optional[str] = None) -> None:
        self.model = model
        self.cfg = cfg
        self.extractor = extractor
        self.class_names = list(class_names)
        self.transforms = post_load_transforms(cfg, feat_stats)
        self.cache_dir = cache_dir

    def features(self, video: str) -> Tuple[np.ndarray, dict]:
        """Clip features [N, C] float32 and ``dict(frames, fps, ...)`` of ``video``, from the
        cache when it holds this video's pair."""
        stem = osp.splitext(osp.basename(video))[0]
        if self.cache_dir:
            npy = osp.join(self.cache_dir, f'{stem}.npy')
            meta_path = osp.join(self.cache_dir, f'{stem}.json')
            if osp.isfile(npy) and finished_features_problem(
                    npy, self.extractor.clip_len, self.extractor.stride,
                    self.extractor.fps) is None:
                with open(meta_path) as f:
                    meta = json.load(f)
                return np.load(npy, allow_pickle=False), meta
        if not osp.isfile(video):
            raise FileNotFoundError(f'video {video!r} not found')
        feats, info = self.extractor.extract(video)
        if self.cache_dir:
            os.makedirs(self.cache_dir, exist_ok=True)
            meta = dict(video=osp.basename(video), source=video, **info,
                        fps_used=self.extractor.fps_record(),
                        clip_len=self.extractor.clip_len, stride=self.extractor.stride,
                        feat_dim=int(feats.shape[1]), dtype='float32', shape=list(feats.shape),
                        amp=self.extractor.amp,
                        preprocessing=self.extractor.preprocessing_record())
            atomic_save_json(osp.join(self.cache_dir, f'{stem}.json'), meta)
            atomic_save_npy(osp.join(self.cache_dir, f'{stem}.npy'), feats)
        return feats, info

    @torch.no_grad()
    def localize_features(self, video_id: str, feats: np.ndarray, num_frames: int, fps: float
                          ) -> List[dict]:
        """Features [N, C] of a video -> segments ``[{label, name, score, segment: [s, e]}]``
        (seconds, sorted by score, descending)."""
        results = feature_meta(video_id, num_frames, fps, self.extractor.clip_len,
                               self.extractor.stride)
        results.update(feats=np.ascontiguousarray(feats, dtype=np.float32),
                       feat_len=int(feats.shape[0]),
                       feat_path=osp.join(self.cache_dir or '', f'{video_id}.npy'),
                       gt_segments=np.zeros((0, 2), np.float32))
        packed = self.transforms(results)
        out = self.model.test_step(dict(inputs=[packed['inputs']],
                                        data_samples=[packed['data_samples']]))[0]
        pred = out.pred_instances
        order = torch.argsort(pred.scores, descending=True, stable=True)
        return [dict(label=int(pred.labels[i]), name=self.class_names[int(pred.labels[i])],
                     score=float(pred.scores[i]),
                     segment=[float(pred.segments[i, 0]), float(pred.segments[i, 1])])
                for i in order.tolist()]

    def __call__(self, video: str) -> dict:
        """One video -> ``dict(video_id, duration, fps, num_frames, segments)``."""
        feats, info = self.features(video)
        video_id = osp.splitext(osp.basename(video))[0]
        segments = self.localize_features(video_id, feats, int(info['frames']),
                                          float(info['fps']))
        return dict(video_id=video_id, video=video, duration=info['frames'] / info['fps'],
                    fps=float(info['fps']), num_frames=int(info['frames']), segments=segments)


def anet_results(records: Sequence[dict], version: str = 'vmae2_mm') -> dict:
    """ActivityNet-style results of videos: ``{"version", "results": {video_id: [{"label",
    "score", "segment": [start_s, end_s]}]}, "external_data": {}}`` (seconds rounded to 1 ms,
    scores to 1e-6)."""
    return dict(version=version,
                results={r['video_id']: [dict(label=s['name'], score=round(s['score'], 6),
                                              segment=[round(s['segment'][0], 3),
                                                       round(s['segment'][1], 3)])
                                         for s in r['segments']] for r in records},
                external_data={})


def srt_time(seconds: float) -> str:
    """Seconds -> SRT timestamp ``HH:MM:SS,mmm`` (rounded to the millisecond)."""
    ms = int(round(max(0.0, seconds) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f'{h:02d}:{m:02d}:{s:02d},{ms:03d}'


def to_srt(segments: Sequence[dict], min_score: float = 0.3) -> str:
    """SRT subtitles of the segments scoring at least ``min_score``, in time order (ties by
    score), one cue ``N\\nstart --> end\\nname (score)\\n`` each, cues separated by a blank
    line."""
    keep = sorted((s for s in segments if s['score'] >= min_score),
                  key=lambda s: (s['segment'][0], -s['score']))
    cues = [f'{i}\n{srt_time(s["segment"][0])} --> {srt_time(s["segment"][1])}\n'
            f'{s["name"]} ({s["score"]:.2f})\n' for i, s in enumerate(keep, 1)]
    return '\n'.join(cues)


def class_colour(label: int) -> Tuple[int, int, int]:
    """RGB 0..255 colour of a class (tab10, repeating after 10)."""
    from matplotlib import colormaps
    r, g, b, _ = colormaps['tab10'](label % 10)
    return int(round(r * 255)), int(round(g * 255)), int(round(b * 255))


def draw_timeline(record: dict, class_names: Sequence[str], path: str,
                  min_score: float = 0.3) -> None:
    """Timeline PNG: one row per class that has a segment scoring ``>= min_score``, a bar in
    the class colour (opaque; its score written at its start) per segment, time in seconds on
    the x axis from 0 to the video's duration."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    segs = [s for s in record['segments'] if s['score'] >= min_score]
    rows = sorted({s['label'] for s in segs})
    fig = plt.figure(figsize=(10, 1.2 + 0.45 * max(1, len(rows))), dpi=100)
    ax = fig.add_axes([0.22, 0.25, 0.74, 0.6])
    for r, label in enumerate(rows):
        colour = [c / 255 for c in class_colour(label)]
        for s in segs:
            if s['label'] == label:
                a, b = s['segment']
                ax.barh(r, b - a, left=a, height=0.7, color=colour, lw=0)
                ax.text(a, r, f'{s["score"]:.2f}', va='center', ha='left', fontsize=6)
    ax.set_yticks(range(len(rows)), [class_names[k] for k in rows], fontsize=8)
    ax.set_ylim(-0.5, max(1, len(rows)) - 0.5)
    ax.invert_yaxis()
    ax.set_xlim(0, record['duration'])
    ax.set_xlabel('time (s)')
    ax.set_title(f'{record["video_id"]}: {len(segs)} segments with score >= {min_score}'
                 if segs else f'{record["video_id"]}: no segment with score >= {min_score}',
                 fontsize=9)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def format_table(records: Sequence[dict], min_score: float = 0.3) -> str:
    """Plain-text table of the segments scoring ``>= min_score`` of every video, in time
    order."""
    lines = [f'{"video":<28} {"start (s)":>9} {"end (s)":>9}  {"score":>6}  label']
    for r in records:
        keep = sorted((s for s in r['segments'] if s['score'] >= min_score),
                      key=lambda s: s['segment'][0])
        if not keep:
            lines.append(f'{r["video_id"]:<28} {"-":>9} {"-":>9}  {"-":>6}  (no segment with '
                         f'score >= {min_score})')
        for s in keep:
            lines.append(f'{r["video_id"]:<28} {s["segment"][0]:9.2f} {s["segment"][1]:9.2f}  '
                         f'{s["score"]:6.3f}  {s["name"]}')
    return '\n'.join(lines)


def write_outputs(record: dict, class_names: Sequence[str], out_dir: str,
                  min_score: float = 0.3) -> Dict[str, str]:
    """``<out_dir>/<video_id>.json`` (ActivityNet results), ``.srt`` and ``_timeline.png``."""
    os.makedirs(out_dir, exist_ok=True)
    vid = record['video_id']
    files = dict(json=osp.join(out_dir, f'{vid}.json'), srt=osp.join(out_dir, f'{vid}.srt'),
                 timeline=osp.join(out_dir, f'{vid}_timeline.png'))
    atomic_save_json(files['json'], anet_results([record]))
    with open(files['srt'], 'w', encoding='utf-8') as f:
        f.write(to_srt(record['segments'], min_score))
    draw_timeline(record, class_names, files['timeline'], min_score)
    return files


def localize_videos(source: Union[str, Sequence[str]], config: Union[str, Config],
                    checkpoint: Optional[str], extractor_config: Union[str, Config],
                    extractor_checkpoint: Optional[str], out_dir: str,
                    label_file: Optional[str] = None, feat_stats: Optional[str] = None,
                    cache_dir: Optional[str] = None, min_score: float = 0.3,
                    device: str = 'cpu', extractor_overrides: Optional[dict] = None,
                    video_root: Optional[str] = None, progress: bool = True) -> dict:
    """Localise actions in a video file, a folder of videos, a list file or a list of paths.

    A video that cannot be read (or is shorter than one clip) is recorded and the batch goes
    on. ``video_root`` prefixes relative paths of a list file. Writes the per-video outputs
    (:func:`write_outputs`), ``results.json`` (ActivityNet results of all videos) and
    ``failures.json`` into ``out_dir``.

    Returns:
        dict: ``records`` (per video: ``video_id``, ``video``, ``duration``, ``fps``,
        ``num_frames``, ``segments``, ``files``), ``failures`` ([{video, error, reason}]) and
        ``results_file``.
    """
    from mmengine.utils import ProgressBar

    if isinstance(source, str):
        # a video path (even a missing one: it is then reported as a failure), else a folder
        # or a list file
        videos = [source] if source.lower().endswith(VIDEO_EXTS) else \
            list_videos(source, video_root)
    else:
        videos = list(source)
    model, cfg = build_localizer(config, checkpoint, device)
    names = localizer_class_names(cfg, label_file)
    ext_cfg = Config.fromfile(extractor_config) if isinstance(extractor_config, str) \
        else extractor_config
    extractor = build_extractor_from_config(ext_cfg, extractor_checkpoint,
                                            extractor_overrides, device=device)
    runner = VideoLocalizer(model, cfg, extractor, names, feat_stats, cache_dir)
    records, failures = [], []
    bar = ProgressBar(len(videos)) if progress and len(videos) > 1 else None
    for video in videos:
        try:
            record = runner(video)
            record['files'] = write_outputs(record, names, out_dir, min_score)
            records.append(record)
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as e:  # noqa: BLE001 -- one bad video must not stop the batch
            text = str(e).strip()
            failures.append(dict(video=video, error=type(e).__name__,
                                 reason=text.splitlines()[0][:500] if text else repr(e)))
        if bar is not None:
            bar.update()
    if bar is not None:
        print()
    os.makedirs(out_dir, exist_ok=True)
    results_file = osp.join(out_dir, 'results.json')
    atomic_save_json(results_file, anet_results(records))
    atomic_save_json(osp.join(out_dir, 'failures.json'), failures)
    return dict(records=records, failures=failures, results_file=results_file)


__all__ = ['build_localizer', 'localizer_class_names', 'post_load_transforms', 'feature_meta',
           'VideoLocalizer', 'anet_results', 'srt_time', 'to_srt', 'class_colour',
           'draw_timeline', 'format_table', 'write_outputs', 'localize_videos']
