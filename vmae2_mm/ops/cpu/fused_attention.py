"""Fused CPU inference attention: ``softmax(q k^T / sqrt(D)) v`` in one compiled kernel.

The kernels (``vmae2_mm/ops/cpu/csrc/cpu_fused_attention.cpp``, built by ``setup.py`` into
``vmae2_mm._cpu_kernels`` and registered as ``torch.ops.vmae2_mm.cpu_fused_attention``):

* **fp32** (AVX-512): scores 48 queries against all keys with register-blocked products,
  applies a vectorised exp over the full score rows in L2 and accumulates the values in
  registers. Why: torch 2.13's CPU SDPA reaches about 65% of the fp32 matmul peak at ViT sizes,
  this kernel about 80% (one ViT-S layer, 1568 tokens, 2 threads, Xeon: 17 -> 14 ms; see
  ``benchmarks/bench_backbone.py``). Scores, exp and sums are fp32; results equal SDPA's to fp32
  rounding.
* **bf16** (e.g. under CPU autocast), fp32 scores, exp and sums, the biased q and v and the
  weights rounded to bf16 for the products, as torch's reduced-precision CPU flash attention
  does, so the error is SDPA's:

  - ``'amx'`` (CPUs with AMX-BF16): AMX tile products; 1.07-1.17x faster than SDPA at 1568
    tokens (Xeon, 2 threads).
  - ``'avx512_bf16'`` (AVX512-BF16 without AMX, e.g. AMD EPYC Zen 4): the fp32 kernel's
    blocking with vdpbf16ps products (two bf16 products per fp32 lane and instruction). Why:
    there torch's bf16 SDPA is no faster than its fp32 one, and the fp32 kernel on upcast
    q/k/v pays three casts and runs its products at the fp32 rate. One ViT-S layer at 1568
    tokens: 10.6 ms against 24.9 ms (bf16 SDPA) and 19.9 ms (upcast) on an AMD EPYC, 2 threads.

  On AVX-512 CPUs with neither, bf16 q/k/v are upcast and run through the fp32 kernel, the
  result rounded back to bf16 (:func:`upcast_bf16_attention`; smaller error than SDPA's).

Used for CPU inference only (no gradient recorded: no backward), fp32 without autocast or bf16
q/k/v, from :data:`MIN_TOKENS` (fp32, bf16 upcast) / :data:`MIN_TOKENS_BF16` (bf16 kernels)
tokens on, for head dims up to 128, when the extension was built and the CPU has AVX-512.
Everything else (training, GPUs, fp16, machines without the build) runs torch's SDPA.
The backbone uses it when built with ``attn_impl='cpu_fused'`` (``'auto'`` picks it where it is
built and runs).
"""
import importlib.util
import logging
from typing import Optional

import torch
from torch import Tensor

from .onednn_linear import fp32_cpu_inference

#: profiler scope around :func:`fused_attention`
PROFILER_SCOPE = 'vmae2_mm::cpu_fused_attention'
#: fewest tokens for which the backbone uses it. Time of SDPA / this kernel, measured for ViT-S/B
#: widths at batch 1 and 8 (Xeon, 2 threads): 0.6-0.7 at N = 49, 0.8-0.9 at 98, 0.9-1.0 at 196,
#: 1.0-1.1 at 392 and 784, 1.1-1.2 at 1568 (below that its per-block set-up is not amortised)
MIN_TOKENS = 392
#: the same for the bf16 kernels, by kernel. 'amx': SDPA / it is 0.8-0.9 at N = 392, 0.9-1.1 at
#: 784, 1.07-1.08 at 1568 (ViT-S/B widths, batch 1 and 8, Xeon). 'avx512_bf16': 1.0 at N = 16,
#: 1.7-2.3 at 49, 2.1-2.8 from 98 to 1568 (head dims 64 and 88, batch 1 and 8, AMD EPYC)
MIN_TOKENS_BF16 = {'amx': 1568, 'avx512_bf16': 49}
#: bf16 kernels, in the order of preference
BF16_KERNELS = ('amx', 'avx512_bf16')
#: largest head dim the kernel takes (8 vectors of 16 floats)
MAX_HEAD_DIMS = 128
_EXTENSION = 'vmae2_mm._cpu_kernels'
_STATE = dict(loaded=None, reason='', bf16=())
logger = logging.getLogger(__name__)


