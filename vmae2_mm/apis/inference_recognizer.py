"""Action recognition on a whole video: sliding windows -> top-k per window and per video.

A window is one clip as the config samples it: ``clip_len`` frames ``frame_interval`` apart
(the test pipeline's ``SampleFrames``), so it spans ``clip_len * frame_interval`` frames. Window
starts are ``0, s, 2s, ...`` frames with ``s = round(stride_seconds * fps)``, plus one last
window ending at the last frame when the regular ones leave a tail uncovered. Each window goes
through the config's test transforms after frame decoding (resize, crops, ``FormatShape``,
``PackActionInputs``) and the recognizer's ``test_step``, so a window is scored exactly as
``tools/test.py`` scores one clip of that config; windows run in batches, optionally under
bf16/fp16 autocast. The whole-video scores are the mean of the window scores.

mmaction2's ``inference_recognizer`` scores one video with the full test pipeline (one
answer, no timestamps) and its ``demo/long_video_demo.py`` is a script around a frame queue,
not an API; this module keeps mmaction2's model building (``init_recognizer``) and transforms
and adds the window plan, the batching and the outputs (JSON record, timeline PNG, labelled
video). ``tools/infer_recognizer.py`` is the thin CLI.
"""
import json
import os
import os.path as osp
from contextlib import nullcontext
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose

DTYPES = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


class VideoTooShortError(ValueError):
    """The video has fewer frames than one window."""


def window_geometry(cfg: Config) -> Tuple[int, int]:
    """``(clip_len, frame_interval)`` of the config's test (else val) ``SampleFrames`` step.

    Raises:
        ValueError: the pipeline has no ``SampleFrames`` step (e.g. uniform sampling, which has
            no fixed window length).
    """
    for loader in ('test_dataloader', 'val_dataloader'):
        pipeline = cfg.get(loader, {}).get('dataset', {}).get('pipeline', None)
        if not pipeline:
            continue
        for step in pipeline:
            if step['type'] in ('SampleFrames', 'mmaction.SampleFrames'):
                return int(step['clip_len']), int(step.get('frame_interval', 1))
        break
    raise ValueError(f'{cfg.filename}: the test pipeline has no SampleFrames step, so a window '
                     'length (clip_len x frame_interval) is undefined')


def post_decode_transforms(cfg: Config) -> Compose:
    """The config's test transforms after the frame-decoding step (``*Decode``)."""
    pipeline = cfg.test_dataloader.dataset.pipeline
    names = [t['type'] for t in pipeline]
    decode = [i for i, n in enumerate(names) if n.endswith('Decode')]
    if not decode:
        raise ValueError(f'{cfg.filename}: the test pipeline has no *Decode step ({names})')
    return Compose(pipeline[decode[-1] + 1:])


def plan_windows(num_frames: int, fps: float, clip_len: int, frame_interval: int,
                 stride_seconds: Optional[float] = None, video: str = 'video') -> List[dict]:
    """Sliding windows over a video.

    Args:
        num_frames (int): Frames F of the video.
        fps (float): Frames per second.
        clip_len (int): Frames per clip T.
        frame_interval (int): Frames between sampled frames I.
        stride_seconds (float, optional): Seconds between window starts; None = one window
            length (non-overlapping windows).
        video (str): Name used in error messages.

    Returns:
        list[dict]: per window ``index``, ``start_frame``, ``end_frame`` (exclusive; start +
        T * I), ``frame_inds`` ([T] int, start + I * arange(T)), ``start_s`` and ``end_s``
        (seconds, frame / fps).

    Raises:
        VideoTooShortError: ``num_frames < T * I``.
    """
    span = clip_len * frame_interval
    if fps <= 0:
        raise ValueError(f'{video}: frame rate {fps} is not positive')
    if num_frames < span:
        raise VideoTooShortError(
            f'{video}: {num_frames} frames ({num_frames / fps:.2f} s) is shorter than one '
            f'window of {clip_len} x {frame_interval} = {span} frames ({span / fps:.2f} s)')
    if stride_seconds is None:
        stride = span
    else:
        if stride_seconds <= 0:
            raise ValueError(f'window stride must be > 0 seconds, got {stride_seconds}')
        stride = max(1, int(round(stride_seconds * fps)))
    starts = list(range(0, num_frames - span + 1, stride))
    if starts[-1] + span < num_frames:
        starts.append(num_frames - span)  # cover the tail
    return [dict(index=i, start_frame=s, end_frame=s + span,
                 frame_inds=s + frame_interval * np.arange(clip_len),
                 start_s=s / fps, end_s=(s + span) / fps) for i, s in enumerate(starts)]


