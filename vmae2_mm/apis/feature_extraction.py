"""Clip-feature extraction from untrimmed videos for temporal action detection.

Reproduces OpenGVLab/VideoMAEv2 ``extract_tad_feature.py`` (clips of ``clip_len`` consecutive
native-fps frames starting at ``0, stride, 2 * stride, ...``; uint8 -> /255 -> bilinear squash to
``img_size``^2, no mean/std; feature = ``fc_norm(mean(tokens))``; one [N, C] float32 ``.npy``
per video with ``N = (frames - clip_len) // stride + 1``) but decodes and preprocesses every
frame once, streaming the video in chunks (overlapping clips reuse frames), and runs clips in
batches, optionally under bf16/fp16 autocast. The official script decodes each clip's frames
separately and runs batch 1 (see ``benchmarks/bench_tad_extraction.py``).

mmaction2's ``UntrimmedSampleFrames`` + ``FeatureHead`` path samples and decodes per clip through
the dataset pipeline, which is the per-clip decoding this module avoids.
"""
import errno
import glob
import json
import logging
import os
import os.path as osp
import socket
import time
from contextlib import nullcontext
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vmae2_mm.ops.cpu import optimize_for_cpu_inference
from vmae2_mm.utils.video_probe import is_vfr

logger = logging.getLogger(__name__)

PREPROCESS_MODES = ('official', 'normalized')
AMP_DTYPES = {None: None, 'none': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}
VIDEO_EXTS = ('.mp4', '.avi', '.mkv', '.webm', '.mov', '.m4v', '.mpg', '.mpeg', '.flv')
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class TooShortVideoError(ValueError):
    """The video has fewer frames than one clip."""


def num_clips(num_frames: int, clip_len: int, stride: int) -> int:
    """Features of a video: ``(num_frames - clip_len) // stride + 1`` (0 if too short)."""
    return 0 if num_frames < clip_len else (num_frames - clip_len) // stride + 1


