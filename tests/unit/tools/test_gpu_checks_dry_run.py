"""The GPU check's entry point runs end to end on a CPU (``--device cpu --tiny``): the GPU tests
are collected and skipped, every benchmark section runs at tiny sizes, and the markdown + JSON
report holds every section. This keeps ``tools/gpu/run_gpu_checks.sh`` working between GPU
runs; the GPU figures themselves come only from a GPU machine."""
import json
import os
import subprocess

from tests.conftest import REPO_ROOT

BENCH_SECTIONS = ('dual_masking', 'vit_g_memory', 'backbone', 'extraction')


def test_run_gpu_checks_cpu_tiny_dry_run_writes_full_report(tmp_path):
    out = tmp_path / 'report'
    env = dict(os.environ, OUT=str(out), OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    proc = subprocess.run(['bash', str(REPO_ROOT / 'tools/gpu/run_gpu_checks.sh'), '--device',
                           'cpu', '--tiny'], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    report = json.loads((out / 'gpu_report.json').read_text())
    md = (out / 'gpu_report.md').read_text()
    for key in ('environment', 'tests', 'benchmarks', 'summary'):
        assert report[key], key
    env_info = report['environment']
    assert env_info['cuda_available'] is False and env_info['vmae2_mm_import'] == 'ok'
    tests = report['tests']
    # every GPU test collected (14 today; a test that fails to import would be an error here)
    assert tests['counts']['skipped'] >= 14 and not tests['counts']['failed'], tests['counts']
    assert not tests['counts']['error'], tests['output_tail']
    assert all(c['outcome'] == 'skipped' and 'CUDA' in c['message'] for c in tests['cases'])
    sections = report['benchmarks']['report']['sections']
    assert tuple(sections) == BENCH_SECTIONS
    for name, sec in sections.items():
        assert sec['error'] is None, (name, sec['error'])
        assert sec['ratios'] and sec['figures'], name
        for r in sec['ratios']:
            assert r['verdict'] in ('pass', 'FAIL', 'n/a', '-'), r
        assert f'### {name}' in md
    # the CPU has no allocator peak: memory ratios are n/a, never a made-up number
    mem = [r for r in sections['dual_masking']['ratios'] if 'memory' in r['name']]
    assert mem and all(r['value'] is None for r in mem)
    # the extraction run compares numerics too: same features as the official loop
    ours = sections['extraction']['figures'][1]
    assert ours['max_abs_diff_vs_official'] <= 1e-4
    for heading in ('## Environment', '## Tests', '## Benchmarks', '## Summary'):
        assert heading in md
    assert 'tiny sizes (dry run)' in md