def _is_mmengine_recognizer(ckpt: dict) -> bool:
    sd = ckpt.get('state_dict') if isinstance(ckpt, dict) else None
    return isinstance(sd, dict) and any(k.startswith('backbone.') for k in sd) and \
        not any('patch_embed.projection' in k for k in sd)


def build_recognizer(config: Union[str, Config], checkpoint: Optional[str] = None,
                     device: str = 'cpu', cfg_options: Optional[dict] = None,
                     class_names: Optional[Sequence[str]] = None,
                     label_file: str = 'class names'):
    """A recognizer in eval mode from a config and a checkpoint.

    mmaction2's ``init_recognizer`` builds the model; a vmae2_mm / mmengine checkpoint is loaded
    strictly, any other layout the vmae2_mm loader reads (official, HF, mmaction2) through
    :func:`vmae2_mm.checkpoint.videomaev2.load_recognizer_checkpoint`, also strictly.

    Args:
        config (str | Config): Recognition config.
        checkpoint (str, optional): Weights; None keeps random weights (tests only).
        device (str): e.g. ``'cpu'``, ``'cuda:0'``. Defaults to 'cpu'.
        cfg_options (dict, optional): Overrides merged into the config.
        class_names (Sequence[str], optional): Checked against the head's ``num_classes``.
        label_file (str): Where ``class_names`` came from, for the error message.

    Returns:
        tuple: ``(model, cfg)``.
    """
    from mmaction.apis import init_recognizer
    from mmengine.runner import load_checkpoint

    import vmae2_mm  # noqa: F401  (registration)
    from vmae2_mm.checkpoint.io import read_checkpoint
    from vmae2_mm.checkpoint.videomaev2 import load_recognizer_checkpoint

    cfg = Config.fromfile(config) if isinstance(config, str) else config.copy()
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.model.backbone.init_cfg = None  # weights come from the checkpoint
    if cfg.model.get('cls_head', {}).get('init_cfg'):
        cfg.model.cls_head.init_cfg = None
    num_classes = cfg.model.cls_head.num_classes
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(f'{label_file}: {len(class_names)} class names, but the model of '
                         f'{cfg.filename} has {num_classes} classes')
    model = init_recognizer(cfg, None, device='cpu')
    if checkpoint is not None:
        if not osp.exists(checkpoint):
            raise FileNotFoundError(f'checkpoint {checkpoint!r} not found')
        if _is_mmengine_recognizer(read_checkpoint(checkpoint)):
            load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
        else:
            load_recognizer_checkpoint(model, checkpoint, strict=True)
    return model.to(device).eval(), cfg


