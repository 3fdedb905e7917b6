"""TAD feature extraction: our streaming, batched extractor vs the official per-clip loop.

The reference reproduces OpenGVLab/VideoMAEv2 ``extract_tad_feature.py``: for every clip start
it decodes that clip's 16 frames (``VideoReader.get_batch``), converts them to float, /255,
squash-resizes them to 224x224 and runs the model with batch 1. Ours
(:class:`vmae2_mm.apis.feature_extraction.ClipFeatureExtractor`) decodes and preprocesses every
frame once and batches clips. Both run side by side in this process on the same generated
THUMOS-like videos (320x180, 30 fps), with the same model, one torch thread, and are checked
to produce the same features.

Two model sizes are timed: a *micro* ViT, where decoding/preprocessing dominate (what a GPU sees
with a big model: the network is fast relative to CPU-side video work), and a *small* ViT, where
the CPU network dominates. Run::

    python benchmarks/bench_tad_extraction.py [--videos 1] [--seconds 8] [--threads 1]
"""
import argparse
import os.path as osp
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

import vmae2_mm  # noqa: F401
from vmae2_mm.apis.feature_extraction import ClipFeatureExtractor
from vmae2_mm.datasets.synthetic.thumos import generate_mini_thumos
from vmae2_mm.models.backbones import VideoMAEv2ViT

MODELS = {
    'micro': dict(embed_dims=64, depth=2, num_heads=2, mlp_hidden_dims=128),
    'small': dict(embed_dims=192, depth=4, num_heads=3, mlp_hidden_dims=768),
}


@torch.no_grad()
def reference_extract(model, path, clip_len=16, stride=4, size=224):
    """The official loop: per-clip decode, per-clip preprocessing, batch 1."""
    from decord import VideoReader
    vr = VideoReader(path, num_threads=1)
    feats, decoded = [], 0
    for s in range(0, len(vr) - clip_len + 1, stride):
        frames = vr.get_batch(list(range(s, s + clip_len))).asnumpy()
        decoded += clip_len
        x = torch.from_numpy(frames).float() / 255.
        x = F.interpolate(x.permute(3, 0, 1, 2), size=(size, size), mode='bilinear',
                          align_corners=False)  # [C, T, H, W]: per-frame bilinear resize
        feats.append(model(x[None]))
    return torch.cat(feats).numpy(), decoded


def run(videos, arch, batch_size):
    torch.manual_seed(0)
    model = VideoMAEv2ViT(arch=arch, img_size=224, num_frames=16).eval()
    ours = ClipFeatureExtractor(model, clip_len=16, stride=4, img_size=224,
                                batch_size=batch_size, chunk_frames=128)
    # warm-up (allocator, kernels) on a short piece, outside the timings
    reference_extract(model, videos[0], stride=64)
    ours.extract(videos[0])
    res = {}
    for name in ('reference', 'ours'):
        t0 = time.perf_counter()
        clips, decoded, out = 0, 0, []
        for v in videos:
            if name == 'reference':
                f, d = reference_extract(model, v)
            else:
                f, info = ours.extract(v)
                d = info['frames_decoded']
            clips += len(f)
            decoded += d
            out.append(f)
        dt = time.perf_counter() - t0
        res[name] = dict(seconds=dt, clips=clips, decoded=decoded, feats=out)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(res['reference']['feats'],
                                                            res['ours']['feats']))
    return res, diff


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--videos', type=int, default=1)
    parser.add_argument('--seconds', type=float, default=8.0, help='length of each video')
    parser.add_argument('--threads', type=int, default=1, help='torch threads (both methods)')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        data = generate_mini_thumos(osp.join(tmp, 'data'), num_val=0, num_test=args.videos,
                                    size=180, width=320, fps=30.0, min_duration=args.seconds,
                                    max_duration=args.seconds, seed=0)
        videos = sorted(data['videos'].values())
        print(f'{len(videos)} generated video(s), 320x180 @ 30 fps, {args.seconds:.0f} s each; '
              f'16-frame clips at stride 4, squash to 224x224 (official preprocessing); '
              f'torch threads {args.threads}; batch {args.batch_size} for ours')
        print(f'{"model":<7} {"method":<10} {"clips":>6} {"frames decoded":>15} {"seconds":>8} '
              f'{"clips/s":>8}')
        for m in args.models:
            res, diff = run(videos, MODELS[m], args.batch_size)
            for name in ('reference', 'ours'):
                r = res[name]
                print(f'{m:<7} {name:<10} {r["clips"]:>6} {r["decoded"]:>15} '
                      f'{r["seconds"]:>8.2f} {r["clips"] / r["seconds"]:>8.2f}')
            ratio = res['reference']['seconds'] / res['ours']['seconds']
            print(f'{m:<7} speed-up {ratio:.2f}x, frames decoded '
                  f'{res["reference"]["decoded"] / res["ours"]["decoded"]:.2f}x fewer, '
                  f'max |feature difference| {diff:.2e}')


if __name__ == '__main__':
    main()
