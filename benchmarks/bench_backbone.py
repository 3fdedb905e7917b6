"""Forward time and peak memory: our VideoMAEv2ViT vs HF transformers VideoMAE, same weights.

    python benchmarks/bench_backbone.py [--archs small base] [--frames 16] [--size 224]
        [--repeats 5] [--dtypes fp32 bf16] [--json PATH]

Every (implementation, arch, dtype) case runs in its own subprocess, one after another, so its
peak resident memory (``ru_maxrss``) is its own; the main process prints ratios measured side by
side in this one run:

* speed-up of ours over HF ``attn_implementation='eager'`` and ``'sdpa'`` (median forward time,
  batch 1, inference, fp32 and CPU bf16 autocast);
* achieved GFLOP/s of our fp32 forward (analytic FLOP count) against the machine's measured fp32
  matmul peak (large ``torch.mm`` / oneDNN product, whichever is faster), measured in the same
  process just before and after the timed forwards;
* our bf16-autocast speed-up over our fp32;
* in fp32, our backbone with its CPU inference attention (the compiled fused kernel where it is
  built, else oneDNN's products where MKL is slow) against the same backbone with torch's SDPA
  (``ours_sdpa``);
* where our fp32 time goes (one profiled forward): the linear layers' and the attention
  kernel's own GFLOP/s against the same peak (informational: it shows which part keeps the
  whole forward from the peak);
* one layer's attention timed alone (informational): torch's fused SDPA, our compiled fused
  kernel, our oneDNN blocked attention and that one's two products without the softmax; and the
  whole forward's fraction of the peak if attention ran as fast as the linear layers do (a
  ceiling for attention work).

Peak RSS includes the loaded weights (each worker reads the same state-dict file).
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import torch

ARCHS = {
    'small': dict(embed_dims=384, depth=12, num_heads=6, mlp_hidden_dims=1536, patch_size=16),
    'base': dict(embed_dims=768, depth=12, num_heads=12, mlp_hidden_dims=3072, patch_size=16),
    'large': dict(embed_dims=1024, depth=24, num_heads=16, mlp_hidden_dims=4096, patch_size=16),
}


def forward_flops(arch: dict, frames: int, size: int) -> float:
    """Multiply-adds x 2 of one backbone forward (cube embedding, blocks; norms ignored)."""
    p = arch['patch_size']
    n = (frames // 2) * (size // p)**2
    embed = 2 * n * arch['embed_dims'] * 3 * 2 * p * p
    return embed + sum(split_flops(arch, frames, size).values())


def split_flops(arch: dict, frames: int, size: int) -> dict:
    """The blocks' part of :func:`forward_flops`: linear layers and attention products
    (``q k^T`` and ``attn v``)."""
    d, h, p = arch['embed_dims'], arch['mlp_hidden_dims'], arch['patch_size']
    n = (frames // 2) * (size // p)**2
    return dict(linear=arch['depth'] * (2 * n * d * 3 * d + 2 * n * d * d + 2 * 2 * n * d * h),
                attention=arch['depth'] * 2 * 2 * n * n * d)


#: profiler op names -> part of the forward (our fp32 inference path)
PROFILE_PARTS = {
    'mkldnn::_linear_pointwise': 'linear', 'aten::addmm': 'linear', 'aten::mm': 'linear',
    'aten::_scaled_dot_product_flash_attention_for_cpu': 'attention',
}


def profile_parts(fn, x) -> dict:
    """Self CPU seconds of one forward per part (``linear``, ``attention``, ``other``).

    Everything inside the backbone's attention scopes counts as attention (the oneDNN
    attention's products are oneDNN linear calls too)."""
    from torch.profiler import ProfilerActivity, profile

    from vmae2_mm.ops.cpu import fused_attention as cpu_fused_attention
    from vmae2_mm.ops.cpu import onednn_attention as cpu_attention
    scopes = {cpu_attention.PROFILER_SCOPE, cpu_fused_attention.PROFILER_SCOPE}
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn(x)
    parts = dict(linear=0.0, attention=0.0, other=0.0)
    for ev in prof.events():
        scope, inside = ev, False
        while scope is not None and not inside:
            inside, scope = scope.name in scopes, scope.cpu_parent
        part = 'attention' if inside else PROFILE_PARTS.get(ev.name, 'other')
        parts[part] += ev.self_cpu_time_total / 1e6
    return parts