class WindowRecognizer:
    """Scores the sliding windows of a video with a recognizer.

    Args:
        model (nn.Module): mmaction2 recognizer (``test_step`` gives ``pred_score`` [K]).
        cfg (Config): Its config (test pipeline: window geometry and transforms).
        class_names (Sequence[str], optional): K names; indices are used when None.
        batch_size (int): Windows per forward pass. Defaults to 8.
        dtype (str): ``'fp32'``, ``'bf16'`` or ``'fp16'`` (autocast). Defaults to 'fp32'.
    """

    def __init__(self, model, cfg: Config, class_names: Optional[Sequence[str]] = None,
                 batch_size: int = 8, dtype: str = 'fp32') -> None:
        if dtype not in DTYPES:
            raise ValueError(f'dtype must be one of {sorted(DTYPES)}, got {dtype!r}')
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        self.model = model
        self.cfg = cfg
        self.clip_len, self.frame_interval = window_geometry(cfg)
        self.transforms = post_decode_transforms(cfg)
        self.num_classes = int(cfg.model.cls_head.num_classes)
        self.class_names = (list(class_names) if class_names is not None
                            else [str(i) for i in range(self.num_classes)])
        self.batch_size = batch_size
        self.dtype = dtype
        self.device = next(model.parameters()).device

    def _pack(self, frames: np.ndarray) -> dict:
        h, w = frames.shape[1:3]
        results = dict(imgs=list(frames), img_shape=(h, w), original_shape=(h, w),
                       modality='RGB', num_clips=1, clip_len=self.clip_len)
        return self.transforms(results)

    @torch.no_grad()
    def score_clips(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """Clips, each uint8 [T, H, W, 3] RGB -> scores [len(clips), K] float32 (the head's
        ``pred_score``: softmax probabilities for ``average_clips='prob'``)."""
        packed = [self._pack(c) for c in clips]
        data = dict(inputs=[p['inputs'] for p in packed],
                    data_samples=[p['data_samples'] for p in packed])
        amp = DTYPES[self.dtype]
        ctx = torch.autocast(self.device.type, dtype=amp) if amp else nullcontext()
        with ctx:
            out = self.model.test_step(data)
        return torch.stack([o.pred_score.float().cpu() for o in out]).numpy()

    def __call__(self, video: str, stride_seconds: Optional[float] = None, topk: int = 5,
                 progress: bool = True) -> dict:
        """Score every window of ``video``.

        Args:
            video (str): Video file.
            stride_seconds (float, optional): Seconds between window starts; None = one window
                length.
            topk (int): Labels kept per window and for the video. Defaults to 5.
            progress (bool): Show an mmengine ProgressBar (windows). Defaults to True.

        Returns:
            dict: the JSON record (see :func:`result_record`) plus ``scores`` [W, K] float32.

        Raises:
            FileNotFoundError, VideoTooShortError, RuntimeError (unreadable video).
        """
        from decord import VideoReader, cpu
        from mmengine.utils import ProgressBar

        if not osp.isfile(video):
            raise FileNotFoundError(f'video {video!r} not found')
        try:
            reader = VideoReader(video, ctx=cpu(0), num_threads=1)
        except Exception as e:  # decord raises its own DECORDError
            raise RuntimeError(f'{video}: cannot be decoded ({type(e).__name__}: '
                               f'{str(e).strip().splitlines()[0] if str(e).strip() else e})'
                               ) from e
        num_frames, fps = len(reader), float(reader.get_avg_fps())
        windows = plan_windows(num_frames, fps, self.clip_len, self.frame_interval,
                               stride_seconds, video)
        bar = ProgressBar(len(windows)) if progress else None
        scores = []
        for a in range(0, len(windows), self.batch_size):
            batch = windows[a:a + self.batch_size]
            # overlapping windows share frames: decode each needed frame of the batch once
            needed = np.unique(np.concatenate([w['frame_inds'] for w in batch]))
            frames = reader.get_batch(needed.tolist()).asnumpy()
            pos = {int(f): i for i, f in enumerate(needed)}
            clips = [frames[[pos[int(f)] for f in w['frame_inds']]] for w in batch]
            scores.append(self.score_clips(clips))
            if bar is not None:
                for _ in batch:
                    bar.update()
        if bar is not None:
            print()
        scores = np.concatenate(scores).astype(np.float32)
        record = result_record(video, num_frames, fps, self.clip_len, self.frame_interval,
                               stride_seconds, windows, scores, self.class_names, topk)
        record['scores'] = scores
        return record


def _topk(scores: np.ndarray, names: Sequence[str], k: int) -> List[dict]:
    order = np.argsort(-scores, kind='stable')[:k]
    return [dict(label=int(i), name=names[i], score=round(float(scores[i]), 6)) for i in order]


def result_record(video: str, num_frames: int, fps: float, clip_len: int, frame_interval: int,
                  stride_seconds: Optional[float], windows: List[dict], scores: np.ndarray,
                  class_names: Sequence[str], topk: int) -> dict:
    """The JSON record of one video.

    Args:
        scores (ndarray): [W, K] window scores.

    Returns:
        dict: ``video``, ``num_frames``, ``fps``, ``duration_s``, ``clip_len``,
        ``frame_interval``, ``window_s``, ``stride_s``, ``classes``, ``windows`` (per window
        ``index``, ``start_frame``, ``end_frame``, ``start_s``, ``end_s``, ``topk`` = [{label,
        name, score}]) and ``video_topk`` (top-k of the mean window scores). Seconds are rounded
        to 1 ms, scores to 1e-6.
    """
    span = clip_len * frame_interval
    return dict(
        video=osp.basename(video), num_frames=int(num_frames), fps=round(fps, 6),
        duration_s=round(num_frames / fps, 3), clip_len=clip_len,
        frame_interval=frame_interval, window_s=round(span / fps, 3),
        stride_s=round((windows[1]['start_frame'] - windows[0]['start_frame']) / fps, 3)
        if len(windows) > 1 else None,
        classes=list(class_names),
        windows=[dict(index=w['index'], start_frame=int(w['start_frame']),
                      end_frame=int(w['end_frame']), start_s=round(w['start_s'], 3),
                      end_s=round(w['end_s'], 3), topk=_topk(s, class_names, topk))
                 for w, s in zip(windows, scores)],
        video_topk=_topk(scores.mean(0), class_names, topk))


def class_colour(label: int) -> Tuple[int, int, int]:
    """RGB 0..255 colour of class ``label`` on the timeline: tab20's dark shades for labels
    0-9, its light ones for 10-19, repeating after 20."""
    from matplotlib import colormaps
    r, g, b, _ = colormaps['tab20']((2 * label) % 20 + (label // 10) % 2)
    return int(round(r * 255)), int(round(g * 255)), int(round(b * 255))


def timeline_segments(record: dict) -> List[Tuple[float, float, int]]:
    """Non-overlapping ``(start_s, end_s, top-1 label)`` pieces of the time axis: each instant
    belongs to the window whose centre is nearest (overlapping windows split at midpoints
    between their centres); adjacent pieces of one label are merged."""
    wins = record['windows']
    centres = [(w['start_s'] + w['end_s']) / 2 for w in wins]
    out: List[Tuple[float, float, int]] = []
    for i, w in enumerate(wins):
        a = wins[0]['start_s'] if i == 0 else (centres[i - 1] + centres[i]) / 2
        b = wins[-1]['end_s'] if i == len(wins) - 1 else (centres[i] + centres[i + 1]) / 2
        label = w['topk'][0]['label']
        if out and out[-1][2] == label:
            out[-1] = (out[-1][0], b, label)
        elif b > a:
            out.append((a, b, label))
    return out


def draw_timeline(record: dict, scores: np.ndarray, path: str, show: int = 5) -> None:
    """Timeline PNG: a bar of top-1 labels over time (one colour per class, legend), and below
    it the score curves of the ``show`` classes with the highest video score (window centres
    on the x axis, seconds).

    Args:
        record (dict): From :meth:`WindowRecognizer.__call__`.
        scores (ndarray): [W, K] window scores.
        path (str): Output PNG.
        show (int): Score curves drawn. Defaults to 5.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    names = record['classes']
    wins = record['windows']
    centres = np.array([(w['start_s'] + w['end_s']) / 2 for w in wins])
    t0, t1 = wins[0]['start_s'], wins[-1]['end_s']
    fig = plt.figure(figsize=(10, 4), dpi=100)
    bar = fig.add_axes([0.07, 0.72, 0.70, 0.16])
    labels_seen = []
    for a, b, label in timeline_segments(record):
        colour = [c / 255 for c in class_colour(label)]
        bar.axvspan(a, b, color=colour, lw=0,
                    label=names[label] if label not in labels_seen else None)
        labels_seen.append(label)
    bar.set_xlim(t0, t1)
    bar.set_yticks([])
    bar.set_xticklabels([])
    bar.set_title(f'{record["video"]}: top-1 per window; video: '
                  f'{record["video_topk"][0]["name"]} ({record["video_topk"][0]["score"]:.2f})',
                  fontsize=9)
    bar.legend(loc='upper left', bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    curves = fig.add_axes([0.07, 0.12, 0.70, 0.52])
    for label in np.argsort(-scores.mean(0), kind='stable')[:show]:
        colour = [c / 255 for c in class_colour(int(label))]
        curves.plot(centres, scores[:, label], color=colour, marker='.', lw=1.2,
                    label=names[label])
    curves.set_xlim(t0, t1)
    curves.set_ylim(0, 1.02 if scores.max() <= 1 else None)
    curves.set_xlabel('time (s)')
    curves.set_ylabel('score')
    curves.legend(loc='upper left', bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def draw_labels_on_video(video: str, record: dict, path: str, min_height: int = 240) -> int:
    """Copy ``video`` to ``path`` (mp4v) with the top-1 label and score of each frame's piece
    of the timeline (:func:`timeline_segments`) written in the class colour on a dark band at
    the top. Frames lower than ``min_height`` are enlarged by an integer factor (nearest) so
    the text stays readable. Returns the number of frames written."""
    cap = cv2.VideoCapture(video)
    if not cap.isOpened():
        raise RuntimeError(f'{video}: OpenCV cannot open it')
    fps = cap.get(cv2.CAP_PROP_FPS) or record['fps']
    w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    factor = max(1, -(-min_height // h))
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps,
                             (w * factor, h * factor))
    if not writer.isOpened():
        raise RuntimeError(f'OpenCV cannot open a video writer for {path}')
    segments = timeline_segments(record)
    font = 0.5 * max(1.0, h * factor / 480)
    band = int(28 * font / 0.5)
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if factor > 1:
            frame = cv2.resize(frame, (w * factor, h * factor), interpolation=cv2.INTER_NEAREST)
        t = (n + 0.5) / record['fps']
        label = next((s[2] for s in segments if s[0] <= t < s[1]), segments[-1][2])
        win = min(record['windows'], key=lambda x: abs((x['start_s'] + x['end_s']) / 2 - t))
        score = next((k['score'] for k in win['topk'] if k['label'] == label), None)
        text = record['classes'][label] + (f' {score:.2f}' if score is not None else '')
        frame[:band] = (frame[:band] * 0.25).astype(np.uint8)
        r, g, b = class_colour(label)
        cv2.putText(frame, text, (4, band - band // 4), cv2.FONT_HERSHEY_SIMPLEX, font,
                    (b, g, r), max(1, int(round(2 * font))), cv2.LINE_AA)
        writer.write(frame)
        n += 1
    cap.release()
    writer.release()
    return n


def write_json(record: dict, path: str) -> None:
    """The record without its ``scores`` array, indented JSON."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump({k: v for k, v in record.items() if k != 'scores'}, f, indent=1)


def infer_video(video: str, config: Union[str, Config], checkpoint: Optional[str],
                out_dir: Optional[str] = None, class_names: Optional[Sequence[str]] = None,
                stride_seconds: Optional[float] = None, topk: int = 5, device: str = 'cpu',
                dtype: str = 'fp32', batch_size: int = 8, out_video: bool = False,
                progress: bool = True, cfg_options: Optional[dict] = None) -> Dict:
    """Build the recognizer, score the windows of ``video`` and write the outputs.

    Writes ``<out_dir>/<stem>.json``, ``<stem>_timeline.png`` and, with ``out_video``,
    ``<stem>_labelled.mp4``; returns the record (with ``scores`` [W, K]) and ``files``.
    """
    model, cfg = build_recognizer(config, checkpoint, device, cfg_options, class_names)
    runner = WindowRecognizer(model, cfg, class_names, batch_size, dtype)
    record = runner(video, stride_seconds, topk, progress)
    files = {}
    if out_dir:
        stem = osp.splitext(osp.basename(video))[0]
        files['json'] = osp.join(out_dir, f'{stem}.json')
        write_json(record, files['json'])
        files['timeline'] = osp.join(out_dir, f'{stem}_timeline.png')
        draw_timeline(record, record['scores'], files['timeline'])
        if out_video:
            files['video'] = osp.join(out_dir, f'{stem}_labelled.mp4')
            draw_labels_on_video(video, record, files['video'])
    record['files'] = files
    return record


__all__ = ['VideoTooShortError', 'window_geometry', 'post_decode_transforms', 'plan_windows',
           'build_recognizer', 'WindowRecognizer', 'result_record', 'class_colour',
           'timeline_segments', 'draw_timeline', 'draw_labels_on_video', 'write_json',
           'infer_video']
