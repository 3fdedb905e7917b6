"""Dual masking vs encoder-only masking: one pre-training step of ViT-B at 16x224x224.

    python benchmarks/bench_dual_masking.py [--batch 2] [--steps 2] [--rounds 1] [--threads 1]
        [--attn-impl manual sdpa] [--arch base --frames 16 --size 224] [--json PATH]

Both variants use the same model (ViT-B/16 encoder, 4-block 384-wide decoder), batch and tube
masking 0.9 (160 visible tokens); dual masking adds the running cell 0.5 (the decoder
reconstructs 784 tokens, input 944) while encoder-only masking reconstructs all 1408 hidden
tokens (decoder input 1568), i.e. VideoMAE v1. A step is forward + backward (no optimizer
update; it is identical for both).

Each variant runs in its own fresh process, after one warm-up step has allocated the gradients,
so memory is not shared between them: "peak memory" is the growth of the process's peak resident
set size during the timed steps (activations, autograd buffers and temporaries on top of the
model, its gradients and the input), read from ``VmHWM`` after resetting it through
``/proc/self/clear_refs`` (Linux). The processes run with ``MALLOC_MMAP_THRESHOLD_=65536`` so
glibc returns freed tensors to the OS and the resident size tracks live memory. Time is the
median per-step CPU time of the process (``time.process_time``, robust to other jobs sharing
the cores) and the median wall time; rounds alternate the variants.

``--attn-impl manual`` is the official formulation (explicit softmax(QK^T) matrices, as the
paper measured); ``sdpa`` is PyTorch's fused kernel (no N^2 attention maps kept). Prints both
figures and the ratios (targets: >= 1.3x faster, <= 0.7x peak memory).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def _rss_kb(field: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{field} not in /proc/self/status')


def run_variant(variant: str, batch: int, steps: int, threads: int, attn_impl: str,
                arch: str = 'base', frames: int = 16, size: int = 224) -> dict:
    import numpy as np
    import torch
    torch.set_num_threads(threads)
    import vmae2_mm  # noqa: F401
    from mmaction.structures import ActionDataSample
    from vmae2_mm.datasets.transforms.masking import RunningCellMasking, TubeMasking
    from vmae2_mm.models.pretrainers import VideoMAEv2Pretrainer

    torch.manual_seed(0)
    model = VideoMAEv2Pretrainer(encoder=dict(arch=arch, attn_impl=attn_impl, img_size=size,
                                              num_frames=frames),
                                 decoder=dict(attn_impl=attn_impl)).train()
    p = model.encoder.patch_size
    grid = (frames // 2, size // p, size // p)
    tube, cell = TubeMasking(grid, 0.9, seed=0), RunningCellMasking(grid, 0.5, seed=1)
    samples = []
    for _ in range(batch):
        r = tube({})
        if variant == 'dual':
            r = cell(r)
        ds = ActionDataSample()
        ds.set_field(r['enc_hidden'], 'enc_hidden')
        if 'dec_kept' in r:
            ds.set_field(r['dec_kept'], 'dec_kept')
        samples.append(ds)
    g = torch.Generator().manual_seed(0)
    data = model.data_preprocessor(dict(
        inputs=[torch.randint(0, 256, (1, 3, frames, size, size), generator=g,
                              dtype=torch.uint8)
                for _ in range(batch)], data_samples=samples), True)

    def step():
        loss = model(**data, mode='loss')['loss']
        loss.backward()
        return loss.item()

    step()  # warm-up: allocates gradients and lets the allocator settle
    times, walls, peaks = [], [], []
    for _ in range(steps):
        base = _rss_kb('VmRSS')
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # reset VmHWM (peak RSS) to the current RSS
        c0, t0 = time.process_time(), time.perf_counter()
        step()
        times.append(time.process_time() - c0)
        walls.append(time.perf_counter() - t0)
        peaks.append(_rss_kb('VmHWM') - base)
    n_dec = int(np.asarray(samples[0].get('dec_kept', samples[0].enc_hidden)).sum())
    return dict(variant=variant, time_s=statistics.median(times),
                wall_s=statistics.median(walls), peak_mb=max(peaks) / 1024,
                decoded_tokens=n_dec, times=times)


def json_report(report: dict, args) -> dict:
    """The printed figures as ``{settings, ratios: [{name, value, op, target}], times: [...]}``."""
    ratios, times = [], []
    for impl, r in report.items():
        ratios += [dict(name=f'{impl} attention: dual vs encoder-only step (speed-up, CPU time)',
                        value=r['speedup'], op='>=', target=1.3),
                   dict(name=f'{impl} attention: dual / encoder-only peak memory',
                        value=r['memory_ratio'], op='<=', target=0.7)]
        for variant in ('dual', 'encoder-only'):
            v = r[variant]
            times.append(dict(name=f'{impl} attention, {variant}: train step', seconds=v['time_s'],
                              wall_s=v['wall_s'], peak_mb=v['peak_mb'],
                              decoded_tokens=v['decoded_tokens']))
    settings = dict(arch=args.arch, frames=args.frames, size=args.size, batch=args.batch,
                    steps=args.steps, rounds=args.rounds, threads=args.threads)
    return dict(benchmark='pretrain step: dual vs encoder-only masking', settings=settings,
                ratios=ratios, times=times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--steps', type=int, default=2, help='timed steps per process')
    parser.add_argument('--rounds', type=int, default=1, help='processes per variant')
    parser.add_argument('--threads', type=int, default=1, help='torch threads')
    parser.add_argument('--attn-impl', nargs='+', default=['manual', 'sdpa'],
                        choices=['manual', 'sdpa'])
    parser.add_argument('--arch', default='base', help='encoder size (small/base/...)')
    parser.add_argument('--frames', type=int, default=16)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--json', metavar='PATH', help='also write the figures as JSON '
                        '(read by benchmarks/run_all.py)')
    parser.add_argument('--variant', choices=['dual', 'encoder-only'], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.batch, args.steps, args.threads,
                                     args.attn_impl[0], args.arch, args.frames, args.size)))
        return None
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='65536')
    print(f'ViT-{args.arch} pre-training step (forward + backward), '
          f'{args.frames}x{args.size}x{args.size}, batch {args.batch}, '
          f'{args.threads} thread(s), {args.rounds} x {args.steps} timed steps per variant')
    report = {}
    for impl in args.attn_impl:
        results = {'dual': [], 'encoder-only': []}
        for _ in range(args.rounds):
            for variant in ('dual', 'encoder-only'):
                out = subprocess.run(
                    [sys.executable, os.path.abspath(__file__), '--variant', variant,
                     '--batch', str(args.batch), '--steps', str(args.steps), '--threads',
                     str(args.threads), '--attn-impl', impl, '--arch', args.arch,
                     '--frames', str(args.frames), '--size', str(args.size)],
                    capture_output=True, text=True, check=True, env=env)
                results[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
        summary = {}
        for variant, runs in results.items():
            summary[variant] = {k: statistics.median(r[k] for r in runs)
                                for k in ('time_s', 'wall_s', 'peak_mb')}
            summary[variant]['decoded_tokens'] = runs[0]['decoded_tokens']
        d, e = summary['dual'], summary['encoder-only']
        print(f'attention: {impl}')
        for name, s in (('dual masking (tube 0.9 + running cell 0.5)', d),
                        ('encoder-only masking (tube 0.9, VideoMAE v1)', e)):
            print(f'  {name:46s} decoded {s["decoded_tokens"]:5d}  CPU {s["time_s"]:7.2f} s  '
                  f'wall {s["wall_s"]:7.2f} s  peak +{s["peak_mb"]:8.1f} MB')
        speedup = e['time_s'] / d['time_s']
        mem_ratio = d['peak_mb'] / e['peak_mb']
        print(f'  speed-up dual vs encoder-only (CPU time): {speedup:.2f}x (target >= 1.3x); '
              f'wall: {e["wall_s"] / d["wall_s"]:.2f}x')
        print(f'  peak memory dual / encoder-only: {mem_ratio:.2f}x (target <= 0.7x)')
        report[impl] = dict(summary, speedup=speedup, memory_ratio=mem_ratio)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(json_report(report, args), f, indent=1)
    return report


if __name__ == '__main__':
    main()
