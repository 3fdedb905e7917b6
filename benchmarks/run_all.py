"""Run every benchmark of the project and write one report (markdown + JSON).

    python benchmarks/run_all.py [--quick] [--only backbone dual_masking ...] [--out-dir DIR]

Each benchmark script runs in its own subprocess of this one, one after another (never two at
once, so they do not compete for the cores), with ``--json`` so its figures are collected
exactly as it printed them. The report goes to ``DIR/latest.md`` (ratios against their targets
first, then absolute times, then the machine) and ``DIR/latest.json`` (the same figures plus
each benchmark's settings and printed output); ``DIR`` defaults to ``benchmarks/results``. A full
run also keeps a copy per kind of machine, ``DIR/<vendor>-<isa>.{md,json}`` (e.g.
``intel-amx``, ``amd-avx512``): the targets depend on the CPU (bf16 on AMX, the BLAS per vendor),
so the last full run of each kind stays next to the latest one.

The default settings are the issues' (ViT-S and ViT-B 16x224^2 backbone forward, ViT-B
16x224^2 pre-training step, ...); a full run takes tens of minutes on a 2-core CPU and should run
on a quiet machine. ``--quick`` runs tiny shapes with one repeat: a smoke test of the whole
pipeline whose figures mean nothing.
"""
import argparse
import datetime
import json
import os
import os.path as osp
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata

HERE = osp.dirname(osp.abspath(__file__))

#: name -> (script, issue, full-run arguments, quick arguments). The full runs use each script's
#: defaults, which are the issues' settings.
BENCHMARKS = {
    'backbone': ('bench_backbone.py', 'issue 3', [],
                 ['--archs', 'small', '--dtypes', 'fp32', '--frames', '2', '--size', '32',
                  '--repeats', '1', '--peak-size', '256']),
    'dual_masking': ('bench_dual_masking.py', 'issue 4', [],
                     ['--arch', 'small', '--frames', '4', '--size', '64', '--batch', '1',
                      '--steps', '1', '--attn-impl', 'sdpa']),
    'tad_extraction': ('bench_tad_extraction.py', 'issue 6', [],
                       ['--models', 'micro', '--seconds', '8', '--rounds', '1']),
    'soft_nms': ('bench_soft_nms.py', 'issue 6', [], ['--repeats', '1']),
    'tad_map': ('bench_tad_map.py', 'issue 6', [],
                ['--videos', '8', '--preds', '40', '--repeats', '1']),
    'data_pipeline': ('bench_data_pipeline.py', 'issue 23', ['--full'],
                      ['--videos', '1', '--items', '1', '--size', '64', '48', '--seconds', '3']),
}


def machine_info() -> dict:
    """CPU model, cores, load, versions and the UTC date of this run."""
    cpu = platform.processor() or platform.machine()
    flags = set()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                key, _, value = line.partition(':')
                if key.strip() == 'model name':
                    cpu = value.strip()
                elif key.strip() == 'flags':
                    flags = set(value.split())
    except OSError:  # not Linux: keep platform's answer
        pass

    def version(pkg):
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    return dict(cpu=cpu, logical_cores=os.cpu_count(),
                cores_available=len(os.sched_getaffinity(0)) if hasattr(
                    os, 'sched_getaffinity') else os.cpu_count(),
                isa=sorted(flags & {'avx2', 'avx512f', 'avx512_bf16', 'amx_bf16', 'amx_tile'}),
                load_avg_at_start=list(os.getloadavg()) if hasattr(os, 'getloadavg') else None,
                python=platform.python_version(), torch=version('torch'),
                mmengine=version('mmengine'), mmcv=version('mmcv'),
                mmaction2=version('mmaction2'), transformers=version('transformers'),
                omp_num_threads=os.environ.get('OMP_NUM_THREADS'),
                date=datetime.datetime.now(datetime.timezone.utc).strftime(
                    '%Y-%m-%d %H:%M:%S UTC'))


def run_benchmark(name: str, quick: bool, timeout: float) -> dict:
    """Run one benchmark script with ``--json``; returns its figures plus status and output."""
    script, issue, full_args, quick_args = BENCHMARKS[name]
    args = quick_args if quick else full_args
    fd, path = tempfile.mkstemp(prefix=f'bench_{name}_', suffix='.json')
    os.close(fd)
    cmd = [sys.executable, osp.join(HERE, script), *args, '--json', path]
    t0 = time.perf_counter()
    entry = dict(script=f'benchmarks/{script}', issue=issue, args=args)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        entry.update(returncode=proc.returncode, stdout=proc.stdout,
                     stderr_tail=proc.stderr[-3000:])
        if proc.returncode == 0:
            with open(path) as f:
                entry.update(json.load(f))
            for r in entry.get('ratios', []):  # a ratio without op/target has no target
                r['value'] = float(r['value'])
                r.setdefault('op', None)
                r.setdefault('target', None)
            entry['status'] = 'ok'
        else:
            entry['status'] = 'failed'
    except subprocess.TimeoutExpired as e:
        entry.update(status='timeout', returncode=None,
                     stdout=(e.stdout or b'').decode(errors='replace')
                     if isinstance(e.stdout, bytes) else (e.stdout or ''))
    except (OSError, ValueError, TypeError, KeyError) as e:  # unreadable or malformed JSON
        entry.update(status='failed', error=f'{type(e).__name__}: {e}')
    finally:
        if osp.exists(path):
            os.remove(path)
    entry['wall_s'] = time.perf_counter() - t0
    return entry