class ClipFeatureExtractor:
    """Sliding-window clip features of one video at a time.

    Args:
        model (nn.Module): Maps [B, 3, clip_len, S, S] to pooled features [B, C] (a
            ``VideoMAEv2ViT`` with ``out_type='pooled'``); used in eval mode.
        clip_len (int): Frames per clip. Defaults to 16.
        stride (int): Frames between clip starts (THUMOS14 4, FineAction 16). Defaults to 4.
        img_size (int): Squash-resize target S. Defaults to 224.
        preprocess (str): ``'official'`` (/255 only, as the released features) or
            ``'normalized'`` (/255 then ``(x - mean) / std``, as in training). Defaults to
            'official'.
        mean (Sequence[float]): RGB mean on the 0..1 scale for ``'normalized'``.
        std (Sequence[float]): RGB std on the 0..1 scale for ``'normalized'``.
        batch_size (int): Clips per forward pass. Defaults to 8.
        chunk_frames (int): Frames decoded per step; bounds memory to about
            ``(chunk_frames + clip_len) * 3 * S^2 * 4`` bytes. Defaults to 128.
        amp (str, optional): ``'bf16'`` / ``'fp16'`` autocast, or None for fp32 (official).
        fps (float, optional): Resample every video to this frame rate before cutting clips,
            so features lie on the same time grid whatever the source rate (grid frame ``k``
            at ``k / fps`` s is the last source frame shown by then, by the container's
            timestamps); None (official) uses every decoded frame. Defaults to None.
        device (str | torch.device): Defaults to 'cpu'.
    """

    def __init__(self,
                 model: nn.Module,
                 clip_len: int = 16,
                 stride: int = 4,
                 img_size: int = 224,
                 preprocess: str = 'official',
                 mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD,
                 batch_size: int = 8,
                 chunk_frames: int = 128,
                 amp: Optional[str] = None,
                 fps: Optional[float] = None,
                 device='cpu') -> None:
        errors = []
        for name, v in (('clip_len', clip_len), ('stride', stride), ('img_size', img_size),
                        ('batch_size', batch_size), ('chunk_frames', chunk_frames)):
            if not isinstance(v, int) or v < 1:
                errors.append(f'{name} must be a positive int, got {v!r}')
        if preprocess not in PREPROCESS_MODES:
            errors.append(f'preprocess must be one of {PREPROCESS_MODES}, got {preprocess!r}')
        if amp not in AMP_DTYPES:
            errors.append(f"amp must be one of {sorted(k for k in AMP_DTYPES if k)} or None, got "
                          f'{amp!r}')
        if fps is not None and not (isinstance(fps, (int, float)) and fps > 0):
            errors.append(f'fps must be a positive number or None, got {fps!r}')
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            errors.append(f'mean and std must be 3 RGB values (std > 0), got {mean}, {std}')
        if errors:
            raise ValueError('feature extraction config: ' + '; '.join(errors))
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        if self.device.type == 'cpu':
            # oneDNN linears where MKL is slow (an explicit, per-model choice; GPUs unaffected)
            optimize_for_cpu_inference(self.model)
        self.clip_len = clip_len
        self.stride = stride
        self.img_size = img_size
        self.preprocess_mode = preprocess
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.batch_size = batch_size
        self.chunk_frames = max(chunk_frames, clip_len)
        self.amp = None if amp == 'none' else amp
        self.fps = None if fps is None else float(fps)

    def fps_record(self) -> str:
        """How frames were taken from the video, for the metadata file."""
        if self.fps is None:
            return 'native (every frame decoded, no resampling)'
        return (f'{self.fps:g} (resampled: grid frame k is the last source frame shown at '
                'k / fps s)')

    def preprocessing_record(self) -> dict:
        """What was done to the frames, for the metadata file."""
        rec = dict(mode=self.preprocess_mode, resize='bilinear squash, align_corners=False',
                   img_size=self.img_size, scale='1/255', channel_order='RGB')
        if self.preprocess_mode == 'normalized':
            rec.update(mean=self.mean.flatten().tolist(), std=self.std.flatten().tolist())
        return rec

    def preprocess(self, frames: np.ndarray, out: Optional[Tensor] = None) -> Tensor:
        """uint8 frames [F, H, W, 3] RGB -> float32 [3, F, S, S] (official order: /255, then
        resize).

        Frames are processed ``clip_len`` at a time exactly as the official per-clip code does
        (a short last group is padded to ``clip_len`` planes): torch's bilinear kernel
        vectorises across planes and rounds a remainder differently, and a frame-major
        ``[F, 3, H, W]`` resize runs yet another kernel (both differ by ~1e-7). So the values
        are bit-identical to the official per-clip preprocessing while each frame is processed
        once. The channel-major result makes every clip a strided view ``[3, clip_len, S, S]``
        of consecutive frames (no gather).

        Args:
            frames (ndarray): uint8 [F, H, W, 3].
            out (Tensor, optional): float32 [3, F, S, S] view to write into (each channel's
                frames contiguous); a new tensor when None.

        Returns:
            Tensor: float32 [3, F, S, S] (``out`` if given).
        """
        f, h, w = frames.shape[:3]
        s = self.img_size
        if out is None:
            out = torch.empty((3, f, s, s), dtype=torch.float32, device=self.device)
        group = self.clip_len
        for a in range(0, f, group):
            b = min(a + group, f)
            # the official steps on a clip-sized group: contiguous float cast, /255, then the
            # resize of the [3, T, H, W] view (the kernel reads the HWC strides directly)
            x = torch.from_numpy(frames[a:b]).to(self.device).float().div_(255.)
            if (h, w) != (s, s):
                if b - a < group:  # pad with copies of the last frame to `group` planes
                    x = torch.cat([x, x[-1:].expand(group - (b - a), h, w, 3)])
                x = F.interpolate(x.permute(3, 0, 1, 2), size=(s, s), mode='bilinear',
                                  align_corners=False)[:, :b - a]
            else:
                x = x.permute(3, 0, 1, 2)
            out[:, a:b] = x
        if self.preprocess_mode == 'normalized':
            out.sub_(self.mean.view(3, 1, 1, 1).to(out.device))
            out.div_(self.std.view(3, 1, 1, 1).to(out.device))
        return out

    @torch.no_grad()
    def forward_clips(self, clips: Tensor) -> Tensor:
        """clips [B, 3, clip_len, S, S] -> features [B, C] float32 on the CPU."""
        ctx = (torch.autocast(self.device.type, dtype=AMP_DTYPES[self.amp]) if self.amp
               else nullcontext())
        with ctx:
            out = self.model(clips)
        if out.ndim != 2:
            raise ValueError(f'the model must return pooled features [B, C], got '
                             f'{tuple(out.shape)}; use out_type="pooled"')
        return out.float().cpu()

    def iter_chunks(self, reader, needed: int, source_index: Optional[np.ndarray] = None
                    ) -> Iterator[np.ndarray]:
        """Decode grid frames ``[0, needed)`` once, ``chunk_frames`` at a time (uint8
        [F, H, W, 3]); grid frame ``i`` is source frame ``source_index[i]`` (``i`` if None)."""
        for a in range(0, needed, self.chunk_frames):
            b = min(a + self.chunk_frames, needed)
            idx = range(a, b) if source_index is None else source_index[a:b]
            yield reader.get_batch([int(i) for i in idx]).asnumpy()

    def extract(self, path: str) -> Tuple[np.ndarray, dict]:
        """Features of one video.

        Args:
            path (str): Video file.

        Returns:
            tuple: features [N, C] float32 and ``dict(frames, fps, frames_decoded,
            num_features, vfr, clip_times_s)``: ``clip_times_s`` [N, 2] is the presentation
            time (seconds) of each clip's first frame and the end of its last frame, read
            from the container, so a variable-frame-rate video (``vfr`` True, also logged)
            still maps features to real time. With ``fps`` set, ``frames`` / ``fps`` are
            those of the time grid, plus ``grid_fps``, ``source_fps`` and
            ``source_frames``.

        Raises:
            TooShortVideoError: fewer frames than ``clip_len``.
            Exception: whatever decord raises on an unreadable file.
        """
        from decord import VideoReader, cpu

        reader = VideoReader(path, ctx=cpu(0), num_threads=1)
        source_frames = len(reader)
        source_fps = float(reader.get_avg_fps())
        stamps = np.asarray(reader.get_frame_timestamp(np.arange(source_frames)), np.float64)
        vfr = is_vfr(stamps[:, 0], tick=1e-3)
        source_index = None
        if self.fps is None:
            total, fps = source_frames, source_fps
        else:
            # grid frame k (time k / fps) shows the last source frame started by then
            # the video ends one frame step after its last frame starts (decord's end time of
            # the last frame follows the average rate, wrong for a variable-rate video)
            fps = self.fps
            step = stamps[-1, 0] - stamps[-2, 0] if source_frames > 1 else 1 / source_fps
            # grid frame k exists while k / fps is inside the video; 1 ms absorbs the
            # float32 rounding of the container's timestamps
            tol = 1e-3
            total = max(0, int(np.ceil((stamps[-1, 0] + step - tol) * fps)))
            source_index = np.clip(np.searchsorted(stamps[:, 0], np.arange(total) / fps + tol,
                                                   side='right') - 1, 0, source_frames - 1)
        n = num_clips(total, self.clip_len, self.stride)
        if n == 0:
            raise TooShortVideoError(f'{path}: {total} frames, fewer than clip_len='
                                     f'{self.clip_len}' + (f' at {fps:g} fps' if self.fps
                                                           else ''))
        starts = np.arange(n) * self.stride
        needed = int(starts[-1]) + self.clip_len  # frames after the last clip are never used
        if vfr and self.fps is None:
            logger.warning(f'{path}: variable frame rate; features are on the frame grid, '
                           'their real times are in the metadata (clip_times_s); --fps '
                           'puts them on a fixed time grid')
        if source_index is None:
            clip_times = np.stack([stamps[starts, 0], stamps[starts + self.clip_len - 1, 1]], 1)
        else:
            clip_times = np.stack([starts / fps, (starts + self.clip_len) / fps], 1)
        s, length = self.img_size, self.clip_len
        # preprocessed frames [3, cap, S, S]; buffer frame 0 is video frame buf_start. A clip
        # never needs more than the frames kept from the previous chunk plus the new chunk.
        cap = self.chunk_frames + length
        buf = torch.empty((3, cap, s, s), dtype=torch.float32, device=self.device)
        plane = s * s
        feats: List[Tensor] = []
        buf_start, filled, decoded, next_clip = 0, 0, 0, 0
        for chunk in self.iter_chunks(reader, needed, source_index):
            f = len(chunk)
            self.preprocess(chunk, out=buf[:, filled:filled + f])
            filled += f
            decoded += f
            ready = int(np.searchsorted(starts + length, decoded, side='right'))
            for a in range(next_clip, ready, self.batch_size):
                b = min(a + self.batch_size, ready)
                # overlapping clips as one strided view [B, 3, L, S, S] of the buffer, passed as
                # is: the cube-embedding conv packs its input itself, so assembling a contiguous
                # batch first would only add a copy (measured: ~15% of the extraction time)
                clips = buf.as_strided(
                    (b - a, 3, length, s, s),
                    (self.stride * plane, cap * plane, plane, s, 1),
                    buf.storage_offset() + int(starts[a] - buf_start) * plane)
                feats.append(self.forward_clips(clips))
            next_clip = ready
            # keep only the frames a later clip still needs, moved to the buffer's front
            # (with stride > clip_len the next clip may start after the decoded frames)
            keep_from = min(int(starts[next_clip]) if next_clip < n else decoded, decoded)
            kept = decoded - keep_from
            if kept:
                buf[:, :kept] = buf[:, filled - kept:filled].clone()
            filled, buf_start = kept, keep_from
        out = torch.cat(feats).numpy().astype(np.float32, copy=False)
        assert out.shape[0] == n, (out.shape, n)
        info = dict(frames=total, fps=fps, frames_decoded=decoded, num_features=n, vfr=vfr,
                    clip_times_s=np.round(clip_times, 4).tolist())
        if self.fps is not None:
            # the TAD dataset maps seconds to features with grid_fps when it is present
            info.update(grid_fps=fps, source_fps=source_fps, source_frames=source_frames)
        return out, info


