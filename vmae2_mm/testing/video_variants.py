"""Small video files of the codecs, containers and oddities found in real datasets.

Kinetics/SSv2/THUMOS/UCF downloads are H.264 with B-frames, VP9 in webm (all of SSv2), HEVC,
variable frame rate, phone videos with rotation metadata, odd sizes, audio tracks, mkv/avi
containers; some files are one frame long or damaged. :func:`write_variants` writes one small
file of each so tests can check what every decoder in the package does with it.

Encoder: PyAV (FFmpeg's libraries with libx264/libx265/libvpx/aac in the PyPI wheel). It is
chosen over ``imageio-ffmpeg``'s bundled ``ffmpeg`` binary because one maintained package then
serves both sides: the generator sets per-frame timestamps (VFR) and the display matrix
(rotation) through the API instead of a command line, and the same library is the package's
fallback decoder and timestamp reader (:mod:`vmae2_mm.datasets.video_io`).

Every frame carries its own ground truth: the frame index in 10 large black/white blocks
(binary, MSB first, along the lower half) and a red marker square in the top-left corner of
the *coded* picture, so a decoder's frame order, frame count and orientation can be read back
from the pixels (:func:`read_frame_index`, :func:`marker_corner`) despite lossy compression.

4K and hour-long files are emulated cheaply: ``uhd_4k`` has 3840x2160 frames but only 3 of
them; ``hour_long`` lasts 3600 s at 1 fps and 32x32 pixels (3600 frames), which exercises the
duration/seek paths without the cost of a real hour of video.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
from fractions import Fraction
from typing import Dict, List, Optional, Sequence

import numpy as np

INDEX_BITS = 10


def make_frame(index: int, width: int, height: int) -> np.ndarray:
    """One RGB frame [height, width, 3] uint8 that encodes ``index`` and its orientation.

    The top-left quarter-height square is red; the lower half holds ``INDEX_BITS`` blocks,
    white for a 1 bit (MSB on the left); the rest is mid grey.
    """
    img = np.full((height, width, 3), 96, dtype=np.uint8)
    side = max(2, min(width, height) // 4)
    img[:side, :side] = (230, 20, 20)
    y0, y1 = height // 2, height - max(1, height // 10)
    for b in range(INDEX_BITS):
        x0 = b * width // INDEX_BITS
        x1 = (b + 1) * width // INDEX_BITS
        bit = (index >> (INDEX_BITS - 1 - b)) & 1
        img[y0:y1, x0 + 1:max(x0 + 2, x1 - 1)] = 250 if bit else 5
    return img


def read_frame_index(img: np.ndarray) -> int:
    """Inverse of :func:`make_frame` for an upright (display-oriented) frame [H, W, 3]."""
    height, width = img.shape[:2]
    y0, y1 = height // 2, height - max(1, height // 10)
    value = 0
    for b in range(INDEX_BITS):
        x0 = b * width // INDEX_BITS
        x1 = (b + 1) * width // INDEX_BITS
        block = img[y0 + 1:max(y0 + 2, y1 - 1), x0 + 2:max(x0 + 3, x1 - 2), :3]
        value = (value << 1) | int(block.mean() > 128)
    return value


def marker_corner(img: np.ndarray) -> str:
    """Which corner of ``img`` [H, W, C] holds the red marker: 'tl', 'tr', 'bl' or 'br'."""
    height, width = img.shape[:2]
    s = max(1, min(width, height) // 8)
    corners = dict(tl=img[:s, :s], tr=img[:s, -s:], bl=img[-s:, :s], br=img[-s:, -s:])
    redness = {k: float(v[..., 0].astype(int).mean() - v[..., 1].astype(int).mean())
               for k, v in corners.items()}
    return max(redness, key=redness.get)


# name -> spec. Fields: file, codec, fps (or pts_ms for explicit timestamps), frames, size
# (w, h), options (encoder options), rotation (clockwise degrees a player applies),
# audio (add an AAC track), corrupt (overwrite the middle of the file), pix_fmt.
VARIANTS: Dict[str, dict] = {
    'h264_bframes': dict(file='h264_bframes.mp4', codec='libx264', fps=30, frames=60,
                         size=(160, 96), options=dict(bf='3', g='30', preset='ultrafast')),
    'vp9_webm': dict(file='vp9.webm', codec='libvpx-vp9', fps=12, frames=36, size=(160, 96),
                     options={'deadline': 'realtime', 'cpu-used': '8'}),
    'hevc': dict(file='hevc.mp4', codec='libx265', fps=25, frames=40, size=(160, 96),
                 options={'preset': 'ultrafast', 'x265-params': 'log-level=error'}),
    # 30 fps for 1 s, then 10 fps for 2 s: 30 + 20 frames over 3 s
    'vfr': dict(file='vfr.mp4', codec='libx264', frames=50, size=(160, 96),
                pts_ms=[round(i * 1000 / 30) for i in range(30)]
                + [1000 + i * 100 for i in range(20)],
                options=dict(preset='ultrafast', bf='0')),
    'rotate90': dict(file='rotate90.mp4', codec='libx264', fps=30, frames=30, size=(160, 96),
                     rotation=90, options=dict(preset='ultrafast')),
    'odd_size': dict(file='odd_size.mp4', codec='libx264', fps=30, frames=30, size=(131, 97),
                     pix_fmt='yuv444p', options=dict(preset='ultrafast')),
    'audio': dict(file='audio.mp4', codec='libx264', fps=30, frames=45, size=(160, 96),
                  audio=True, options=dict(preset='ultrafast')),
    'mkv': dict(file='h264.mkv', codec='libx264', fps=24, frames=48, size=(160, 96),
                options=dict(preset='ultrafast')),
    'avi': dict(file='mpeg4.avi', codec='mpeg4', fps=25, frames=50, size=(160, 96),
                options=dict(qscale='3')),
    'one_frame': dict(file='one_frame.mp4', codec='libx264', fps=30, frames=1, size=(160, 96),
                      options=dict(preset='ultrafast')),
    'corrupt_middle': dict(file='corrupt_middle.mp4', codec='libx264', fps=30, frames=90,
                           size=(160, 96), corrupt=True,
                           options=dict(preset='ultrafast', g='10', bf='0')),
    'uhd_4k': dict(file='uhd_4k.mp4', codec='libx264', fps=30, frames=3, size=(3840, 2160),
                   options=dict(preset='ultrafast')),
    'hour_long': dict(file='hour_long.mp4', codec='libx264', fps=1, frames=3600, size=(32, 32),
                      options=dict(preset='ultrafast', g='300')),
}


def _expected(spec: dict) -> dict:
    """Ground truth a correct decoder reports for a variant."""
    w, h = spec['size']
    rotation = spec.get('rotation', 0)
    if 'pts_ms' in spec:
        ts = np.asarray(spec['pts_ms'], dtype=np.float64) / 1000
        duration = float(ts[-1] + (ts[-1] - ts[-2]))
        fps = len(ts) / duration
    else:
        ts = np.arange(spec['frames']) / spec['fps']
        duration = spec['frames'] / spec['fps']
        fps = float(spec['fps'])
    dw, dh = (h, w) if rotation in (90, 270) else (w, h)
    return dict(frames=spec['frames'], fps=fps, duration=duration, width=dw, height=dh,
                rotation=rotation, vfr='pts_ms' in spec, timestamps=ts.tolist(),
                decodable=not spec.get('corrupt', False))


def write_video(path: str, spec: dict) -> None:
    """Encode one variant described by ``spec`` (see :data:`VARIANTS`) to ``path``."""
    import av
    w, h = spec['size']
    with av.open(path, 'w') as out:
        if 'pts_ms' in spec:
            stream = out.add_stream(spec['codec'], rate=30)
            stream.codec_context.time_base = Fraction(1, 1000)
            stream.time_base = Fraction(1, 1000)
        else:
            stream = out.add_stream(spec['codec'], rate=spec['fps'])
        stream.width, stream.height = w, h
        stream.pix_fmt = spec.get('pix_fmt', 'yuv420p')
        stream.options = dict(spec.get('options', {}))
        if spec.get('rotation'):
            # PyAV's angle is counter-clockwise; a phone's "rotate=90" means 90 clockwise
            stream.set_display_rotation(-spec['rotation'])
        audio = None
        if spec.get('audio'):
            audio = out.add_stream('aac', rate=16000)
            audio.layout = 'mono'
        for i in range(spec['frames']):
            frame = av.VideoFrame.from_ndarray(make_frame(i, w, h), format='rgb24')
            if 'pts_ms' in spec:
                frame.pts = spec['pts_ms'][i]
                frame.time_base = Fraction(1, 1000)
            else:
                frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if audio is not None:
            seconds = spec['frames'] / spec['fps']
            n = int(16000 * seconds)
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(n) / 16000)).astype(np.float32)
            step = 1024
            for k in range(0, n, step):
                chunk = tone[None, k:k + step]
                aframe = av.AudioFrame.from_ndarray(chunk, format='flt', layout='mono')
                aframe.sample_rate = 16000
                aframe.pts = k
                for packet in audio.encode(aframe):
                    out.mux(packet)
            for packet in audio.encode():
                out.mux(packet)
    if spec.get('corrupt'):
        _corrupt_middle(path)


def _corrupt_middle(path: str) -> None:
    """Overwrite the middle third of the file with random bytes (header and index intact)."""
    size = osp.getsize(path)
    rng = np.random.default_rng(0)
    with open(path, 'r+b') as f:
        f.seek(size // 3)
        f.write(rng.integers(0, 256, size // 3, dtype=np.uint8).tobytes())


def write_variants(out_dir: str, names: Optional[Sequence[str]] = None,
                   in_subprocess: bool = True) -> Dict[str, dict]:
    """Write the variants ``names`` (default: all) to ``out_dir``.

    ``in_subprocess`` encodes in a fresh interpreter (needed once decord is imported).

    Returns:
        dict: name -> dict(path=..., **ground truth) with ``frames``, ``fps`` (average, frames
        per second), ``duration`` (s), ``width``/``height`` (as displayed, after rotation),
        ``rotation`` (clockwise degrees), ``vfr``, ``timestamps`` (s, presentation order)
        and ``decodable`` (False for the damaged file). Also written as ``variants.json``.
    """
    os.makedirs(out_dir, exist_ok=True)
    names = list(names or VARIANTS)
    if in_subprocess:
        # decord ships its own FFmpeg libraries; once it is imported, PyAV's libvpx-vp9
        # encoder fails to open (EINVAL), so encode in a clean interpreter.
        subprocess.run([sys.executable, '-m', 'vmae2_mm.testing.video_variants', out_dir,
                        '--in-process', '--names', *names], check=True,
                       stdout=subprocess.DEVNULL)
    table = {}
    for name in names:
        spec = VARIANTS[name]
        path = osp.join(out_dir, spec['file'])
        if not in_subprocess:
            write_video(path, spec)
        table[name] = dict(path=path, **_expected(spec))
    with open(osp.join(out_dir, 'variants.json'), 'w') as f:
        json.dump({k: {kk: vv for kk, vv in v.items() if kk != 'timestamps'}
                   for k, v in table.items()}, f, indent=1)
    return table


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir')
    parser.add_argument('--names', nargs='*', choices=sorted(VARIANTS))
    parser.add_argument('--in-process', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name, info in write_variants(args.out_dir, args.names,
                                     in_subprocess=not args.in_process).items():
        print(f"{name:16s} {info['path']}")


if __name__ == '__main__':
    main()
