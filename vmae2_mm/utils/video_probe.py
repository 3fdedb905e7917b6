"""Per-file health probe of a video or a frame folder, as a dataset sees it.

:func:`probe` answers, for one path, what the training pipeline will meet: can decord
(mmaction2's ``DecordInit``/``DecordDecode``, our train/test decoder) decode the first, middle and
last frame; how many frames it sees; and, from the container (PyAV: decord has no codec name and
no display-matrix or per-packet timestamp access without decoding), the codec, fps, duration,
rotation and whether the frame rate is variable. Frame folders (mmaction2 ``RawframeDataset``
layout, e.g. SSv1's ``{:05}.jpg``) are counted and their first/middle/last image read with mmcv.

Why our own code: mmengine/mmaction2 have no probe; mmaction2's datasets only find a bad file when
a worker crashes on it. ``tools/analysis/check_videos.py`` runs this over a whole list in
parallel; datasets can call it to check a file at build time.

Problems are short codes (:data:`PROBLEMS`); the ones in :data:`BAD_PROBLEMS` make a file
unusable for training (it is left out of a cleaned list), the others are warnings.
"""
import os
import os.path as osp
import re
from dataclasses import asdict, dataclass, field, fields
from typing import List, Optional, Sequence

import numpy as np

VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mkv', '.webm', '.mov', '.m4v', '.mpg', '.mpeg', '.flv',
                    '.wmv', '.3gp', '.ts')
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')

#: code -> meaning. Codes in BAD_PROBLEMS exclude the file from a cleaned list.
PROBLEMS = {
    'missing': 'file or frame folder not found',
    'undecodable': 'decord (or, for frames, the image reader) fails on the first, middle or '
                   'last frame; `reason` says how',
    'no_video': 'the container has no video stream, or a folder has no image files',
    'short': 'fewer frames than the clip needs (clip_len x frame_interval)',
    'frame_count_mismatch': "decord's frame count differs from the container's packet count, or "
                            "a frame folder holds fewer images than its list line says",
    'vfr': 'variable frame rate: presentation timestamps are not evenly spaced',
    'rotated': 'rotation metadata (decord applies it: frames come out as displayed)',
}
BAD_PROBLEMS = ('missing', 'undecodable', 'no_video', 'short')


