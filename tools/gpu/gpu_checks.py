"""Driver of the GPU checks: environment, the GPU test subset, the GPU benchmarks, one report.

    python tools/gpu/gpu_checks.py [--device cuda|cpu] [--tiny] [--out DIR]
        [--skip-tests] [--skip-bench] [--tests-timeout S] [--bench-timeout S]

Normally started by ``tools/gpu/run_gpu_checks.sh`` (which first installs the wheel bundle on a
machine that lacks the OpenMMLab stack). Steps:

1. environment: Python, torch (+ CUDA build), the device's name, the stack's versions, whether
   mmcv's compiled ops and decord are importable;
2. ``pytest -m gpu tests/gpu`` (JUnit XML parsed into per-test outcomes; skip reasons kept);
3. ``benchmarks/gpu/bench_gpu.py`` (``--tiny`` for the dry run) in a subprocess;
4. ``gpu_report.md`` + ``gpu_report.json`` in ``--out`` (default ``$OUT``, else
   ``work_dirs/gpu_report``), rewritten after every step so a run cut short still leaves one.

``--device cpu`` hides CUDA from the test run (``CUDA_VISIBLE_DEVICES=''``: every GPU test
skips) and runs the benchmarks on the CPU: with ``--tiny`` that is the dry run that the unit test
``tests/unit/tools/test_gpu_checks_dry_run.py`` runs in CI. Exit status: 0 when no test failed
and no benchmark section errored (a ratio missing its target does not fail the run: it is a
finding in the report), else 1.
"""
import argparse
import importlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REPORT_SECTIONS = ('environment', 'tests', 'benchmarks', 'summary')


def _version(module: str):
    try:
        return getattr(importlib.import_module(module), '__version__', 'unknown')
    except Exception as e:  # noqa: BLE001
        return f'missing ({type(e).__name__})'


def environment(device: str) -> dict:
    import torch
    env = dict(python=platform.python_version(), platform=platform.platform(),
               torch=torch.__version__, torch_cuda=torch.version.cuda,
               cuda_available=torch.cuda.is_available(), requested_device=device)
    if torch.cuda.is_available():
        env.update(gpu=torch.cuda.get_device_name(0),
                   gpu_memory_gib=round(torch.cuda.get_device_properties(0).total_memory
                                        / 2**30, 1),
                   capability='.'.join(map(str, torch.cuda.get_device_capability(0))),
                   nccl='.'.join(map(str, torch.cuda.nccl.version()))
                   if hasattr(torch.cuda, 'nccl') else None)
    for m in ('mmengine', 'mmcv', 'mmdet', 'mmaction', 'decord', 'transformers', 'numpy'):
        env[m] = _version(m)
    try:
        import mmcv.ops  # noqa: F401
        env['mmcv_ops'] = 'compiled ops importable'
    except Exception as e:  # noqa: BLE001
        env['mmcv_ops'] = f'absent ({type(e).__name__}: {e})'
    try:
        import vmae2_mm  # noqa: F401
        env['vmae2_mm_import'] = 'ok'
    except Exception as e:  # noqa: BLE001
        env['vmae2_mm_import'] = f'FAILED ({type(e).__name__}: {e})'
    return env


def parse_junit(path: Path) -> list:
    """``[{name, outcome, seconds, message}]`` from a pytest JUnit XML file."""
    out = []
    for case in ET.parse(path).getroot().iter('testcase'):
        outcome, message = 'passed', ''
        for tag in ('failure', 'error', 'skipped'):
            node = case.find(tag)
            if node is not None:
                outcome = {'failure': 'failed', 'error': 'error', 'skipped': 'skipped'}[tag]
                message = (node.get('message') or node.text or '').strip()[:1500]
                break
        name = f'{case.get("classname", "")}::{case.get("name")}'
        out.append(dict(name=name, outcome=outcome, seconds=float(case.get('time', 0)),
                        message=message))
    return out