def attention_layer_times(arch: dict, frames: int, size: int, repeats: int = 5) -> dict:
    """One layer's attention, batch 1, q/k/v as views of one ``qkv`` tensor like the backbone's:
    best seconds of torch's fused SDPA (plus the head merge), of our compiled fused kernel
    (``fused``, where it is built), of our oneDNN blocked attention (``onednn``) and of that
    one's two products alone (``onednn_products``, no softmax: the floor of that approach); and
    in bf16, torch's SDPA (``sdpa_bf16``) and what our backbone runs under autocast
    (``fused_bf16``: the bf16 kernel, or the fp32 kernel on upcast q/k/v, where it is built)."""
    from vmae2_mm.ops.cpu.onednn_attention import QUERY_BLOCK, onednn_attention
    from vmae2_mm.ops.cpu.fused_attention import (fused_attention,
                                                               fused_attention_available)
    n = (frames // 2) * (size // arch['patch_size'])**2
    heads, c = arch['num_heads'], arch['embed_dims']
    qkv = torch.randn(1, n, 3, heads, c // heads)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    product = torch.ops.mkldnn._linear_pointwise

    def sdpa(q=q, k=k, v=v):
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        return out.transpose(1, 2).reshape(1, n, c)

    def products():
        for h in range(heads):
            keys, values_t = k[0, h].contiguous(), v[0, h].t().contiguous()
            for i in range(0, n, QUERY_BLOCK):
                scores = product(q[0, h, i:i + QUERY_BLOCK], keys, None, 'none', [], '')
                product(scores, values_t, None, 'none', [], '')

    def best(fn):
        fn()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    with torch.inference_mode():
        times = dict(sdpa=best(sdpa), onednn=best(lambda: onednn_attention(q, k, v)),
                     onednn_products=best(products))
        q16, k16, v16 = qkv.bfloat16().permute(2, 0, 3, 1, 4)
        times['sdpa_bf16'] = best(lambda: sdpa(q16, k16, v16))
        if fused_attention_available():
            times['fused'] = best(lambda: fused_attention(q, k, v))
            times['fused_bf16'] = best(lambda: fused_attention(q16, k16, v16))
    return times


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """Best GFLOP/s of an n x n x n product in ``dtype``: ``torch.mm`` and oneDNN's matmul.

    fp32 ``torch.mm`` runs MKL's sgemm, which on AMD CPUs is about half as fast as oneDNN's (the
    backbone's fp32 inference linears use oneDNN), so the faster of the two is the peak.
    """
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    fns = [lambda: torch.mm(a, b)]
    if torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, '_linear_pointwise'):
        def onednn():
            return torch.ops.mkldnn._linear_pointwise(a, b, None, 'none', [], '')
        try:
            with torch.inference_mode():
                onednn()
            fns.append(onednn)
        except RuntimeError:
            pass  # no oneDNN kernel for this dtype on this CPU (e.g. bf16 without AVX-512)
    best = float('inf')
    with torch.inference_mode():
        for fn in fns:
            fn()
            for _ in range(repeats):
                t = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def cpu_settings() -> dict:
    """What decides the figures: CPU vendor and model, AMX, and which attention ours runs in
    fp32 and in bf16."""
    import vmae2_mm  # noqa: F401
    from vmae2_mm.ops.cpu.fused_attention import (
        bf16_kernel, fused_attention_available, fused_attention_unavailable_reason)
    from vmae2_mm.ops.cpu.onednn_linear import onednn_preferred
    from vmae2_mm.ops.cpu.cpu_info import cpu_field, cpu_flags, cpu_vendor
    return dict(cpu_vendor=cpu_vendor(), cpu_model=cpu_field('model name'),
                amx_bf16='amx_bf16' in cpu_flags(),
                fp32_attention='fused kernel' if fused_attention_available() else
                f'SDPA/oneDNN ({fused_attention_unavailable_reason()})',
                bf16_attention=f'fused kernel ({bf16_kernel()})' if bf16_kernel() else
                'fp32 kernel on upcast q/k/v' if fused_attention_available() else 'SDPA',
                fp32_linears='oneDNN' if onednn_preferred() else 'BLAS (MKL)')


def hf_config(arch: dict, frames: int, size: int, attn: str = 'eager'):
    """HF ``VideoMAEConfig`` of ``arch`` (our arch dict; patch 16 unless it says otherwise)
    with the official LayerNorm eps and mean pooling (no final norm on the tokens)."""
    import transformers
    return transformers.VideoMAEConfig(
        image_size=size, patch_size=arch.get('patch_size', 16), num_frames=frames,
        hidden_size=arch['embed_dims'], num_hidden_layers=arch['depth'],
        num_attention_heads=arch['num_heads'], intermediate_size=arch['mlp_hidden_dims'],
        layer_norm_eps=1e-6, use_mean_pooling=True, attn_implementation=attn)


def write_weights(arch_name: str, frames: int, size: int, path: str) -> None:
    """One random HF VideoMAE state dict, loaded by every implementation of this arch."""
    import transformers
    torch.manual_seed(0)
    hf = transformers.VideoMAEModel(hf_config(ARCHS[arch_name], frames, size))
    torch.save(hf.state_dict(), path)


def _build(impl: str, arch_name: str, frames: int, size: int, weights: str):
    import transformers

    import vmae2_mm  # noqa: F401
    from vmae2_mm.models.backbones.vit_videomaev2 import VideoMAEv2ViT
    from vmae2_mm.checkpoint.videomaev2 import load_backbone_checkpoint
    if impl.startswith('hf'):
        attn = 'sdpa' if impl == 'hf_sdpa' else 'eager'
        hf = transformers.VideoMAEModel(
            hf_config(ARCHS[arch_name], frames, size, attn)).eval()
        hf.load_state_dict(torch.load(weights, weights_only=True))
        return lambda x: hf(pixel_values=x.permute(0, 2, 1, 3, 4)).last_hidden_state
    from vmae2_mm.ops.cpu import optimize_for_cpu_inference
    # 'ours': the attention 'auto' picks here; 'ours_sdpa': torch's SDPA; both with the
    # linears this CPU runs fastest (oneDNN where MKL is slow)
    ours = VideoMAEv2ViT(arch=ARCHS[arch_name], img_size=size, num_frames=frames,
                         out_type='tokens',
                         attn_impl='sdpa' if impl == 'ours_sdpa' else 'auto').eval()
    report = load_backbone_checkpoint(ours, weights)
    assert not report['unexpected'], report
    optimize_for_cpu_inference(ours)
    return ours


def worker(impl: str, arch: str, dtype: str, frames: int, size: int, repeats: int,
           weights: str) -> dict:
    """Time one case; returns median seconds, peak RSS (MiB) and a checksum of the output.

    Two warm-up forwards first (the first ones also fault in the allocator's pages). For our
    fp32 forward, the fp32 matmul peak is measured in the same process just before and just
    after the timed forwards (the larger of the two is kept): this machine's speed drifts by
    10-15% over minutes, so the fraction of the peak compares figures taken side by side."""
    fn = _build(impl, arch, frames, size, weights)
    x = torch.randn(1, 3, frames, size, size, generator=torch.Generator().manual_seed(1))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times, local_peak = [], None
    side_by_side_peak = impl == 'ours' and dtype == 'fp32'
    with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16,
                                                enabled=dtype == 'bf16'):
        for _ in range(2):
            out = fn(x)
        if side_by_side_peak:
            local_peak = matmul_peak(torch.float32)
        for _ in range(repeats):
            t = time.perf_counter()
            out = fn(x)
            times.append(time.perf_counter() - t)
        if side_by_side_peak:
            local_peak = max(local_peak, matmul_peak(torch.float32))
        # after the RSS-relevant runs: the profiler's own buffers must not count
        parts = profile_parts(fn, x) if impl == 'ours' and dtype == 'fp32' else None
    layer = (attention_layer_times(ARCHS[arch], frames, size)
             if impl == 'ours' and dtype == 'fp32' else None)
    times.sort()
    return dict(time=times[len(times) // 2], peak_rss_mib=resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss / 1024, rss_before_mib=rss_before,
                checksum=float(out.float().abs().mean()), parts=parts, attention_layer=layer,
                fp32_peak=local_peak)


def run_case(impl, arch, dtype, args, weights) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), '--worker', impl, arch, dtype, weights,
           '--frames', str(args.frames), '--size', str(args.size), '--repeats',
           str(args.repeats)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def attention_ceiling_time(parts: dict, split: dict) -> float:
    """Profiled forward seconds with the attention's time replaced by its FLOPs at the linear
    layers' measured rate."""
    linear_rate = split['linear'] / parts['linear']
    return parts['linear'] + parts['other'] + split['attention'] / linear_rate


