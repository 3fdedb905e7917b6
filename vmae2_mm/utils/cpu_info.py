"""Which x86 vendor made this CPU: it decides which BLAS path is fast (see ``cpu_linear``)."""
import functools
import platform


@functools.lru_cache(maxsize=None)
def cpu_vendor() -> str:
    """``'GenuineIntel'``, ``'AuthenticAMD'``, ... from ``/proc/cpuinfo``; ``''`` if unknown
    (not Linux, or not x86)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('vendor_id'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return ''


def mkl_has_fast_sgemm() -> bool:
    """Whether MKL's sgemm (torch's CPU fp32 BLAS) runs its AVX-512 kernels here: on Intel CPUs
    only; on AMD ones it takes a path about half as fast as oneDNN's (measured, AMD EPYC)."""
    return cpu_vendor() == 'GenuineIntel' or platform.machine() not in ('x86_64', 'AMD64')


__all__ = ['cpu_vendor', 'mkl_has_fast_sgemm']
