"""What this CPU is (from ``/proc/cpuinfo``): the vendor decides which BLAS path is fast (see
``onednn_linear``); the flags say which kernels can run (tests, benchmarks)."""
import functools
import platform


@functools.lru_cache(maxsize=None)
def cpu_field(name: str) -> str:
    """The first ``name : value`` entry of ``/proc/cpuinfo`` (e.g. ``'vendor_id'``,
    ``'model name'``, ``'flags'``); ``''`` when there is none (not Linux, or no such field)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                key, sep, value = line.partition(':')
                if sep and key.strip() == name:
                    return value.strip()
    except OSError:
        pass
    return ''


def cpu_vendor() -> str:
    """``'GenuineIntel'``, ``'AuthenticAMD'``, ... ; ``''`` if unknown (not Linux, or not x86)."""
    return cpu_field('vendor_id')


def cpu_flags() -> frozenset:
    """The CPU's feature flags (``'avx512f'``, ``'amx_bf16'``, ...); empty if unknown."""
    return frozenset(cpu_field('flags').split())


def mkl_has_fast_sgemm() -> bool:
    """Whether MKL's sgemm (torch's CPU fp32 BLAS) runs its AVX-512 kernels here: on Intel CPUs
    only; on AMD ones it takes a path about half as fast as oneDNN's (measured, AMD EPYC)."""
    return cpu_vendor() == 'GenuineIntel' or platform.machine() not in ('x86_64', 'AMD64')


__all__ = ['cpu_field', 'cpu_vendor', 'cpu_flags', 'mkl_has_fast_sgemm']