def json_report(results: dict, args, peak32: float, peak16: float) -> dict:
    """The printed figures as ``{settings, ratios: [{name, value, op, target}], times: [...]}``."""
    ratios, times = [], []
    for (arch, dtype), row in results.items():
        tag = f'ViT-{arch[0].upper()} {dtype}'
        flops = forward_flops(ARCHS[arch], args.frames, args.size)
        o = row['ours']['time']
        fp32 = dtype == 'fp32'  # the speed-up targets are set for fp32
        p32 = row['ours'].get('fp32_peak') or peak32  # measured side by side (see worker)
        ratios += [dict(name=f'{tag}: ours vs HF eager (speed-up)',
                        value=row['hf_eager']['time'] / o, op='>=' if fp32 else None,
                        target=1.8 if fp32 else None),
                   dict(name=f'{tag}: ours vs HF SDPA (speed-up)',
                        value=row['hf_sdpa']['time'] / o, op='>=' if fp32 else None,
                        target=1.0 if fp32 else None)]
        if 'ours_sdpa' in row:
            ratios.append(dict(name=f'{tag}: ours, its CPU attention vs torch SDPA (speed-up)',
                               value=row['ours_sdpa']['time'] / o, op=None, target=None))
        if fp32:
            ratios.append(dict(name=f'{tag}: ours GFLOP/s / fp32 matmul peak',
                               value=flops / o / 1e9 / p32, op='>=', target=0.8))
            parts = row['ours'].get('parts')
            if parts:
                split = split_flops(ARCHS[arch], args.frames, args.size)
                for part in ('linear', 'attention'):
                    ratios += [dict(name=f'{tag}: ours {part} ops GFLOP/s / fp32 matmul peak',
                                    value=split[part] / parts[part] / 1e9 / p32, op=None,
                                    target=None),
                               dict(name=f'{tag}: ours {part} ops share of the forward time',
                                    value=parts[part] / sum(parts.values()), op=None,
                                    target=None)]
                times += [dict(name=f'{tag} forward, ours, profiled: {part}', seconds=sec)
                          for part, sec in parts.items()]
                ceiling = flops / o / 1e9 / p32 * sum(parts.values()) / attention_ceiling_time(
                    parts, split)
                ratios.append(dict(
                    name=f'{tag}: ours GFLOP/s / fp32 matmul peak if attention ran at the '
                    'linear ops\' rate (ceiling)', value=ceiling, op=None, target=None))
            times.append(dict(name=f'{tag} fp32 matmul peak beside our forward (GFLOP/s)',
                              gflops_per_s=p32))
            layer = row['ours'].get('attention_layer')
            if layer:
                if 'fused' in layer:
                    ratios.append(dict(
                        name=f'{tag}: one layer\'s attention, our fused kernel vs torch SDPA '
                        '(speed-up)', value=layer['sdpa'] / layer['fused'], op=None, target=None))
                    ratios.append(dict(
                        name=f'{tag}: one layer\'s attention, our fused kernel GFLOP/s / fp32 '
                        'matmul peak', value=split_flops(ARCHS[arch], args.frames, args.size)[
                            'attention'] / ARCHS[arch]['depth'] / layer['fused'] / 1e9 / p32,
                        op=None, target=None))
                if 'fused_bf16' in layer:
                    ratios.append(dict(
                        name=f'ViT-{arch[0].upper()}: one layer\'s attention in bf16, our fused '
                        'kernel vs torch bf16 SDPA (speed-up)', value=layer['sdpa_bf16'] / layer['fused_bf16'],
                        op=None, target=None))
                ratios.append(dict(
                    name=f'{tag}: one layer\'s attention, oneDNN products alone (no softmax) '
                    '/ the whole oneDNN attention (time share)',
                    value=layer['onednn_products'] / layer['onednn'], op=None, target=None))
                times += [dict(name=f'{tag} one layer\'s attention: {what}', seconds=sec)
                          for what, sec in layer.items()]
        if dtype == 'bf16' and (arch, 'fp32') in results:
            ratios.append(dict(name=f'ViT-{arch[0].upper()}: ours bf16 autocast vs ours fp32 '
                               '(speed-up)', value=results[(arch, 'fp32')]['ours']['time'] / o,
                               op=None, target=None))  # informational: no CPU target
        for impl, r in row.items():
            times.append(dict(name=f'{tag} forward, {impl}', seconds=r['time'],
                              gflops_per_s=flops / r['time'] / 1e9,
                              peak_rss_mib=r['peak_rss_mib']))
    times += [dict(name='fp32 matmul peak (GFLOP/s)', gflops_per_s=peak32),
              dict(name='bf16 matmul peak (GFLOP/s)', gflops_per_s=peak16)]
    settings = dict(archs=args.archs, dtypes=args.dtypes, frames=args.frames, size=args.size,
                    repeats=args.repeats, batch=1, threads=torch.get_num_threads(),
                    **cpu_settings())
    return dict(benchmark='backbone forward', settings=settings, ratios=ratios, times=times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--archs', nargs='+', default=['small', 'base'], choices=sorted(ARCHS))
    parser.add_argument('--dtypes', nargs='+', default=['fp32', 'bf16'], choices=['fp32', 'bf16'])
    parser.add_argument('--frames', type=int, default=16)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--peak-size', type=int, default=2048,
                        help='n of the n x n x n products that measure the matmul peak')
    parser.add_argument('--worker', nargs=4, metavar=('IMPL', 'ARCH', 'DTYPE', 'WEIGHTS'))
    parser.add_argument('--json', metavar='PATH', help='also write the figures as JSON '
                        '(read by benchmarks/run_all.py)')
    args = parser.parse_args(argv)
    if args.worker:
        impl, arch, dtype, weights = args.worker
        print(json.dumps(worker(impl, arch, dtype, args.frames, args.size, args.repeats,
                                weights)))
        return None

    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, input 1x3x'
          f'{args.frames}x{args.size}x{args.size}, median of {args.repeats} forwards')
    print('CPU: ' + ', '.join(f'{k} {v}' for k, v in cpu_settings().items()))
    peak32 = matmul_peak(torch.float32, args.peak_size)
    peak16 = matmul_peak(torch.bfloat16, args.peak_size)
    print(f'matmul peak: fp32 {peak32:.1f} GFLOP/s, bf16 {peak16:.1f} GFLOP/s '
          f'(bf16/fp32 {peak16 / peak32:.2f}x)')
    results = {}
    tmp = tempfile.mkdtemp(prefix='bench_backbone_')
    for arch in args.archs:
        flops = forward_flops(ARCHS[arch], args.frames, args.size)
        weights = os.path.join(tmp, f'{arch}.pth')
        write_weights(arch, args.frames, args.size, weights)
        for dtype in args.dtypes:
            impls = ('ours', 'hf_eager', 'hf_sdpa') + (('ours_sdpa', ) if dtype == 'fp32' else ())
            row = {impl: run_case(impl, arch, dtype, args, weights) for impl in impls}
            if dtype == 'fp32':  # same weights, same input: same tokens
                for impl in ('hf_eager', 'ours_sdpa'):
                    assert abs(row['ours']['checksum'] - row[impl]['checksum']) < 1e-4, impl
            results[(arch, dtype)] = row
            o, e, s = row['ours'], row['hf_eager'], row['hf_sdpa']
            print(f'\nViT-{arch[0].upper()} {dtype}: {flops / 1e9:.1f} GFLOP per forward')
            for impl, r in row.items():
                print(f'  {impl:9s} {r["time"] * 1e3:8.1f} ms  {flops / r["time"] / 1e9:7.1f} '
                      f'GFLOP/s  peak RSS {r["peak_rss_mib"]:7.0f} MiB')
            print(f'  speed-up vs HF eager {e["time"] / o["time"]:.2f}x (target >= 1.8x), '
                  f'vs HF sdpa {s["time"] / o["time"]:.2f}x (target >= 1.0x); peak RSS ours/eager '
                  f'{o["peak_rss_mib"] / e["peak_rss_mib"]:.2f}, ours/sdpa '
                  f'{o["peak_rss_mib"] / s["peak_rss_mib"]:.2f}')
            if dtype == 'fp32':
                p32 = o['fp32_peak'] or peak32
                print(f'  ours: {flops / o["time"] / 1e9 / p32 * 100:.0f}% of the fp32 matmul '
                      f'peak measured beside it ({p32:.0f} GFLOP/s; target >= 80%); our CPU '
                      f'attention vs SDPA in our backbone '
                      f'{row["ours_sdpa"]["time"] / o["time"]:.2f}x')
                split, parts = split_flops(ARCHS[arch], args.frames, args.size), o['parts']
                total = sum(parts.values())
                print('  where the time goes (one profiled forward): ' + ', '.join(
                    f'{part} {sec / total:.0%}' + (
                        f' at {split[part] / sec / 1e9 / p32:.0%} of peak'
                        if part in split else '') for part, sec in parts.items()))
                ceiling = (flops / o['time'] / 1e9 / p32 * total
                           / attention_ceiling_time(parts, split))
                print(f'  with attention at the linear layers\' rate: {ceiling:.0%} of peak '
                      '(ceiling)')
                layer = o['attention_layer']
                fused = (f'our fused kernel {layer["fused"] * 1e3:.1f} ms, '
                         if 'fused' in layer else '')
                print(f'  one layer\'s attention: torch SDPA {layer["sdpa"] * 1e3:.1f} ms, {fused}'
                      f'oneDNN blocked {layer["onednn"] * 1e3:.1f} ms (its products alone '
                      f'{layer["onednn_products"] * 1e3:.1f} ms)')
                fused16 = (f', our fused kernel {layer["fused_bf16"] * 1e3:.1f} ms'
                           if 'fused_bf16' in layer else '')
                print(f'  one layer\'s attention in bf16: torch SDPA '
                      f'{layer["sdpa_bf16"] * 1e3:.1f} ms{fused16}')
        if ('fp32' in args.dtypes) and ('bf16' in args.dtypes):
            r32, r16 = results[(arch, 'fp32')]['ours'], results[(arch, 'bf16')]['ours']
            print(f'  ours bf16 autocast vs ours fp32: {r32["time"] / r16["time"]:.2f}x')
    shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(json_report(results, args, peak32, peak16), f, indent=1)
    return results


if __name__ == '__main__':
    main()