def verdict(ratio: dict) -> str:
    """'pass' / 'FAIL' against the ratio's target, '' when it has none."""
    op, target, value = ratio.get('op'), ratio.get('target'), ratio['value']
    if op is None or target is None:
        return ''
    ok = value >= target if op == '>=' else value <= target
    return 'pass' if ok else 'FAIL'


def _cell(text) -> str:
    """Text safe inside a markdown table cell."""
    return str(text).replace('|', '\\|')


def machine_kind(machine: dict) -> str:
    """``<vendor>-<isa>`` for :func:`machine_info`'s result, e.g. ``'intel-amx'``,
    ``'amd-avx512'``: the name of the per-machine copy of the report."""
    cpu = machine['cpu'].lower()
    vendor = next((v for v in ('intel', 'amd', 'arm') if v in cpu), 'cpu')
    isa = machine['isa']
    tier = ('amx' if 'amx_bf16' in isa else 'avx512' if 'avx512f' in isa
            else 'avx2' if 'avx2' in isa else 'base')
    return f'{vendor}-{tier}'


def _fmt(value) -> str:
    if isinstance(value, float):
        return f'{value:.3g}' if abs(value) < 1e4 else f'{value:.4g}'
    return str(value)


def to_markdown(report: dict) -> str:
    """The report as markdown: ratios (with target and verdict), absolute times, machine."""
    m = report['machine']
    lines = ['# Benchmark results', '',
             f"Written by `python benchmarks/run_all.py{' --quick' if report['quick'] else ''}`"
             f" on {m['date']}. Every benchmark ran in its own subprocess, one after another.",
             '']
    if report['quick']:
        lines += ['**Quick smoke run (tiny shapes, one repeat): the figures below say nothing '
                  'about performance.**', '']
    lines += ['## Ratios', '', '| benchmark | ratio | value | target | result |',
              '|---|---|---:|---|---|']
    for name, b in report['benchmarks'].items():
        for r in b.get('ratios', []):
            target = f"{r['op']} {_fmt(r['target'])}" if r.get('op') else '—'
            lines.append(f"| {name} | {_cell(r['name'])} | {_fmt(r['value'])} | {target} | "
                         f'{verdict(r) or "—"} |')
    lines += ['', '## Absolute times', '', '| benchmark | case | seconds | other figures |',
              '|---|---|---:|---|']
    for name, b in report['benchmarks'].items():
        for t in b.get('times', []):
            other = ', '.join(f'{k} {_fmt(v)}' for k, v in t.items()
                              if k not in ('name', 'seconds'))
            sec = _fmt(t['seconds']) if 'seconds' in t else '—'
            lines.append(f"| {name} | {_cell(t['name'])} | {sec} | {_cell(other)} |")
    lines += ['', '## Runs', '', '| benchmark | issue | status | wall (s) | settings |',
              '|---|---|---|---:|---|']
    for name, b in report['benchmarks'].items():
        settings = ', '.join(f'{k}={v}' for k, v in b.get('settings', {}).items())
        lines.append(f"| {name} | {b['issue']} | {b['status']} | {b['wall_s']:.1f} | "
                     f'{_cell(settings)} |')
    lines += ['', '## Machine', '', '| | |', '|---|---|',
              f"| CPU | {m['cpu']} |",
              f"| cores (logical / available) | {m['logical_cores']} / {m['cores_available']} |",
              f"| ISA extensions | {', '.join(m['isa']) or '—'} |",
              f"| load average at start (1/5/15 min) | "
              f"{' / '.join(f'{x:.2f}' for x in m['load_avg_at_start'] or [])} |",
              f"| python / torch | {m['python']} / {m['torch']} |",
              f"| mmengine / mmcv / mmaction2 / transformers | {m['mmengine']} / {m['mmcv']} / "
              f"{m['mmaction2']} / {m['transformers']} |",
              f"| OMP_NUM_THREADS | {m['omp_num_threads'] or 'unset'} |",
              f"| date | {m['date']} |", '']
    return '\n'.join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true',
                        help='tiny shapes, one repeat (smoke test; figures are meaningless)')
    parser.add_argument('--only', nargs='+', choices=list(BENCHMARKS), metavar='NAME',
                        help=f'run only these ({", ".join(BENCHMARKS)})')
    parser.add_argument('--out-dir', default=osp.join(HERE, 'results'))
    parser.add_argument('--timeout', type=float, default=4 * 3600.,
                        help='seconds per benchmark before it is stopped')
    args = parser.parse_args(argv)
    names = args.only or list(BENCHMARKS)
    report = dict(quick=args.quick, machine=machine_info(), benchmarks={})
    for name in names:
        print(f'=== {name}: benchmarks/{BENCHMARKS[name][0]}', flush=True)
        entry = run_benchmark(name, args.quick, args.timeout)
        print(entry.get('stdout', ''), end='', flush=True)
        if entry['status'] != 'ok':
            print(f"!!! {name} {entry['status']}: {entry.get('error', '')}\n"
                  f"{entry.get('stderr_tail', '')}", flush=True)
        report['benchmarks'][name] = entry
    os.makedirs(args.out_dir, exist_ok=True)
    stems = ['latest'] + ([] if args.quick else [machine_kind(report['machine'])])
    for stem in stems:
        md_path, json_path = (osp.join(args.out_dir, f'{stem}.{ext}') for ext in ('md', 'json'))
        with open(json_path, 'w') as f:
            json.dump(report, f, indent=1)
        with open(md_path, 'w') as f:
            f.write(to_markdown(report))
        print(f'{chr(10) if stem == "latest" else ""}wrote {md_path} and {json_path}')
    failed = [n for n, b in report['benchmarks'].items() if b['status'] != 'ok']
    if failed:
        print(f'failed: {", ".join(failed)}', file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
