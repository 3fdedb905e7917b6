"""Self-attention for fp32 CPU inference with oneDNN products, one block of queries at a time.

The fallback of :mod:`.fused_attention` (used when that kernel is not built or the CPU has
no AVX-512) on CPUs where MKL is slow. Why not ``F.scaled_dot_product_attention`` there: torch
2.13's CPU flash-attention kernel computes ``q k^T`` and ``attn v`` through ``at::cpublas``, i.e.
the BLAS the wheel was built with (MKL), which on AMD CPUs does not pick its AVX-512 kernels
(see :mod:`.onednn_linear`). The same two products through oneDNN, which the wheel also ships,
take about half the time. Measured on an AMD EPYC (2 threads, 1568 tokens, head dim 64, q/k/v
as views of one ``qkv`` tensor as the backbone makes them, head merge included): one layer's
attention runs 1.35x (ViT-S width) and 1.41x (ViT-B) faster than with SDPA; the whole ViT-S/B
forward 1.19x / 1.21x. On Intel CPUs, where MKL is fast, SDPA is faster (17 vs 24 ms per ViT-S
layer on a Xeon), so by default it is only used where :mod:`.onednn_linear` uses oneDNN.

The math is the same: ``softmax(q k^T / sqrt(d)) v`` with the softmax over all keys of each query
row in fp32. No online (flash-style) rescaling is needed, because one block's full score rows are
small (256 x N floats: 1.6 MB at N = 1568). Results differ from SDPA only in fp32 summation order
(~5e-7 here).

Used only where :mod:`.onednn_linear` uses oneDNN (by default on CPUs where MKL is slow; no
gradient recorded, CPU, fp32, no autocast), for at least :data:`MIN_TOKENS` tokens and without
attention dropout; everything else goes to SDPA.
The backbone uses it when built with ``attn_impl='onednn'`` (or ``'auto'`` where MKL is slow and
the fused kernel is not built).
"""
import torch
from torch import Tensor

from .onednn_linear import onednn_linear_active

#: queries per oneDNN product; 128-392 measured within 10% of each other for N = 1568
QUERY_BLOCK = 256
#: fewest tokens for which the backbone uses it. Time of SDPA / this, measured for ViT-S/B
#: widths at batch 1 and 8: 0.4 at N = 98, 0.6-0.7 at 196, 0.8-1.0 at 392, 1.06-1.23 at 784,
#: 1.23-1.41 at 1568 (the per-head, per-block Python loop costs more than it saves below that)
MIN_TOKENS = 784
#: profiler scope around :func:`onednn_attention` (its products are oneDNN linears too)
PROFILER_SCOPE = 'vmae2_mm::onednn_attention'


def onednn_attention_active(q: Tensor) -> bool:
    """Whether the backbone's attention runs ``q`` [B, heads, N, D] through
    :func:`onednn_attention` (when built with ``attn_impl='onednn'``): fp32 CPU inference
    from :data:`MIN_TOKENS` tokens on."""
    return q.shape[-2] >= MIN_TOKENS and onednn_linear_active(q)


def onednn_attention(q: Tensor, k: Tensor, v: Tensor, block: int = QUERY_BLOCK) -> Tensor:
    """``softmax(q k^T / sqrt(D)) v`` with heads merged back into channels.

    Args:
        q (Tensor): [B, heads, N, D] float32 on CPU (any strides).
        k (Tensor): [B, heads, N, D].
        v (Tensor): [B, heads, N, D].
        block (int): Queries per product. Defaults to :data:`QUERY_BLOCK`.

    Returns:
        Tensor: [B, N, heads * D], channel ``h * D + j`` is head ``h``'s channel ``j`` (the
        layout SDPA's output has after ``transpose(1, 2).reshape(B, N, C)``).
    """
    with torch.profiler.record_function(PROFILER_SCOPE):
        return _blocked_attention(q, k, v, block)


def _blocked_attention(q: Tensor, k: Tensor, v: Tensor, block: int) -> Tensor:
    b, heads, n, d = q.shape
    product = torch.ops.mkldnn._linear_pointwise
    q = q * d**-0.5
    # written head by head straight into the [B, N, heads, D] layout the projection reads
    out = q.new_empty(b, n, heads, d)
    for i in range(b):
        for h in range(heads):
            # oneDNN's linear computes x @ w^T: w = k gives q k^T, w = v^T gives attn v
            keys, values_t = k[i, h].contiguous(), v[i, h].t().contiguous()
            for start in range(0, n, block):
                scores = product(q[i, h, start:start + block], keys, None, 'none', [], '')
                out[i, start:start + block, h] = product(
                    torch.softmax(scores, dim=-1), values_t, None, 'none', [], '')
    return out.reshape(b, n, heads * d)


__all__ = ['onednn_attention', 'onednn_attention_active', 'QUERY_BLOCK',
           'MIN_TOKENS', 'PROFILER_SCOPE']
