"""benchmarks/run_all.py --quick: every benchmark runs and the report has all its sections."""
import json

import pytest

from tests.conftest import run_python

BENCHMARKS = ('backbone', 'dual_masking', 'tad_extraction', 'soft_nms', 'tad_map')


@pytest.mark.e2e
def test_run_all_quick_writes_markdown_and_json(tmp_path):
    out = tmp_path / 'results'
    proc = run_python(['benchmarks/run_all.py', '--quick', '--out-dir', str(out)],
                      env=dict(OMP_NUM_THREADS='1'), timeout=900)
    assert 'wrote' in proc.stdout
    # a quick run says nothing about the machine: no per-machine copy next to latest
    assert sorted(p.name for p in out.iterdir()) == ['latest.json', 'latest.md']
    report = json.loads((out / 'latest.json').read_text())
    assert report['quick'] is True
    machine = report['machine']
    assert machine['cpu'] and machine['logical_cores'] >= 1 and machine['torch']
    assert set(report['benchmarks']) == set(BENCHMARKS)
    for name, bench in report['benchmarks'].items():
        assert bench['status'] == 'ok', (name, bench.get('stderr_tail'))
        assert bench['ratios'] and bench['times'], name
        for r in bench['ratios']:
            assert isinstance(r['value'], float) and r['value'] == r['value'], (name, r)
            assert r['op'] in (None, '>=', '<=')
        for t in bench['times']:
            assert t.get('seconds', 1.0) > 0, (name, t)
    # quick settings reached the scripts
    assert report['benchmarks']['backbone']['settings']['size'] == 32
    assert report['benchmarks']['dual_masking']['settings']['arch'] == 'small'
    # exactness checks the benchmarks make are reported, and hold
    soft = {r['name']: r for r in report['benchmarks']['soft_nms']['ratios']}
    assert soft['all workloads bit-identical to mmcv']['value'] == 1.0
    diffs = [r for r in report['benchmarks']['tad_extraction']['ratios']
             if 'max |feature difference| ours vs official (fp32)' in r['name']]
    assert diffs and all(r['value'] <= 1e-5 for r in diffs), diffs

    md = (out / 'latest.md').read_text()
    sections = [md.index(h) for h in ('## Ratios', '## Absolute times', '## Runs', '## Machine')]
    assert sections == sorted(sections)  # ratios first, absolute times second
    assert 'Quick smoke run' in md
    ratios_md = md[sections[0]:sections[1]]
    for name in BENCHMARKS:
        assert f'| {name} |' in ratios_md
    assert 'pass' in ratios_md or 'FAIL' in ratios_md  # verdicts against targets
    assert '| >= 1.8 |' in ratios_md and '| <= 0.7 |' in ratios_md
    assert machine['torch'] in md and machine['cpu'] in md


def test_run_all_rejects_unknown_benchmark():
    proc = run_python(['benchmarks/run_all.py', '--only', 'nope'], check=False, timeout=120)
    assert proc.returncode == 2 and 'invalid choice' in proc.stderr
