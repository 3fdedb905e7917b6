"""benchmarks/run_all.py keeps one report per kind of machine: the name comes from the CPU's
vendor and its best vector/tile ISA, as the machine section records them."""
import pytest

from tests.conftest import load_script


@pytest.fixture(scope='module')
def run_all():
    return load_script('benchmarks/run_all.py')


@pytest.mark.parametrize('cpu,isa,kind', [
    ('Intel(R) Xeon(R) Processor', ['amx_bf16', 'amx_tile', 'avx2', 'avx512_bf16', 'avx512f'],
     'intel-amx'),
    ('AMD EPYC', ['avx2', 'avx512_bf16', 'avx512f'], 'amd-avx512'),
    ('Intel(R) Core(TM) i7-8700', ['avx2'], 'intel-avx2'),
    ('aarch64', [], 'cpu-base'),
])
def test_machine_kind(run_all, cpu, isa, kind):
    assert run_all.machine_kind(dict(cpu=cpu, isa=isa)) == kind