def _tmp_name(path: str) -> str:
    """``<path>.tmp.<host>.<pid>``: the writer is known, so a later run can tell a file left
    by a killed writer from one that a live shard is writing."""
    return f'{path}.tmp.{socket.gethostname()}.{os.getpid()}'


def atomic_save_npy(path: str, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` so that ``path`` either is complete or does not exist: the
    data goes to a temporary file in the same folder that is renamed over ``path``."""
    tmp = _tmp_name(path)
    try:
        with open(tmp, 'wb') as f:
            # header and data through the Python file object, not ``np.save``: numpy writes
            # the data with ``fwrite``, and a short write (disk full, file size limit) then
            # raises an OSError without an errno, indistinguishable from any other failure
            fmt, data = np.lib.format, np.ascontiguousarray(array)
            fmt.write_array_header_1_0(f, fmt.header_data_from_array_1_0(data))
            if data.dtype.hasobject:
                raise ValueError('Object arrays cannot be saved when allow_pickle=False')
            if data.size:
                f.write(memoryview(data.reshape(-1)).cast('B'))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def atomic_save_json(path: str, obj) -> None:
    """JSON counterpart of :func:`atomic_save_npy`."""
    tmp = _tmp_name(path)
    try:
        with open(tmp, 'w') as f:
            json.dump(obj, f, indent=1)
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


class FeatureWriteError(OSError):
    """Writing a video's features failed for a reason every later video shares (disk full,
    file size limit, read-only or missing output folder): the run stops here."""


# errnos of a write that no later video can succeed at either
_FATAL_WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EACCES,
                       errno.ENOENT}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_tmp_files(out_dir: str, max_age_s: float = 24 * 3600.0) -> List[str]:
    """Remove the ``*.tmp.<host>.<pid>`` files of writers that are gone: this host's dead
    processes, any host's after ``max_age_s`` (a shard on another node may still be writing
    a newer one). Returns the removed paths."""
    host, now, removed = socket.gethostname(), time.time(), []
    for tmp in glob.glob(osp.join(out_dir, '*.tmp.*')):
        writer = tmp.rsplit('.tmp.', 1)[1]
        tmp_host, _, pid = writer.rpartition('.')
        try:
            if tmp_host == host and pid.isdigit():
                stale = int(pid) != os.getpid() and not _pid_alive(int(pid))
            else:  # another host, or the old ``.tmp.<pid>`` name
                stale = now - osp.getmtime(tmp) > max_age_s or (
                    not tmp_host and pid.isdigit() and not _pid_alive(int(pid)))
            if stale:
                os.remove(tmp)
                removed.append(tmp)
        except FileNotFoundError:  # its writer finished meanwhile
            continue
    return removed


def finished_features_problem(npy: str, clip_len: int, stride: int,
                              fps: Optional[float] = None) -> Optional[str]:
    """Why an existing ``<stem>.npy`` (with its ``<stem>.json``) does not count as a finished
    video of this extractor, or None when it does.

    Checked without reading the data: the ``.npy`` header parses and the file holds all the
    bytes it declares (a truncated or empty file fails), the array is float32 ``[N, C]``, the
    metadata exists and agrees (``shape``, ``clip_len``, ``stride``, the resampling ``fps``:
    ``grid_fps`` in the metadata, absent for native-rate features).
    """
    meta_path = osp.splitext(npy)[0] + '.json'
    try:
        arr = np.load(npy, mmap_mode='r', allow_pickle=False)
    except Exception as e:  # noqa: BLE001 -- any unreadable file is redone
        return f'unreadable ({type(e).__name__}: {str(e).strip()[:200]})'
    if arr.ndim != 2 or arr.dtype != np.float32 or arr.shape[0] == 0:
        return f'holds a {arr.dtype} array of shape {tuple(arr.shape)}, expected float32 [N, C]'
    if not osp.isfile(meta_path):
        return f'has no metadata file {osp.basename(meta_path)}'
    try:
        with open(meta_path) as f:
            meta = json.load(f)
    except Exception as e:  # noqa: BLE001
        return f'metadata {osp.basename(meta_path)} unreadable ({type(e).__name__})'
    if list(meta.get('shape', [])) != list(arr.shape):
        return f'shape {tuple(arr.shape)} differs from its metadata {meta.get("shape")}'
    if (meta.get('clip_len'), meta.get('stride')) != (clip_len, stride):
        return (f'was extracted with clip_len {meta.get("clip_len")} / stride '
                f'{meta.get("stride")}, this run uses {clip_len} / {stride}')
    if meta.get('grid_fps') != fps:
        return (f'was extracted at fps {meta.get("grid_fps") or "native"}, this run uses '
                f'{fps or "native"}')
    return None


def list_videos(source: str, video_root: Optional[str] = None) -> List[str]:
    """Videos of a folder (recursively, by extension, sorted) or of a list file (one path per
    line, ``#`` comments; relative paths are joined to ``video_root`` if given).

    Raises:
        FileNotFoundError: ``source`` does not exist.
        ValueError: two videos share a file stem (their outputs would collide) or none found.
    """
    if osp.isdir(source):
        videos = sorted(p for p in glob.glob(osp.join(source, '**', '*'), recursive=True)
                        if p.lower().endswith(VIDEO_EXTS) and osp.isfile(p))
    elif osp.isfile(source):
        with open(source) as f:
            lines = [ln.strip() for ln in f]
        videos = [ln.split()[0] for ln in lines if ln and not ln.startswith('#')]
        if video_root:
            videos = [v if osp.isabs(v) else osp.join(video_root, v) for v in videos]
    else:
        raise FileNotFoundError(f'--videos: {source} is neither a folder nor a list file')
    if not videos:
        raise ValueError(f'--videos: no video found in {source} (extensions {VIDEO_EXTS})')
    stems: Dict[str, str] = {}
    for v in videos:
        stem = osp.splitext(osp.basename(v))[0]
        if stem in stems:
            raise ValueError(f'--videos: {stems[stem]} and {v} share the stem {stem!r}; their '
                             'features would overwrite each other')
        stems[stem] = v
    return videos


def shard_of(items: Sequence, shard: Tuple[int, int]) -> List:
    """Items ``i, i + n, i + 2n, ...`` for shard ``(i, n)`` (balanced, deterministic)."""
    i, n = shard
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f'shard must be i/n with 0 <= i < n, got {i}/{n}')
    return list(items[i::n])


def extract_videos(extractor: ClipFeatureExtractor,
                   videos: Sequence[str],
                   out_dir: str,
                   shard: Tuple[int, int] = (0, 1),
                   extra_meta: Optional[dict] = None,
                   progress: bool = True) -> dict:
    """Extract features of this shard's videos into ``out_dir``, resumably.

    For each video ``<stem>.json`` (metadata) then ``<stem>.npy`` ([N, C] float32) are written
    atomically; an existing pair that passes :func:`finished_features_problem` is a finished
    video and is skipped, any other is redone (counted in ``redone``). Temporary files of
    killed writers are removed first. Unreadable or too-short videos are recorded in
    ``failures.json`` (``failures.shard<i>of<n>.json`` when sharded), rewritten after every
    failure so a killed run keeps them, and the run continues. A write that no later video can
    succeed at either (disk full, file too large, read-only folder) stops the run with
    :class:`FeatureWriteError` naming the video and the file; every finished pair is kept.

    Args:
        extractor (ClipFeatureExtractor): The configured extractor.
        videos (Sequence[str]): All videos (every shard gets the same list).
        out_dir (str): Output folder.
        shard (tuple): ``(i, n)``: this process handles ``videos[i::n]``. Defaults to (0, 1).
        extra_meta (dict, optional): Added to every metadata record (config, checkpoint ...).
        progress (bool): Show a tqdm bar. Defaults to True.

    Returns:
        dict: counts ``done``, ``skipped``, ``redone``, ``failed``, ``clips``,
        ``frames_decoded``, ``seconds``, the ``failures`` list, the report path and the
        ``stale_tmp_removed`` paths.

    Raises:
        FeatureWriteError: a fatal write error (the report is written first if it can be).
    """
    from tqdm import tqdm

    os.makedirs(out_dir, exist_ok=True)
    mine = shard_of(list(videos), shard)
    i, n = shard
    report = osp.join(out_dir, 'failures.json' if n == 1 else f'failures.shard{i}of{n}.json')
    summary = dict(done=0, skipped=0, redone=0, failed=0, clips=0, frames_decoded=0,
                   failures=[], failure_report=report,
                   stale_tmp_removed=remove_stale_tmp_files(out_dir))

    def write_report(finished: bool) -> None:
        atomic_save_json(report, dict(shard=f'{i}/{n}', num_videos=len(mine),
                                      finished=finished, done=summary['done'],
                                      skipped=summary['skipped'], redone=summary['redone'],
                                      failed=summary['failed'],
                                      failures=summary['failures']))

    t0 = time.perf_counter()
    bar = tqdm(mine, desc=f'extract [{i + 1}/{n}]' if n > 1 else 'extract',
               unit='video', disable=not progress, dynamic_ncols=True)
    for path in bar:
        stem = osp.splitext(osp.basename(path))[0]
        npy = osp.join(out_dir, f'{stem}.npy')
        if osp.exists(npy):
            problem = finished_features_problem(npy, extractor.clip_len, extractor.stride,
                                                extractor.fps)
            if problem is None:
                summary['skipped'] += 1
                continue
            logger.warning(f'{npy} {problem}: extracting {path} again')
            summary['redone'] += 1
        try:
            feats, info = extractor.extract(path)
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as e:  # noqa: BLE001 -- a bad video must not stop the run
            summary['failed'] += 1
            summary['failures'].append(dict(video=path, error=type(e).__name__,
                                            reason=str(e).strip().splitlines()[0][:500]
                                            if str(e).strip() else repr(e)))
            write_report(False)
            continue
        meta = dict(video=osp.basename(path), source=path, **info,
                    fps_used=extractor.fps_record(),
                    clip_len=extractor.clip_len, stride=extractor.stride,
                    feat_dim=int(feats.shape[1]), dtype='float32',
                    shape=list(feats.shape), amp=extractor.amp,
                    preprocessing=extractor.preprocessing_record(), **(extra_meta or {}))
        try:
            atomic_save_json(osp.join(out_dir, f'{stem}.json'), meta)
            atomic_save_npy(npy, feats)
        except OSError as e:
            if e.errno not in _FATAL_WRITE_ERRNOS:
                raise
            summary['seconds'] = time.perf_counter() - t0
            try:
                write_report(False)
            except OSError:
                pass  # the disk is full: the error below still says what is kept
            raise FeatureWriteError(
                e.errno, f'writing the features of {path} to {npy} failed: '
                f'{os.strerror(e.errno)}. The run stopped; the {summary["done"]} videos '
                f'extracted in this run and {summary["skipped"]} earlier ones are complete '
                f'in {out_dir}. Free space (or raise the limit) and run the same command '
                'again: finished videos are skipped.') from e
        summary['done'] += 1
        summary['clips'] += int(feats.shape[0])
        summary['frames_decoded'] += int(info['frames_decoded'])
        bar.set_postfix(clips=summary['clips'], failed=summary['failed'])
    summary['seconds'] = time.perf_counter() - t0
    write_report(True)
    return summary


def build_extractor_from_config(cfg, checkpoint: Optional[str], overrides: Optional[dict] = None,
                                device='cpu', logger=None) -> ClipFeatureExtractor:
    """Build the backbone of a config, load ``checkpoint`` and wrap it in an extractor.

    The config either defines ``model`` as a ``VideoMAEv2ViT`` (feature-extraction configs
    under ``configs/localization/feature_extraction/``) or a recognizer whose ``model.backbone`` is one;
    ``feature_extraction=dict(clip_len, stride, img_size, preprocess, mean, std, batch_size,
    chunk_frames, amp, fps)`` holds the extraction settings (``clip_len`` / ``img_size`` default to
    the backbone's ``num_frames`` / ``img_size``). ``overrides`` (e.g. from the command line)
    replace settings; None values are ignored.

    Args:
        cfg (mmengine.Config | dict): The config.
        checkpoint (str, optional): Backbone weights (official K710 fine-tuned layout or any
            layout :func:`vmae2_mm.checkpoint.load_backbone_checkpoint` reads); loaded strictly
            except for dropped head/decoder keys. None keeps random weights (tests only).
        overrides (dict, optional): Settings overriding ``feature_extraction``.
        device (str): Defaults to 'cpu'.
        logger (logging.Logger, optional): For the checkpoint report.

    Returns:
        ClipFeatureExtractor: Ready to run.
    """
    import copy

    from mmaction.registry import MODELS

    import vmae2_mm  # noqa: F401  (registers VideoMAEv2ViT)
    from vmae2_mm.checkpoint.videomaev2 import load_backbone_checkpoint

    model_cfg = cfg.get('model') if hasattr(cfg, 'get') else None
    if not model_cfg:
        raise KeyError('config has no "model" (a VideoMAEv2ViT or a recognizer with '
                       '"backbone")')
    backbone_cfg = copy.deepcopy(dict(model_cfg.get('backbone', model_cfg)))
    backbone_cfg.pop('init_cfg', None)  # the checkpoint is loaded explicitly below
    backbone_cfg['out_type'] = 'pooled'
    if backbone_cfg.get('type') not in ('VideoMAEv2ViT', 'mmaction.VideoMAEv2ViT'):
        raise ValueError(f'feature extraction needs a VideoMAEv2ViT backbone, got type '
                         f'{backbone_cfg.get("type")!r}')
    backbone_cfg['type'] = 'VideoMAEv2ViT'
    model = MODELS.build(backbone_cfg)
    if checkpoint is not None:
        load_backbone_checkpoint(model, checkpoint, logger=logger, strict=True)

    settings = dict(cfg.get('feature_extraction', None) or {})
    settings.update({k: v for k, v in (overrides or {}).items() if v is not None})
    unknown = set(settings) - {'clip_len', 'stride', 'img_size', 'preprocess', 'mean', 'std',
                               'batch_size', 'chunk_frames', 'amp', 'fps'}
    if unknown:
        raise ValueError(f'feature_extraction: unknown keys {sorted(unknown)}')
    settings.setdefault('clip_len', model.num_frames)
    settings.setdefault('img_size', model.img_size)
    if settings['clip_len'] != model.num_frames:
        raise ValueError(f'feature_extraction.clip_len={settings["clip_len"]} differs from the '
                         f'backbone num_frames={model.num_frames}')
    return ClipFeatureExtractor(model, device=device, **settings)


__all__ = ['ClipFeatureExtractor', 'TooShortVideoError', 'num_clips', 'atomic_save_npy',
           'atomic_save_json', 'list_videos', 'shard_of', 'extract_videos',
           'build_extractor_from_config', 'PREPROCESS_MODES']