def _load() -> bool:
    """Load the compiled kernel once; False (with the reason kept) when it cannot run here."""
    if _STATE['loaded'] is None:
        _STATE['loaded'] = False
        spec = importlib.util.find_spec(_EXTENSION)
        if spec is None or not spec.origin:
            _STATE['reason'] = (f'{_EXTENSION} was not built (reinstall with torch importable: '
                                'pip install --no-build-isolation -e .)')
        else:
            try:
                torch.ops.load_library(spec.origin)
                ops = torch.ops.vmae2_mm
                if not hasattr(ops, 'cpu_fused_attention_avx512_bf16_supported'):
                    _STATE['reason'] = (f'{spec.origin} was built from older sources (rebuild: '
                                        'pip install --no-build-isolation -e .)')
                elif ops.cpu_fused_attention_supported():
                    _STATE['loaded'] = True
                    supported = dict(amx=ops.cpu_fused_attention_bf16_supported(),
                                     avx512_bf16=ops.cpu_fused_attention_avx512_bf16_supported())
                    _STATE['bf16'] = tuple(k for k in BF16_KERNELS if supported[k])
                else:
                    _STATE['reason'] = 'this CPU has no AVX-512'
            except (OSError, RuntimeError) as exc:  # built against another torch
                _STATE['reason'] = f'{spec.origin} does not load: {exc}'
        if not _STATE['loaded']:
            logger.info('fused CPU attention unavailable (%s); using SDPA', _STATE['reason'])
    return _STATE['loaded']


def fused_attention_available(dtype: torch.dtype = torch.float32) -> bool:
    """Whether a compiled kernel for ``dtype`` (float32 or bfloat16) is built and runs on this
    CPU."""
    if dtype == torch.bfloat16:
        return bool(bf16_kernels())
    return dtype == torch.float32 and _load()


def bf16_kernels() -> tuple:
    """The bf16 kernels that run here, preferred first: ``('amx', 'avx512_bf16')`` on CPUs with
    AMX, ``('avx512_bf16',)`` with AVX512-BF16 alone, ``()`` without either."""
    return _STATE['bf16'] if _load() else ()


def bf16_kernel() -> str:
    """The bf16 kernel :func:`fused_attention` runs by default here ('' when there is none and
    bf16 is upcast to the fp32 kernel)."""
    kernels = bf16_kernels()
    return kernels[0] if kernels else ''


def fused_attention_unavailable_reason() -> str:
    """Why :func:`fused_attention_available` is False ('' when it is True)."""
    _load()
    return _STATE['reason']


def fused_attention_active(q: Tensor) -> bool:
    """Whether the backbone's attention runs ``q`` [B, heads, N, D] through
    :func:`fused_attention`."""
    return _active(q.shape[-2], q.shape[-1], q.dtype, q)


