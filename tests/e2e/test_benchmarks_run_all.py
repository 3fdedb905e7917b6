"""benchmarks/run_all.py --quick: every benchmark runs and writes its part of the report."""
import json

import pytest

from tests.conftest import load_script, run_python


@pytest.mark.e2e
def test_run_all_quick_writes_a_report(tmp_path):
    names = set(load_script('benchmarks/run_all.py').BENCHMARKS)
    out = tmp_path / 'results'
    proc = run_python(['benchmarks/run_all.py', '--quick', '--out-dir', str(out)],
                      env=dict(OMP_NUM_THREADS='1'), timeout=900)
    assert 'wrote' in proc.stdout
    report = json.loads((out / 'latest.json').read_text())
    assert report['quick'] is True and set(report['benchmarks']) == names
    for name, bench in report['benchmarks'].items():
        assert bench['status'] == 'ok', (name, bench.get('stderr_tail'))
        assert bench['ratios'] and all(r['value'] == r['value'] for r in bench['ratios']), name
    md = (out / 'latest.md').read_text()
    assert all(f'| {name} |' in md for name in names)


def test_run_all_rejects_unknown_benchmark():
    proc = run_python(['benchmarks/run_all.py', '--only', 'nope'], check=False, timeout=120)
    assert proc.returncode == 2 and 'invalid choice' in proc.stderr
