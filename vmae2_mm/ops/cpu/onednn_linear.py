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
to ``F.linear``. Nothing switches it on behind a model's back: a model's ``nn.Linear`` modules
become :class:`OneDNNLinear` only through :func:`vmae2_mm.ops.cpu.optimize_for_cpu_inference`.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vmae2_mm.ops.cpu.cpu_info import mkl_has_fast_sgemm

_AVAILABLE = bool(torch.backends.mkldnn.is_available()
                  and hasattr(torch.ops.mkldnn, '_linear_pointwise'))


def onednn_available() -> bool:
    """Whether this torch build has oneDNN's linear (``torch.ops.mkldnn._linear_pointwise``)."""
    return _AVAILABLE


def fp32_cpu_inference(x: Tensor) -> bool:
    """Whether ``x`` is fp32 on CPU with no gradient recorded and no CPU autocast: where the
    backbone may use kernels without a backward or a bf16 path."""
    return (x.device.type == 'cpu' and x.dtype == torch.float32 and not torch.is_grad_enabled()
            and not torch.is_autocast_enabled('cpu'))


def onednn_preferred() -> bool:
    """Whether the oneDNN paths (this linear, :mod:`.onednn_attention`) are faster than BLAS
    on this CPU: available, and MKL's sgemm is slow here."""
    return _AVAILABLE and not mkl_has_fast_sgemm()


def onednn_linear_active(x: Tensor) -> bool:
    """Whether :func:`linear` would run ``x`` through oneDNN."""
    return _AVAILABLE and fp32_cpu_inference(x)


def linear(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """``F.linear(x, weight, bias)``: x [..., C_in], weight [C_out, C_in], bias [C_out] ->
    [..., C_out]; oneDNN when :func:`onednn_linear_active`."""
    if onednn_linear_active(x) and weight.dtype == torch.float32 and (
            bias is None or bias.dtype == torch.float32):
        return torch.ops.mkldnn._linear_pointwise(x, weight.contiguous(), bias, 'none', [], '')
    return F.linear(x, weight, bias)


class OneDNNLinear(nn.Linear):
    """``nn.Linear`` (same parameters, state dict and hooks) whose forward is :func:`linear`:
    oneDNN for fp32 CPU inference, ``F.linear`` otherwise. Made from a model's linears by
    :func:`vmae2_mm.ops.cpu.optimize_for_cpu_inference`, not built directly by the models."""

    def forward(self, x: Tensor) -> Tensor:
        """x: [..., in_features] -> [..., out_features]."""
        return linear(x, self.weight, self.bias)


__all__ = ['linear', 'OneDNNLinear', 'onednn_available', 'onednn_linear_active',
           'onednn_preferred', 'fp32_cpu_inference']