def fused_attention_active_for(x: Tensor, num_heads: int) -> bool:
    """Whether the backbone's attention over tokens ``x`` [B, N, C] would run
    :func:`fused_attention`, decided before its ``qkv`` linear: q has ``x``'s dtype, or CPU
    autocast's bf16 when that casts the linear."""
    dtype = x.dtype
    if (x.device.type == 'cpu' and dtype == torch.float32 and torch.is_autocast_enabled('cpu')
            and torch.get_autocast_dtype('cpu') == torch.bfloat16):
        dtype = torch.bfloat16
    return _active(x.shape[1], x.shape[2] // num_heads, dtype, x)


def _active(n: int, d: int, dtype: torch.dtype, x: Tensor) -> bool:
    """The rule behind both checks: ``n`` tokens of head dim ``d`` in ``dtype``, on ``x``'s
    device, with ``x``'s gradient mode."""
    if d > MAX_HEAD_DIMS:
        return False
    if dtype == torch.bfloat16:
        if x.device.type != 'cpu' or torch.is_grad_enabled():
            return False
        if bf16_kernel():
            return n >= MIN_TOKENS_BF16[bf16_kernel()]
        return n >= MIN_TOKENS and fused_attention_available()  # upcast to the fp32 kernel
    return (dtype == torch.float32 and n >= MIN_TOKENS and fp32_cpu_inference(x)
            and fused_attention_available())


def fused_attention(q: Tensor, k: Tensor, v: Tensor, scale: Optional[float] = None,
                    q_bias: Optional[Tensor] = None, v_bias: Optional[Tensor] = None,
                    bf16_kernel: str = 'auto') -> Tensor:
    """``softmax((q + q_bias) k^T * scale) (v + v_bias)`` with heads merged back into channels.

    The biases are added inside the kernel, as it copies q and v into its own layouts, so the
    backbone's ``qkv`` linear runs as a plain product (see the kernel's header for why).

    Args:
        q (Tensor): [B, heads, N, D] float32 or bfloat16 on CPU, unit stride along D (e.g.
            views of one ``qkv`` tensor, as the backbone makes them).
        k (Tensor): [B, heads, N, D], same conditions.
        v (Tensor): [B, heads, N, D], same conditions.
        scale (float, optional): Defaults to ``D ** -0.5``.
        q_bias (Tensor, optional): [heads * D], channel ``h * D + j`` for head ``h``; cast to
            float32. bf16 q/k/v with a bf16 kernel: the biased q and v are rounded to bf16;
            without one they are upcast and everything runs in fp32 (see
            :func:`upcast_bf16_attention`).
        v_bias (Tensor, optional): [heads * D], the same for v.
        bf16_kernel (str): For bf16 q/k/v: ``'auto'`` (the first of :func:`bf16_kernels`),
            ``'amx'`` or ``'avx512_bf16'`` (to compare them where both run).

    Returns:
        Tensor: [B, N, heads * D] in q's dtype, channel ``h * D + j`` is head ``h``'s channel
        ``j`` (SDPA's output after ``transpose(1, 2).reshape(B, N, C)``).
    """
    if q.dtype == torch.bfloat16 and bf16_kernel == 'auto' and not bf16_kernels():
        return upcast_bf16_attention(q, k, v, scale, q_bias, v_bias)
    if not fused_attention_available(q.dtype):
        raise RuntimeError(f'fused CPU attention for {q.dtype} unavailable: {_STATE["reason"]}')
    scale = q.shape[-1]**-0.5 if scale is None else scale
    q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))
    q_bias, v_bias = (None if b is None else b.detach().float().contiguous()
                      for b in (q_bias, v_bias))
    with torch.profiler.record_function(PROFILER_SCOPE):
        return torch.ops.vmae2_mm.cpu_fused_attention(q, k, v, float(scale), q_bias, v_bias,
                                                      bf16_kernel)


def upcast_bf16_attention(q: Tensor, k: Tensor, v: Tensor, scale: Optional[float] = None,
                          q_bias: Optional[Tensor] = None,
                          v_bias: Optional[Tensor] = None) -> Tensor:
    """bf16 q/k/v [B, heads, N, D] through the fp32 kernel -> [B, N, heads * D] bf16.

    What :func:`fused_attention` does with bf16 on CPUs without AMX (module docstring: why);
    callable on any AVX-512 CPU so that its numerics are tested on AMX machines too.
    """
    if q.dtype != torch.bfloat16 or k.dtype != q.dtype or v.dtype != q.dtype:
        raise ValueError(f'upcast_bf16_attention takes bfloat16 q, k, v, got {q.dtype}, '
                         f'{k.dtype}, {v.dtype}')
    if not fused_attention_available():
        raise RuntimeError(f'fused CPU attention unavailable: {_STATE["reason"]}')
    # .float() keeps each view's dimension order, so D stays the unit stride the kernel wants
    out = fused_attention(q.float(), k.float(), v.float(), scale, q_bias, v_bias)
    return out.to(torch.bfloat16)


__all__ = ['fused_attention', 'upcast_bf16_attention', 'fused_attention_active',
           'fused_attention_active_for', 'fused_attention_available', 'bf16_kernels',
           'bf16_kernel', 'fused_attention_unavailable_reason',
           'PROFILER_SCOPE', 'MIN_TOKENS', 'MIN_TOKENS_BF16', 'BF16_KERNELS', 'MAX_HEAD_DIMS']
