"""``F.linear`` for fp32 CPU inference through oneDNN instead of the BLAS ``addmm``.

PyTorch's CPU ``F.linear`` on float32 calls the BLAS library it was built with (MKL in the PyPI
wheels). On AMD CPUs MKL does not pick its AVX-512 kernels, and its sgemm reaches about half of
what oneDNN's JIT kernels (also shipped in the wheel, used by ``torch.ops.mkldnn``) reach on the
same machine: measured here (AMD EPYC, AVX-512), a [1568, 768] x [768, 3072] linear took 84 ms
with ``F.linear`` and 36 ms with oneDNN. The result is the same product; only the order of the
fp32 accumulation differs (|diff| ~1e-6 relative).

oneDNN's linear has no backward here, so it is used only when no gradient is recorded, on CPU,
for float32 without autocast (autocast must keep casting linears to bf16); everything else goes
to ``F.linear``. :func:`set_onednn_linear` switches it off (e.g. to compare against BLAS).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

_AVAILABLE = bool(torch.backends.mkldnn.is_available()
                  and hasattr(torch.ops.mkldnn, '_linear_pointwise'))
_ENABLED = True


def set_onednn_linear(enabled: bool) -> bool:
    """Enable/disable the oneDNN path of :func:`linear`; returns the previous setting."""
    global _ENABLED
    previous, _ENABLED = _ENABLED, bool(enabled)
    return previous


def onednn_linear_active(x: Tensor) -> bool:
    """Whether :func:`linear` would run ``x`` through oneDNN."""
    return (_ENABLED and _AVAILABLE and x.device.type == 'cpu' and x.dtype == torch.float32
            and not torch.is_grad_enabled() and not torch.is_autocast_enabled('cpu'))


def linear(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """``F.linear(x, weight, bias)``: x [..., C_in], weight [C_out, C_in], bias [C_out] ->
    [..., C_out]; oneDNN when :func:`onednn_linear_active`."""
    if onednn_linear_active(x) and weight.dtype == torch.float32 and (
            bias is None or bias.dtype == torch.float32):
        return torch.ops.mkldnn._linear_pointwise(x, weight.contiguous(), bias, 'none', [], '')
    return F.linear(x, weight, bias)


__all__ = ['linear', 'set_onednn_linear', 'onednn_linear_active']
