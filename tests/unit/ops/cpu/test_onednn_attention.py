"""oneDNN blocked attention (fp32 CPU inference) computes the same softmax(q k^T / sqrt(d)) v as
SDPA, to fp32 rounding, in the [B, N, C] layout, and the backbone only takes it where it may."""
import pytest
import torch

from tests.unit.ops.cpu.attention_cases import (assert_fp32_exact,
                                                         check_backbone_dispatch, qkv_views)
from vmae2_mm.models.backbones.vit_layers import resolve_attn_impl
from vmae2_mm.ops.cpu import fused_attention as cpu_fused_attention
from vmae2_mm.ops.cpu import onednn_attention as cpu_attention
from vmae2_mm.ops.cpu import onednn_linear as cpu_linear
from vmae2_mm.ops.cpu.cpu_info import cpu_vendor, mkl_has_fast_sgemm

needs_onednn = pytest.mark.skipif(not cpu_linear._AVAILABLE, reason='torch built without oneDNN')


def test_onednn_is_preferred_only_where_mkl_is_slow():
    vendor = cpu_vendor()
    assert isinstance(vendor, str)
    if vendor == 'GenuineIntel':
        assert mkl_has_fast_sgemm()
    elif vendor == 'AuthenticAMD':
        assert not mkl_has_fast_sgemm()
    assert cpu_linear.onednn_preferred() == (cpu_linear._AVAILABLE and not mkl_has_fast_sgemm())


def test_auto_resolves_once_to_the_fastest_backend_here():
    expected = ('cpu_fused' if cpu_fused_attention.fused_attention_available()
                else 'onednn' if cpu_linear.onednn_preferred() else 'sdpa')
    assert resolve_attn_impl('auto') == expected
    for impl in ('sdpa', 'manual'):
        assert resolve_attn_impl(impl) == impl
    with pytest.raises(ValueError, match='attn_impl must be one of'):
        resolve_attn_impl('flash')


@needs_onednn
@pytest.mark.parametrize('b,heads,n,d,block', [
    (1, 6, 192, 64, 64),         # N a multiple of the block, ViT-S heads
    (2, 3, 100, 16, 32),         # last block partial, batch 2
    (1, 2, 20, 8, 256),          # N smaller than one block
])
def test_matches_sdpa_and_explicit_softmax(b, heads, n, d, block):
    q, k, v = qkv_views(b, heads, n, d)
    with torch.inference_mode():
        out = cpu_attention.onednn_attention(q, k, v, block=block)
        assert out.shape == (b, n, heads * d) and out.is_contiguous()
        assert_fp32_exact(out, q, k, v)


@needs_onednn
def test_heads_land_in_their_channels():
    """Zero values in every head but one: only that head's channels are non-zero."""
    q, k, v = qkv_views(1, 4, 12, 8)
    v = v.clone()
    v[:, [0, 1, 3]] = 0
    with torch.inference_mode():
        out = cpu_attention.onednn_attention(q, k, v, block=5)
    assert out[..., 16:24].abs().min() > 0
    assert out[..., :16].abs().max() == 0 and out[..., 24:].abs().max() == 0


@needs_onednn
def test_backbone_attention_dispatch():
    """Built with attn_impl='onednn' (on every CPU, not only where 'auto' picks it)."""
    check_backbone_dispatch(cpu_attention.onednn_attention_active, 'onednn',
                            cpu_attention.PROFILER_SCOPE, cpu_attention.MIN_TOKENS)
