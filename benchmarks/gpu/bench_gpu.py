"""GPU benchmarks of issue 20, measured side by side in one process on one device.

    python benchmarks/gpu/bench_gpu.py [--device cuda] [--tiny] [--only NAME ...] [--json PATH]

Sections (``--only`` picks some; each one's failure is recorded and the others still run):

* ``dual_masking``: one pre-training step (forward + backward + AdamW) of ViT-B 16x224^2 under
  bf16 autocast, dual masking (tube 0.9 + running cell 0.5) vs encoder-only masking (VideoMAE
  v1), with explicit-softmax attention (``attn_impl='manual'``, the paper's formulation) and with
  SDPA. Time: median of timed steps after warm-up (CUDA synchronised). Activation memory:
  ``torch.cuda.max_memory_allocated`` during a step minus the memory allocated before it (model,
  gradients kept allocated, AdamW states, inputs). Targets: dual >= 1.79x faster and <= 0.52x
  activation memory with explicit attention (paper Table 2), and the SDPA dual step >= 1.5x
  faster than the explicit dual step.
* ``vit_g_memory``: ViT-g pre-training step (full depth, per-block activation checkpointing in
  encoder and decoder, bf16 autocast, SDPA, dual masking): measured activation memory per clip
  vs ``tools/analysis/vit_memory_plan.py``'s prediction for the same setting (policy
  ``cuda_bf16``, ``with_cp``; saved activations + one recomputed block + the clip's inputs),
  target within 10%; and clips/s (no target).
* ``backbone``: inference forward, ViT-B and ViT-g 16x224^2, bf16 autocast, batch 32: clips/s
  of ours vs HF ``transformers`` VideoMAE (eager and SDPA attention, the same weights), and our
  achieved TFLOP/s (analytic FLOPs, ``bench_backbone.forward_flops``) as a fraction of the bf16
  matmul peak measured in this process. Targets: >= 1.0x HF SDPA, >= 2x HF eager, >= 50% of peak.
* ``extraction``: TAD feature extraction, ViT-B 16x4 on generated 320x240 videos: clips/s of
  our ``ClipFeatureExtractor`` (frames decoded once, batches of clips) vs the official per-clip
  loop (batch 1, each clip re-decoded; ``bench_tad_extraction.reference_extract`` with the
  official-numerics model), features compared. Target >= 3x.

``--tiny`` shrinks every size (tiny ViTs, 4 frames of 32^2, batch 2, one short video) so the
whole file runs in well under a minute on a CPU: the dry run that keeps this script working
between GPU runs. Its figures mean nothing; on a CPU, memory figures are None (n/a).

Output: the report dict (``device``, ``torch``, ``sections``: each with ``ratios`` =
``[{name, value, op, target}]``, ``figures`` and ``error``); ``--json`` writes it.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import traceback

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # benchmarks/: bench_backbone, bench_tad_extraction
from bench_backbone import ARCHS, forward_flops, hf_config  # noqa: E402  isort: skip

GIANT = dict(patch_size=14, embed_dims=1408, depth=40, num_heads=16, mlp_hidden_dims=6144)
TINY_ARCH = dict(embed_dims=64, depth=2, num_heads=2, mlp_hidden_dims=128, patch_size=16)
#: decoder of the tiny pre-training model (named encoders use the official decoders)
TINY_DECODER = dict(embed_dims=32, depth=1, num_heads=2, mlp_hidden_dims=64)
SECTIONS = ('dual_masking', 'vit_g_memory', 'backbone', 'extraction')


class Bench:
    """Device helpers: synchronised timing and allocator peaks (None on a CPU)."""

    def __init__(self, device: str):
        self.device = torch.device(device)
        self.cuda = self.device.type == 'cuda'

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def timed(self, fn, steps: int, warmup: int = 1) -> float:
        """Median seconds of ``fn()`` over ``steps`` calls after ``warmup`` calls."""
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(steps):
            self.sync()
            t = time.perf_counter()
            fn()
            self.sync()
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    def peak_over(self, fn):
        """(result, bytes allocated above the level before ``fn``) — None on CPU."""
        if not self.cuda:
            return fn(), None
        self.sync()
        torch.cuda.reset_peak_memory_stats(self.device)
        base = torch.cuda.memory_allocated(self.device)
        out = fn()
        self.sync()
        return out, torch.cuda.max_memory_allocated(self.device) - base

    def autocast(self, enabled=True):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def name(self) -> str:
        if self.cuda:
            return torch.cuda.get_device_name(self.device)
        import platform
        return f'CPU ({platform.processor() or platform.machine()})'


def _free(*objs):
    del objs
    import gc
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ------------------------------------------------------------------ pre-training steps
def pretrain_batch(model, batch: int, frames: int, size: int, dual: bool, device, seed=0):
    """Preprocessed pre-training batch with tube (0.9) and, for dual, running-cell (0.5)
    masks, as the data pipeline makes them (the same construction as
    ``benchmarks/bench_dual_masking.py``)."""
    from mmaction.structures import ActionDataSample
    from vmae2_mm.datasets.transforms.masking import RunningCellMasking, TubeMasking
    p = model.encoder.patch_size
    grid = (frames // 2, size // p, size // p)
    tube, cell = TubeMasking(grid, 0.9, seed=seed), RunningCellMasking(grid, 0.5, seed=seed + 1)
    samples = []
    for _ in range(batch):
        r = tube({})
        if dual:
            r = cell(r)
        ds = ActionDataSample()
        ds.set_field(r['enc_hidden'], 'enc_hidden')
        if 'dec_kept' in r:
            ds.set_field(r['dec_kept'], 'dec_kept')
        samples.append(ds)
    g = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(0, 256, (1, 3, frames, size, size), generator=g, dtype=torch.uint8)
              for _ in range(batch)]
    return model.data_preprocessor(dict(inputs=inputs, data_samples=samples), True)


def pretrain_step_figures(bench: Bench, arch, attn: str, dual: bool, batch: int, frames: int,
                          size: int, steps: int, with_cp: bool = False) -> dict:
    """Median step seconds and activation bytes of forward + backward + AdamW under bf16."""
    from vmae2_mm.models.pretrainers import VideoMAEv2Pretrainer
    torch.manual_seed(0)
    with bench.device:  # initialise on the device: ViT-g's 1B parameters init slowly on a CPU
        model = VideoMAEv2Pretrainer(
            encoder=dict(arch=arch, attn_impl=attn, img_size=size, num_frames=frames,
                         with_cp=with_cp),
            decoder=dict(attn_impl=attn, with_cp=with_cp,
                         **(TINY_DECODER if isinstance(arch, dict) else {}))
        ).to(bench.device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=bench.cuda)
    data = pretrain_batch(model, batch, frames, size, dual, bench.device)

    def step():
        with bench.autocast():
            loss = model(**data, mode='loss')['loss']
        loss.backward()
        opt.step()
        # keep the gradient buffers: they belong to the baseline, not to the activations
        opt.zero_grad(set_to_none=False)

    seconds = bench.timed(step, steps, warmup=2)
    _, act = bench.peak_over(step)
    n_dec = int(data['data_samples'][0].get('dec_kept', data['data_samples'][0].enc_hidden)
                .sum())
    out = dict(seconds=seconds, clips_per_s=batch / seconds, activation_bytes=act,
               decoded_tokens=n_dec, batch=batch)
    _free(model, opt, data)
    return out


def section_dual_masking(bench: Bench, tiny: bool) -> dict:
    arch = TINY_ARCH if tiny else 'base'
    frames, size = (4, 32) if tiny else (16, 224)
    batch = 2 if tiny else 32
    steps = 2 if tiny else 5
    res = {}
    for attn in ('manual', 'sdpa'):
        for masking in ('dual', 'encoder-only'):
            res[(attn, masking)] = pretrain_step_figures(bench, arch, attn, masking == 'dual',
                                                         batch, frames, size, steps)
    ratios, figures = [], []
    for attn in ('manual', 'sdpa'):
        d, e = res[(attn, 'dual')], res[(attn, 'encoder-only')]
        label = 'explicit-softmax' if attn == 'manual' else 'SDPA'
        mem = (d['activation_bytes'] / e['activation_bytes']
               if d['activation_bytes'] and e['activation_bytes'] else None)
        ratios += [dict(name=f'{label} attention: dual vs encoder-only step speed-up',
                        value=e['seconds'] / d['seconds'], op='>=',
                        target=1.79 if attn == 'manual' else None),
                   dict(name=f'{label} attention: dual / encoder-only activation memory',
                        value=mem, op='<=', target=0.52 if attn == 'manual' else None)]
        for masking in ('dual', 'encoder-only'):
            figures.append(dict(name=f'{label}, {masking}', **res[(attn, masking)]))
    ratios.append(dict(name='dual step: SDPA vs explicit-softmax speed-up',
                       value=res[('manual', 'dual')]['seconds'] / res[('sdpa', 'dual')]['seconds'],
                       op='>=', target=1.5))
    settings = dict(arch='tiny' if tiny else 'base', frames=frames, size=size, batch=batch,
                    steps=steps, precision='bf16 autocast', optimizer='AdamW')
    return dict(settings=settings, ratios=ratios, figures=figures)


def section_vit_g_memory(bench: Bench, tiny: bool) -> dict:
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), '..', 'tools', 'analysis'))
    import vit_memory_plan as plan
    arch = TINY_ARCH if tiny else 'giant'
    frames, size = (4, 32) if tiny else (16, 224)
    batch = 2 if tiny else 16
    fig = pretrain_step_figures(bench, arch, 'sdpa', True, batch, frames, size,
                                steps=1 if tiny else 3, with_cp=True)
    dims = plan.Dims.from_arch(arch, TINY_DECODER if tiny else None)
    tok = plan.token_counts(dims, frames, size, dual=True)
    acts = plan.saved_activation_bytes(dims, tok, 'sdpa', 'cuda_bf16', with_cp=True)
    predicted = acts['total'] + acts['recompute_peak'] + plan.clip_input_bytes(frames, size,
                                                                                tok, dims)
    measured = fig['activation_bytes'] / batch if fig['activation_bytes'] else None
    # the plan counts the fp32 normalised clip, which was allocated before the step (in the
    # baseline); the pixel targets are made inside the step, so they are measured already
    measured_with_inputs = (measured + 4 * 3 * frames * size * size
                            if measured is not None else None)
    ratio = measured_with_inputs / predicted if measured_with_inputs else None
    return dict(
        settings=dict(arch='tiny' if tiny else 'giant (full depth, 40 blocks)', frames=frames,
                      size=size, batch=batch, with_cp=True, attn='sdpa',
                      policy='cuda_bf16', masking='dual'),
        ratios=[dict(name='ViT-g measured / planned activation memory per clip',
                     value=ratio, op='within', target=[0.9, 1.1])],
        figures=[dict(name='ViT-g pre-training step', predicted_bytes_per_clip=predicted,
                      measured_bytes_per_clip=measured_with_inputs, **fig)])


# ------------------------------------------------------------------ backbone inference
def matmul_peak_tflops(bench: Bench, n: int) -> float:
    """Best bf16 ``torch.mm`` TFLOP/s of an n x n x n product on the device."""
    a = torch.randn(n, n, device=bench.device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=bench.device, dtype=torch.bfloat16)
    best = min(bench.timed(lambda: torch.mm(a, b), 3, warmup=2) for _ in range(3))
    return 2 * n**3 / best / 1e12


def section_backbone(bench: Bench, tiny: bool) -> dict:
    import transformers

    from vmae2_mm.checkpoint.videomaev2 import canonicalize, to_backbone_keys_from
    from vmae2_mm.models.backbones.vit_videomaev2 import VideoMAEv2ViT
    frames, size = (4, 32) if tiny else (16, 224)
    batch = 2 if tiny else 32
    steps = 2 if tiny else 5
    archs = {'tiny': TINY_ARCH} if tiny else {'base': ARCHS['base'], 'giant': GIANT}
    peak = matmul_peak_tflops(bench, 256 if tiny else 8192)
    ratios, figures = [], []
    for name, arch in archs.items():
        torch.manual_seed(0)
        with bench.device:
            state = transformers.VideoMAEModel(hf_config(arch, frames, size)).state_dict()
        x = torch.randn(batch, 3, frames, size, size, device=bench.device)
        secs, outs = {}, {}
        for impl in ('ours', 'hf_sdpa', 'hf_eager'):
            with bench.device:
                if impl == 'ours':
                    model = VideoMAEv2ViT(arch=arch, img_size=size, num_frames=frames,
                                          out_type='tokens')
                    # the HF layout converted in memory (load_backbone_checkpoint reads files)
                    sd, _ = to_backbone_keys_from(canonicalize(state), True)
                    report = model.load_state_dict(sd, strict=False)
                    assert not report.unexpected_keys, report
                    fn = model.eval()
                else:
                    model = transformers.VideoMAEModel(hf_config(
                        arch, frames, size, 'sdpa' if impl == 'hf_sdpa' else 'eager'))
                    model.load_state_dict(state)
                    model.eval()

                    def fn(v, m=model):
                        return m(pixel_values=v.permute(0, 2, 1, 3, 4)).last_hidden_state
            with torch.inference_mode(), bench.autocast():
                # ViT-g: 3 timed forwards of batch 32 are seconds each already
                secs[impl] = bench.timed(lambda: fn(x), 3 if name == 'giant' else steps,
                                         warmup=1 if name == 'giant' else 2)
                outs[impl] = fn(x[:1]).float().cpu()
            _free(model)
        flops = forward_flops(dict(arch, patch_size=arch.get('patch_size', 16)), frames,
                              size) * batch
        tflops = flops / secs['ours'] / 1e12
        diff = float((outs['ours'] - outs['hf_eager']).abs().max())
        ratios += [dict(name=f'ViT-{name}: ours vs HF SDPA clips/s', value=secs['hf_sdpa'] /
                        secs['ours'], op='>=', target=1.0),
                   dict(name=f'ViT-{name}: ours vs HF eager clips/s', value=secs['hf_eager'] /
                        secs['ours'], op='>=', target=2.0),
                   dict(name=f'ViT-{name}: ours achieved / bf16 matmul peak TFLOP/s',
                        value=tflops / peak, op='>=', target=0.5)]
        figures.append(dict(name=f'ViT-{name} inference, batch {batch}',
                            clips_per_s={k: batch / v for k, v in secs.items()},
                            ours_tflops=tflops, max_abs_diff_vs_hf_eager=diff))
        _free(state, x)
    return dict(settings=dict(frames=frames, size=size, batch=batch, precision='bf16 autocast',
                              bf16_matmul_peak_tflops=peak),
                ratios=ratios, figures=figures)


# ------------------------------------------------------------------ feature extraction
def section_extraction(bench: Bench, tiny: bool) -> dict:
    import importlib.util
    if importlib.util.find_spec('decord') is None:
        raise RuntimeError('decord is not installed (both extractors decode with it)')
    import numpy as np
    import bench_tad_extraction as tad

    from vmae2_mm.apis.feature_extraction import ClipFeatureExtractor
    from vmae2_mm.checkpoint.videomaev2 import load_backbone_checkpoint
    from vmae2_mm.models.backbones import VideoMAEv2ViT
    from vmae2_mm.testing.thumos import generate_mini_thumos
    arch = dict(TINY_ARCH) if tiny else dict(ARCHS['base'])
    tmp = tempfile.mkdtemp(prefix='bench_gpu_extract_')
    data = generate_mini_thumos(tmp, num_val=1, num_test=0, num_classes=2,
                                size=64 if tiny else 240, width=64 if tiny else 320,
                                fps=10.0 if tiny else 30.0, min_duration=8.0,
                                max_duration=8.0, seed=0)
    videos = sorted(os.path.join(data['video_dir'], v) for v in os.listdir(data['video_dir']))
    weights = os.path.join(tmp, 'weights.pth')
    tad.write_weights(arch, weights)
    official = tad.official_model(arch, weights)
    # the official model on the device (its forward closes over the HF module); the loop
    # hands it host clips of batch 1, as the official script does
    for cell in official.__closure__ or ():
        if isinstance(cell.cell_contents, torch.nn.Module):
            cell.cell_contents.to(bench.device)

    def official_dev(x, fwd=official):
        return fwd(x.to(bench.device)).float().cpu()
    model = VideoMAEv2ViT(arch=arch, img_size=224, num_frames=16).eval()
    report = load_backbone_checkpoint(model, weights)
    assert not report['missing'] and not report['unexpected'], report
    ours = ClipFeatureExtractor(model, clip_len=16, stride=4, img_size=224,
                                batch_size=2 if tiny else 32, chunk_frames=128,
                                device=bench.device)
    with torch.inference_mode():
        tad.reference_extract(official_dev, videos[0], stride=64)   # warm-up
        ours.extract(videos[0])
        bench.sync()
        t = time.perf_counter()
        ref = [tad.reference_extract(official_dev, v)[0] for v in videos]
        t_ref = time.perf_counter() - t
        t = time.perf_counter()
        got = [ours.extract(v)[0] for v in videos]
        bench.sync()
        t_ours = time.perf_counter() - t
    clips = sum(len(f) for f in ref)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(ref, got))
    return dict(settings=dict(arch='tiny' if tiny else 'base', clip='16x4', video='320x240'
                              if not tiny else '64x64', videos=len(videos), clips=clips,
                              precision='fp32'),
                ratios=[dict(name='feature extraction: ours vs official per-clip loop clips/s',
                             value=t_ref / t_ours, op='>=', target=3.0)],
                figures=[dict(name='official per-clip loop', clips_per_s=clips / t_ref),
                         dict(name='ours (ClipFeatureExtractor)', clips_per_s=clips / t_ours,
                              max_abs_diff_vs_official=diff)])


def verdict(ratio: dict) -> str:
    """'pass' / 'FAIL' against the target, 'n/a' without a value, '-' without a target."""
    v, t = ratio.get('value'), ratio.get('target')
    if t is None:
        return '-'
    if v is None:
        return 'n/a'
    if ratio['op'] == '>=':
        return 'pass' if v >= t else 'FAIL'
    if ratio['op'] == '<=':
        return 'pass' if v <= t else 'FAIL'
    return 'pass' if t[0] <= v <= t[1] else 'FAIL'


def run(device: str = 'cuda', tiny: bool = False, only=None, json_path=None,
        budget: float = float('inf')) -> dict:
    """All sections; the report is rewritten to ``json_path`` after each one, and sections not
    started within ``budget`` seconds are recorded as skipped (a run cut short keeps a report)."""
    import vmae2_mm  # noqa: F401
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    bench = Bench(device)
    if bench.cuda:
        # fp32 parts (extraction) in true fp32, as the CPU reference
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    report = dict(device=bench.name(), torch=torch.__version__, tiny=tiny, sections={})
    fns = dict(dual_masking=section_dual_masking, vit_g_memory=section_vit_g_memory,
               backbone=section_backbone, extraction=section_extraction)
    t_start = time.perf_counter()
    for name in only or SECTIONS:
        t = time.perf_counter()
        if t - t_start > budget:
            report['sections'][name] = dict(settings={}, ratios=[], figures=[], seconds=0.,
                                            error=f'not run: time budget of {budget:.0f} s spent')
            continue
        try:
            sec = fns[name](bench, tiny)
            sec['error'] = None
        except Exception as e:  # noqa: BLE001  (record and go on: one report for all)
            sec = dict(settings={}, ratios=[], figures=[],
                       error=f'{type(e).__name__}: {e}\n{traceback.format_exc()[-2000:]}')
        sec['seconds'] = time.perf_counter() - t
        for r in sec['ratios']:
            r['verdict'] = verdict(r)
        report['sections'][name] = sec
        if json_path:
            with open(json_path, 'w') as f:
                json.dump(report, f, indent=1, default=str)
        _free()
        print(f'[bench_gpu] {name}: {sec["seconds"]:.1f} s'
              + (f' ERROR {sec["error"].splitlines()[0]}' if sec['error'] else ''), flush=True)
    return report


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--tiny', action='store_true', help='tiny sizes (CPU dry run)')
    parser.add_argument('--only', nargs='+', choices=SECTIONS)
    parser.add_argument('--json', metavar='PATH')
    parser.add_argument('--budget', type=float, default=float('inf'),
                        help='start no new section after this many seconds')
    args = parser.parse_args(argv)
    report = run(args.device, args.tiny, args.only, args.json, args.budget)
    for name, sec in report['sections'].items():
        for r in sec['ratios']:
            v = 'n/a' if r['value'] is None else f'{r["value"]:.3f}'
            print(f'  {name}: {r["name"]}: {v} {r["op"]} {r["target"]} -> {r["verdict"]}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=1, default=str)
    return report


if __name__ == '__main__':
    main()
