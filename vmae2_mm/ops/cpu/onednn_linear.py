"""``F.linear`` for fp32 CPU inference through oneDNN instead of the BLAS ``addmm`` on AMD CPUs.

PyTorch's CPU ``F.linear`` on float32 calls the BLAS library it was built with (MKL in the PyPI
wheels). On AMD CPUs MKL does not pick its AVX-512 kernels, and its sgemm reaches about half of
what oneDNN's JIT kernels (also shipped in the wheel, used by ``torch.ops.mkldnn``) reach on the
same machine: measured on an AMD EPYC (AVX-512), a [1568, 768] x [768, 3072] linear took 84 ms
with ``F.linear`` and 36 ms with oneDNN. On Intel CPUs it is the other way round: MKL runs at
the peak, and in a ViT-S forward (Xeon with AVX-512, 2 threads) the 48 linears took 215 ms
through MKL and 260 ms through oneDNN. So by default oneDNN is used where MKL is slow
(:func:`~vmae2_mm.ops.cpu.cpu_info.mkl_has_fast_sgemm` is False). The result is the same product;
only the order of the fp32 accumulation differs (|diff| ~1e-6 relative).

oneDNN's linear has no backward here, so it is used only when no gradient is recorded, on CPU,
for float32 without autocast (autocast must keep casting linears to bf16); everything else goes
to ``F.linear``. :func:`set_onednn_linear` forces it on or off (e.g. to compare against BLAS).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from vmae2_mm.ops.cpu.cpu_info import mkl_has_fast_sgemm

_AVAILABLE = bool(torch.backends.mkldnn.is_available()
                  and hasattr(torch.ops.mkldnn, '_linear_pointwise'))
#: None: oneDNN where MKL is slow (the default); True / False: always / never
_MODE: Optional[bool] = None


def set_onednn_linear(enabled: Optional[bool]) -> Optional[bool]:
    """Force the oneDNN path of :func:`linear` on (True) or off (False), or back to the
    per-CPU default (None); returns the previous setting."""
    global _MODE
    previous, _MODE = _MODE, None if enabled is None else bool(enabled)
    return previous


def fp32_cpu_inference(x: Tensor) -> bool:
    """Whether ``x`` is fp32 on CPU with no gradient recorded and no CPU autocast: where the
    backbone may use kernels without a backward or a bf16 path."""
    return (x.device.type == 'cpu' and x.dtype == torch.float32 and not torch.is_grad_enabled()
            and not torch.is_autocast_enabled('cpu'))


def onednn_preferred() -> bool:
    """Whether the oneDNN paths (this linear, :mod:`.onednn_attention`) are on: forced, or by
    default where MKL's sgemm is slow."""
    return _AVAILABLE and (_MODE if _MODE is not None else not mkl_has_fast_sgemm())


def onednn_linear_active(x: Tensor) -> bool:
    """Whether :func:`linear` would run ``x`` through oneDNN."""
    return onednn_preferred() and fp32_cpu_inference(x)


def linear(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """``F.linear(x, weight, bias)``: x [..., C_in], weight [C_out, C_in], bias [C_out] ->
    [..., C_out]; oneDNN when :func:`onednn_linear_active`."""
    if onednn_linear_active(x) and weight.dtype == torch.float32 and (
            bias is None or bias.dtype == torch.float32):
        return torch.ops.mkldnn._linear_pointwise(x, weight.contiguous(), bias, 'none', [], '')
    return F.linear(x, weight, bias)


__all__ = ['linear', 'set_onednn_linear', 'onednn_linear_active', 'onednn_preferred',
           'fp32_cpu_inference']