@dataclass
class ProbeResult:
    """What :func:`probe` found for one path.

    Attributes:
        path (str): The probed file or folder.
        kind (str): ``'video'`` or ``'frames'`` (a folder of images).
        decodable (bool): First, middle and last frame decode to [H, W, 3] uint8.
        reason (str): Why not decodable / what is wrong, naming the path; '' when fine.
        frames (int | None): Frames the dataset sees (decord's count; images in a folder).
        fps (float | None): Average frame rate, frames / duration (frames per second). None
            for frame folders (images carry no time).
        duration (float | None): Presentation span in seconds (first frame's start to the last
            frame's end).
        width (int | None): Width of a decoded frame as displayed (after rotation), pixels.
        height (int | None): Height likewise, pixels.
        codec (str | None): FFmpeg codec name (``h264``, ``vp9``, ``hevc``...) or the image
            format of a frame folder (``jpeg``, ``png``).
        rotation (int): Clockwise degrees a player applies (0, 90, 180, 270).
        vfr (bool): Variable frame rate.
        min_frames (int | None): Frames the clip needs; None when not checked.
        problems (list[str]): Codes from :data:`PROBLEMS`.
    """
    path: str
    kind: str = 'video'
    decodable: bool = False
    reason: str = ''
    frames: Optional[int] = None
    fps: Optional[float] = None
    duration: Optional[float] = None
    width: Optional[int] = None
    height: Optional[int] = None
    codec: Optional[str] = None
    rotation: int = 0
    vfr: bool = False
    min_frames: Optional[int] = None
    problems: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Usable for training: none of :data:`BAD_PROBLEMS`."""
        return not any(p in BAD_PROBLEMS for p in self.problems)

    def to_dict(self) -> dict:
        return dict(asdict(self), ok=self.ok)

    @classmethod
    def columns(cls) -> List[str]:
        return [f.name for f in fields(cls)] + ['ok']


def is_vfr(pts_seconds: Sequence[float], tick: float = 0.0) -> bool:
    """Whether sorted presentation timestamps are unevenly spaced.

    A container stores timestamps in ticks of its time base (1 ms in mkv/webm), so a 24 fps
    stream alternates 41/42 ms steps; steps are uneven when one differs from the median step by
    more than 1.5 ticks and 10 % of the median (timestamp rounding, not a rate change).

    Args:
        pts_seconds (Sequence[float]): [N] timestamps in seconds, presentation order.
        tick (float): The time base in seconds. Defaults to 0.
    """
    ts = np.sort(np.asarray(pts_seconds, dtype=np.float64))
    if ts.size < 3:
        return False
    steps = np.diff(ts)
    median = float(np.median(steps))
    return bool(np.abs(steps - median).max() > max(1.5 * tick, 0.1 * median))


def _container_info(path: str) -> dict:
    """Codec, rotation, packet timestamps of the first video stream, read with PyAV (demuxing
    only, plus one decoded frame for the display rotation). Raises on an unreadable container."""
    import av
    info = {}
    with av.open(path) as container:
        if not container.streams.video:
            return dict(no_video=True)
        stream = container.streams.video[0]
        info['codec'] = stream.codec_context.name
        tick = float(stream.time_base) if stream.time_base else 0.0
        pts = [pkt.pts for pkt in container.demux(stream) if pkt.size and pkt.pts is not None]
        ts = np.sort(np.asarray(pts, dtype=np.float64)) * tick
        info['packets'] = len(pts)
        if ts.size > 1:
            info['duration'] = float(ts[-1] - ts[0] + (ts[-1] - ts[-2]))
        elif stream.average_rate:
            info['duration'] = float(1 / stream.average_rate) * max(1, ts.size)
        info['vfr'] = is_vfr(ts, tick)
    with av.open(path) as container:
        # the display matrix lives in per-frame side data in PyAV; PyAV's angle is
        # counter-clockwise, a player's "rotate=90" is clockwise
        frame = next(container.decode(video=0), None)
        rotation = getattr(frame, 'rotation', 0) if frame is not None else 0
        info['rotation'] = int(round(-(rotation or 0))) % 360
    return info


def probe_video(path: str, min_frames: Optional[int] = None) -> ProbeResult:
    """Probe one video file; never raises for bad data (the result says what is wrong).

    Args:
        path (str): Video file.
        min_frames (int, optional): Frames the clip needs (``clip_len * frame_interval``).
            Defaults to None (not checked).
    """
    res = ProbeResult(path=path, kind='video', min_frames=min_frames)
    if not osp.isfile(path):
        res.problems.append('missing')
        res.reason = f'{path}: file not found'
        return res
    reasons = []
    try:
        meta = _container_info(path)
    except Exception as e:  # PyAV raises av.error.* subclasses of OSError/ValueError
        meta = {}
        reasons.append(f'container unreadable by PyAV ({type(e).__name__}: {e})')
    if meta.get('no_video'):
        res.problems.append('no_video')
        res.reason = f'{path}: no video stream'
        return res
    res.codec = meta.get('codec')
    res.rotation = meta.get('rotation', 0)
    res.vfr = meta.get('vfr', False)
    res.duration = meta.get('duration')
    try:
        import decord
        reader = decord.VideoReader(path, num_threads=1)
        res.frames = len(reader)
        if res.frames < 1:
            raise RuntimeError('decord sees 0 frames')
        inds = sorted({0, res.frames // 2, res.frames - 1})
        imgs = reader.get_batch(inds).asnumpy()
        if imgs.ndim != 4 or imgs.shape[-1] != 3 or imgs.dtype != np.uint8:
            raise RuntimeError(f'decoded frames are {imgs.shape} {imgs.dtype}, expected '
                               '[N, H, W, 3] uint8')
        res.height, res.width = int(imgs.shape[1]), int(imgs.shape[2])
        res.decodable = True
        if res.duration is None:
            res.duration = res.frames / float(reader.get_avg_fps())
    except Exception as e:  # decord raises DECORDError (a RuntimeError) with FFmpeg's message
        # decord prefixes FFmpeg's message with its own source locations
        msg = re.sub(r'\[[\d:]+\] \S+:\d+: ', '', str(e).strip())
        reasons.append(f'decord fails on the first/middle/last frame ({type(e).__name__}: '
                       f'{msg[:300]})')
        res.frames = res.frames if res.frames else meta.get('packets')
    if not res.decodable:
        res.problems.append('undecodable')
    if res.frames and res.duration:
        res.fps = round(res.frames / res.duration, 4)
    if res.duration is not None:
        res.duration = round(res.duration, 4)
    packets = meta.get('packets')
    if res.decodable and packets is not None and packets != res.frames:
        res.problems.append('frame_count_mismatch')
        reasons.append(f'decord counts {res.frames} frames, the container {packets} packets')
    _finish(res, reasons)
    return res


def list_frame_files(folder: str) -> List[str]:
    """Image files directly in ``folder``, sorted by name."""
    return sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))


def probe_frame_folder(folder: str, min_frames: Optional[int] = None,
                       listed_frames: Optional[int] = None) -> ProbeResult:
    """Probe a folder of frame images (mmaction2 ``RawframeDataset`` layout).

    Args:
        folder (str): Folder with one image per frame.
        min_frames (int, optional): Frames the clip needs. Defaults to None (not checked).
        listed_frames (int, optional): ``total_frames`` a list line gives for the folder; more
            than the folder holds is a ``frame_count_mismatch``. Defaults to None.
    """
    import mmcv
    res = ProbeResult(path=folder, kind='frames', min_frames=min_frames)
    if not osp.isdir(folder):
        res.problems.append('missing')
        res.reason = f'{folder}: frame folder not found'
        return res
    files = list_frame_files(folder)
    if not files:
        res.problems.append('no_video')
        res.reason = f'{folder}: no image files ({", ".join(IMAGE_EXTENSIONS)})'
        return res
    res.frames = len(files)
    ext = osp.splitext(files[0])[1].lower().lstrip('.')
    res.codec = 'jpeg' if ext in ('jpg', 'jpeg') else ext
    reasons = []
    bad = []
    for name in [files[i] for i in sorted({0, len(files) // 2, len(files) - 1})]:
        try:
            img = mmcv.imread(osp.join(folder, name), channel_order='rgb')
        except Exception:  # cv2.error on bytes that are no image; None for some formats
            img = None
        if img is None or img.ndim != 3 or img.shape[-1] != 3:
            bad.append(name)
        elif res.width is None:
            res.height, res.width = int(img.shape[0]), int(img.shape[1])
    res.decodable = not bad
    if bad:
        res.problems.append('undecodable')
        reasons.append(f'image(s) {", ".join(bad)} cannot be read as 3-channel images')
    if listed_frames is not None and listed_frames > res.frames:
        res.problems.append('frame_count_mismatch')
        reasons.append(f'the list gives {listed_frames} frames, the folder holds {res.frames}')
    _finish(res, reasons)
    return res


def _finish(res: ProbeResult, reasons: List[str]) -> None:
    """Add the length and metadata problems, and join the reasons into one message."""
    if res.min_frames is not None and res.frames is not None and res.frames < res.min_frames:
        res.problems.append('short')
        reasons.append(f'{res.frames} frame(s), shorter than the clip ({res.min_frames} frames = '
                       'clip_len x frame_interval)')
    if res.vfr:
        res.problems.append('vfr')
    if res.rotation:
        res.problems.append('rotated')
    if reasons:
        res.reason = f'{res.path}: ' + '; '.join(reasons)


def probe_task(task: tuple) -> ProbeResult:
    """``probe(*task)``: one picklable argument, for ``mmengine.utils.track_parallel_progress``."""
    return probe(*task)


def probe(path: str, min_frames: Optional[int] = None,
          listed_frames: Optional[int] = None) -> ProbeResult:
    """Probe a video file or, for a directory, a frame folder (see :func:`probe_video`,
    :func:`probe_frame_folder`)."""
    if osp.isdir(path):
        return probe_frame_folder(path, min_frames, listed_frames)
    return probe_video(path, min_frames)


__all__ = ['ProbeResult', 'PROBLEMS', 'BAD_PROBLEMS', 'VIDEO_EXTENSIONS', 'IMAGE_EXTENSIONS',
           'probe', 'probe_task', 'probe_video', 'probe_frame_folder', 'list_frame_files', 'is_vfr']