def _run(cmd, env, timeout: float):
    """(returncode or 'timeout', output tail). At the timeout the child gets SIGINT first, so
    that pytest still writes its JUnit file (and the benchmark keeps its per-section JSON),
    then SIGKILL 20 s later."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
        return proc.returncode, output[-4000:]
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        return 'timeout', f'stopped after {timeout:.0f} s\n' + (output or '')[-3500:]


def run_tests(out: Path, device: str, timeout: float) -> dict:
    xml = out / 'gpu_tests.xml'
    env = dict(os.environ, PYTHONPATH=f'{ROOT}{os.pathsep}{os.environ.get("PYTHONPATH", "")}',
               PYTHONUNBUFFERED='1')
    if device == 'cpu':
        env['CUDA_VISIBLE_DEVICES'] = ''
    cmd = [sys.executable, '-m', 'pytest', 'tests/gpu', '-m', 'gpu', '-q', '-p',
           'no:cacheprovider', f'--junitxml={xml}', '-o', 'addopts=--import-mode=importlib -ra']
    t = time.perf_counter()
    rc, tail = _run(cmd, env, timeout)
    cases = parse_junit(xml) if xml.is_file() else []
    counts = {k: sum(c['outcome'] == k for c in cases)
              for k in ('passed', 'failed', 'error', 'skipped')}
    return dict(command=' '.join(cmd[1:]), returncode=rc, seconds=time.perf_counter() - t,
                counts=counts, cases=cases, output_tail=tail)


def run_benchmarks(out: Path, device: str, tiny: bool, timeout: float) -> dict:
    path = out / 'gpu_bench.json'
    cmd = [sys.executable, str(ROOT / 'benchmarks/gpu/bench_gpu.py'), '--device', device,
           '--json', str(path), '--budget', str(max(timeout - 50., 0.))] + (
               ['--tiny'] if tiny else [])
    env = dict(os.environ, PYTHONPATH=f'{ROOT}{os.pathsep}{os.environ.get("PYTHONPATH", "")}',
               PYTHONUNBUFFERED='1')
    t = time.perf_counter()
    rc, tail = _run(cmd, env, timeout)
    report = json.loads(path.read_text()) if path.is_file() else None
    return dict(command=' '.join(cmd[1:]), returncode=rc, seconds=time.perf_counter() - t,
                report=report, output_tail=tail)


def summarize(report: dict) -> dict:
    tests, bench = report.get('tests'), report.get('benchmarks')
    s = dict(tests=tests['counts'] if tests else None, ratios_pass=0, ratios_fail=0,
             ratios_na=0, bench_errors=[])
    if bench and bench.get('report'):
        for name, sec in bench['report']['sections'].items():
            if sec.get('error'):
                s['bench_errors'].append(name)
            for r in sec['ratios']:
                key = {'pass': 'ratios_pass', 'FAIL': 'ratios_fail', 'n/a': 'ratios_na'}.get(
                    r['verdict'])
                if key:
                    s[key] += 1
    elif bench:
        s['bench_errors'].append(f'benchmark run: returncode {bench["returncode"]}')
    failed = bool(tests and (tests['counts']['failed'] or tests['counts']['error']
                             or tests['returncode'] not in (0, 5)))
    s['ok'] = not failed and not s['bench_errors']
    return s


def _fmt(v):
    if v is None:
        return 'n/a'
    if isinstance(v, float):
        return f'{v:.3g}' if abs(v) < 1e4 else f'{v:.4g}'
    if isinstance(v, dict):
        return ', '.join(f'{k} {_fmt(x)}' for k, x in v.items())
    return str(v)


def _cell(text) -> str:
    return str(text).replace('|', '\\|').replace('\n', ' ')


def to_markdown(report: dict) -> str:
    env = report['environment']
    lines = [f'# GPU checks: {env.get("gpu") or "no GPU"} ({report["mode"]})', '',
             '## Environment', '', '| item | value |', '| --- | --- |']
    lines += [f'| {k} | {_cell(v)} |' for k, v in env.items()]
    lines += ['', '## Tests', '']
    tests = report.get('tests')
    if tests is None:
        lines.append('not run (--skip-tests)')
    else:
        c = tests['counts']
        lines += [f'`{tests["command"]}`: {c["passed"]} passed, {c["failed"]} failed, '
                  f'{c["error"]} errors, {c["skipped"]} skipped in {tests["seconds"]:.0f} s '
                  f'(pytest exit {tests["returncode"]})', '',
                  '| test | outcome | s | note |', '| --- | --- | --- | --- |']
        lines += [f'| {_cell(t["name"])} | {t["outcome"]} | {t["seconds"]:.1f} | '
                  f'{_cell(t["message"][:300])} |' for t in tests['cases']]
        if not tests['cases']:
            lines += ['', '```', tests['output_tail'][-2000:], '```']
    lines += ['', '## Benchmarks', '']
    bench = report.get('benchmarks')
    if bench is None:
        lines.append('not run (--skip-bench)')
    elif not bench.get('report'):
        lines += [f'no report (exit {bench["returncode"]})', '', '```',
                  bench['output_tail'][-2000:], '```']
    else:
        b = bench['report']
        lines += [f'device: {b["device"]}, torch {b["torch"]}'
                  + (' — **tiny sizes (dry run): the figures mean nothing**' if b['tiny']
                     else ''), '']
        for name, sec in b['sections'].items():
            lines += [f'### {name} ({sec["seconds"]:.0f} s)', '']
            if sec['settings']:
                lines += ['settings: ' + ', '.join(f'{k} {v}' for k, v in
                                                   sec['settings'].items()), '']
            if sec.get('error'):
                lines += ['**error**:', '', '```', sec['error'][-1500:], '```', '']
            if sec['ratios']:
                lines += ['| ratio | value | target | verdict |', '| --- | --- | --- | --- |']
                lines += [f'| {_cell(r["name"])} | {_fmt(r["value"])} | '
                          + (f'{r["op"]} {_fmt(r["target"])}' if r['target'] is not None
                             else '-')
                          + f' | {r["verdict"]} |' for r in sec['ratios']]
                lines.append('')
            for f in sec['figures']:
                lines.append('- ' + ', '.join(f'{k}: {_fmt(v)}' for k, v in f.items()))
            lines.append('')
    s = report['summary']
    lines += ['## Summary', '', f'- tests: {_fmt(s["tests"])}',
              f'- benchmark ratios: {s["ratios_pass"]} pass, {s["ratios_fail"]} FAIL, '
              f'{s["ratios_na"]} n/a',
              f'- benchmark sections with errors: {", ".join(s["bench_errors"]) or "none"}',
              f'- overall: {"ok" if s["ok"] else "FAILURES (see above)"}',
              f'- wall time: {report["seconds"]:.0f} s', '']
    return '\n'.join(lines)


def write(report: dict, out: Path) -> None:
    report['summary'] = summarize(report)
    (out / 'gpu_report.json').write_text(json.dumps(report, indent=1, default=str))
    (out / 'gpu_report.md').write_text(to_markdown(report))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', choices=('cuda', 'cpu'), default='cuda')
    parser.add_argument('--tiny', action='store_true', help='tiny benchmark sizes (dry run)')
    parser.add_argument('--out', default=os.environ.get('OUT') or str(ROOT / 'work_dirs' /
                                                                       'gpu_report'))
    parser.add_argument('--skip-tests', action='store_true')
    parser.add_argument('--skip-bench', action='store_true')
    parser.add_argument('--tests-timeout', type=float, default=170.)
    parser.add_argument('--bench-timeout', type=float, default=140.)
    args = parser.parse_args(argv)
    if args.device == 'cuda':
        import torch
        if not torch.cuda.is_available():
            parser.error('--device cuda: torch.cuda.is_available() is False here '
                         '(use --device cpu --tiny for the dry run)')
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    report = dict(mode=f'--device {args.device}' + (' --tiny' if args.tiny else ''),
                  environment=environment(args.device), tests=None, benchmarks=None,
                  seconds=0.)
    write(report, out)
    if not args.skip_tests:
        report['tests'] = run_tests(out, args.device, args.tests_timeout)
        report['seconds'] = time.perf_counter() - t0
        write(report, out)
        print(f'[gpu_checks] tests: {report["tests"]["counts"]} '
              f'({report["tests"]["seconds"]:.0f} s)', flush=True)
    if not args.skip_bench:
        report['benchmarks'] = run_benchmarks(out, args.device, args.tiny, args.bench_timeout)
        report['seconds'] = time.perf_counter() - t0
        write(report, out)
        print(f'[gpu_checks] benchmarks: {report["benchmarks"]["seconds"]:.0f} s', flush=True)
    report['seconds'] = time.perf_counter() - t0
    write(report, out)
    print(f'[gpu_checks] report: {out / "gpu_report.md"} ({report["seconds"]:.0f} s)')
    print((out / 'gpu_report.md').read_text()[-3000:])
    return 0 if report['summary']['ok'] else 1


if __name__ == '__main__':
    sys.exit(main())
