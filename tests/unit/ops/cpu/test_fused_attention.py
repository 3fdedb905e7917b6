"""The compiled fused attention (CPU inference) computes softmax(q k^T / sqrt(d)) v as exactly as
torch's SDPA (fp32: to fp32 rounding; bf16: with SDPA's own bf16 error), for every head dim the
ViT archs have, in the [B, N, C] layout, and the backbone takes it exactly where it may."""
import pytest
import torch

from tests.unit.ops.cpu.attention_cases import (assert_fp32_exact,
                                                         check_backbone_dispatch, qkv_views,
                                                         reference_attention, sdpa_merged)
from vmae2_mm.ops.cpu import fused_attention as fused
from vmae2_mm.models.backbones.vit_layers import Attention
from vmae2_mm.ops.cpu.cpu_info import cpu_flags


needs_kernel = pytest.mark.skipif(not fused.fused_attention_available(),
                                  reason=fused.fused_attention_unavailable_reason())
#: every bf16 kernel, skipped where it does not run (AMX CPUs run both), each tested on its own
BF16_KERNEL_PARAMS = [
    pytest.param(kernel, marks=pytest.mark.skipif(
        kernel not in fused.bf16_kernels(), reason=f'no {kernel} here, or no kernel build'))
    for kernel in fused.BF16_KERNELS]
bf16_kernels = pytest.mark.parametrize('kernel', BF16_KERNEL_PARAMS)


@pytest.mark.skipif(not {'avx512f', 'avx512dq', 'fma'} <= cpu_flags(),
                    reason='the kernel needs an AVX-512 CPU')
def test_kernel_is_built_here():
    """CI installs with tools/setup_env.sh: a missing or broken build must fail, not fall back."""
    assert fused.fused_attention_available(), fused.fused_attention_unavailable_reason()
    flags = cpu_flags()
    if {'avx512_bf16', 'avx512bw', 'avx512vl'} <= flags:
        assert 'avx512_bf16' in fused.bf16_kernels()
    if {'amx_bf16', 'amx_tile', 'avx512_bf16'} <= flags:
        assert fused.bf16_kernel() == 'amx' and 'avx512_bf16' in fused.bf16_kernels()


@needs_kernel  # a bf16 kernel, or the fp32 kernel on upcast q/k/v without one
@pytest.mark.parametrize('kernel', ['auto'] + BF16_KERNEL_PARAMS)
@pytest.mark.parametrize('b,heads,n,d', [
    (1, 6, 1568, 64),    # ViT-S 16x224: AMX 49 blocks of 32 queries; AVX512-BF16 33 of 48
    (2, 2, 100, 88),     # ViT-g head dim: padded to 96 for AMX, 44 dim pairs
    (1, 2, 70, 80),      # ViT-H head dim (5 channel tiles: one unpaired)
    (3, 1, 37, 5),       # tiny head dim (3 dim pairs, one padded), N < one block, odd N
    (1, 3, 51, 7),       # odd head dim and odd N: a padded dim pair and a padded key pair
    (1, 1, 50, 128),     # largest head dim
    (1, 1, 1, 16),       # one token: one key pair with a zero partner
])
def test_bf16_has_sdpa_bf16_error(kernel, b, heads, n, d):
    q, k, v = (t.bfloat16() for t in qkv_views(b, heads, n, d))
    with torch.inference_mode():
        out = fused.fused_attention(q, k, v, bf16_kernel=kernel)
        sdpa = sdpa_merged(q, k, v)
    assert out.dtype == torch.bfloat16 and out.shape == (b, n, heads * d)
    ref = reference_attention(q, k, v)  # float64 of the same bf16 inputs
    error, sdpa_error = [(t.double() - ref).abs().max().item() for t in (out, sdpa)]
    # bf16 output rounding dominates: 2^-9 of the largest entries
    assert error <= 1.5 * sdpa_error + 1e-3 and error < 4e-3 * ref.abs().max().item(), (
        error, sdpa_error)


@needs_kernel
def test_bf16_dispatch_under_autocast():
    torch.manual_seed(0)
    attn = Attention(64, 2, attn_impl='cpu_fused').eval()
    with torch.no_grad():  # the kernel adds q_bias and v_bias itself (the qkv mm has none)
        attn.q_bias.normal_()
        attn.v_bias.normal_()
    plain = Attention(64, 2, attn_impl='sdpa').eval()
    plain.load_state_dict(attn.state_dict())
    kernel = fused.bf16_kernel()
    n = fused.MIN_TOKENS_BF16[kernel] if kernel else fused.MIN_TOKENS
    x = torch.randn(1, n, 64)
    with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16):
        assert fused.fused_attention_active(torch.randn(1, 2, n, 32).bfloat16())
        assert not fused.fused_attention_active(torch.randn(1, 2, n - 1, 32).bfloat16())
        assert not fused.fused_attention_active(torch.randn(1, 2, n, 32).half())
        with torch.profiler.profile() as prof:
            fast = attn(x)
        assert fused.PROFILER_SCOPE in {ev.name for ev in prof.events()}
        sdpa = plain(x)
    assert fast.dtype == sdpa.dtype == torch.bfloat16
    assert (fast.float() - sdpa.float()).abs().max().item() < 2e-2 * sdpa.abs().max().item()


@needs_kernel
@pytest.mark.parametrize('b,heads,n,d', [
    (1, 6, 1568, 64),    # ViT-S 16x224: 33 blocks of 48 queries, 196 tiles of 8 keys
    (2, 2, 100, 88),     # ViT-g head dim (5.5 vectors), partial last block and key tile
    (1, 2, 400, 80),     # ViT-H head dim (5 vectors)
    (1, 1, 50, 128),     # largest head dim
    (3, 2, 37, 5),       # tiny head dim, N < one block
    (1, 1, 1, 16),       # one token
])
def test_matches_sdpa_and_explicit_softmax(b, heads, n, d):
    q, k, v = qkv_views(b, heads, n, d)
    with torch.inference_mode():
        out = fused.fused_attention(q, k, v)
        assert out.shape == (b, n, heads * d) and out.is_contiguous()
        assert_fp32_exact(out, q, k, v)


def biased(q, v, heads, d, seed=1):
    """(q + q_bias, v + v_bias) per head and random [heads * d] biases."""
    g = torch.Generator().manual_seed(seed)
    q_bias, v_bias = torch.randn(2, heads * d, generator=g)
    per_head = lambda b: b.view(1, heads, 1, d)  # noqa: E731
    return q_bias, v_bias, q + per_head(q_bias).to(q.dtype), v + per_head(v_bias).to(v.dtype)


@needs_kernel
@pytest.mark.parametrize('b,heads,n,d', [(1, 6, 400, 64), (2, 2, 37, 88), (1, 3, 50, 5)])
def test_fp32_biases_are_added_to_q_and_v(b, heads, n, d):
    q, k, v = qkv_views(b, heads, n, d)
    q_bias, v_bias, q_biased, v_biased = biased(q, v, heads, d)
    with torch.inference_mode():
        out = fused.fused_attention(q, k, v, q_bias=q_bias, v_bias=v_bias)
        assert_fp32_exact(out, q_biased, k, v_biased)
        # each bias alone
        assert_fp32_exact(fused.fused_attention(q, k, v, q_bias=q_bias), q_biased, k, v)
        assert_fp32_exact(fused.fused_attention(q, k, v, v_bias=v_bias), q, k, v_biased)


@bf16_kernels
@pytest.mark.parametrize('b,heads,n,d', [(1, 6, 1568, 64), (2, 2, 100, 88), (3, 1, 37, 5)])
def test_bf16_biases_are_added_in_fp32_then_rounded(kernel, b, heads, n, d):
    q, k, v = (t.bfloat16() for t in qkv_views(b, heads, n, d))
    q_bias, v_bias, _, _ = biased(q, v, heads, d)
    per_head = lambda t, bias: (t.float() + bias.view(1, heads, 1, d)).bfloat16()  # noqa: E731
    q_biased, v_biased = per_head(q, q_bias), per_head(v, v_bias)
    with torch.inference_mode():
        out = fused.fused_attention(q, k, v, q_bias=q_bias, v_bias=v_bias, bf16_kernel=kernel)
        unbiased_kernel = fused.fused_attention(q_biased, k, v_biased, bf16_kernel=kernel)
    # the same bf16 q and v as rounding (q + q_bias) in fp32 once: the same kernel result
    assert torch.equal(out, unbiased_kernel)


@needs_kernel
@pytest.mark.parametrize('b,heads,n,d', [(1, 6, 400, 64), (2, 2, 37, 88), (1, 1, 1, 16)])
def test_upcast_bf16_is_the_fp32_kernel_rounded_once(b, heads, n, d):
    """Without a bf16 kernel, bf16 q/k/v run the fp32 kernel: biases added in fp32, only the
    output rounded, so the error against float64 is bf16 output rounding alone (below SDPA's)."""
    q, k, v = (t.bfloat16() for t in qkv_views(b, heads, n, d))
    q_bias, v_bias, q_biased, v_biased = biased(q, v, heads, d)  # bf16 biased, for SDPA
    with torch.inference_mode():
        out = fused.upcast_bf16_attention(q, k, v, q_bias=q_bias, v_bias=v_bias)
        fp32 = fused.fused_attention(q.float(), k.float(), v.float(), q_bias=q_bias,
                                     v_bias=v_bias)
        sdpa = sdpa_merged(q_biased, k, v_biased)
    assert out.dtype == torch.bfloat16 and out.shape == (b, n, heads * d)
    assert torch.equal(out, fp32.bfloat16())
    per_head = lambda t, bias: t.double() + bias.double().view(1, heads, 1, d)  # noqa: E731
    ref = reference_attention(per_head(q, q_bias), k, per_head(v, v_bias))
    error, sdpa_error = [(t.double() - ref).abs().max().item() for t in (out, sdpa)]
    assert error <= 2**-8 * ref.abs().max().item() and error <= sdpa_error + 1e-6, (
        error, sdpa_error)
    with pytest.raises(ValueError, match='bfloat16 q, k, v, got torch.float32'):
        fused.upcast_bf16_attention(q.float(), k, v)


@needs_kernel
@pytest.mark.parametrize('bias,message', [
    (torch.zeros(31), r'q_bias must be .*\[H \* D\] = \[32\].*\[31\]'),
    (torch.zeros(32, dtype=torch.float64), 'q_bias must be a contiguous float32'),
    (torch.zeros(64)[::2], 'q_bias must be a contiguous float32'),
])
def test_bad_bias_is_refused_by_name(bias, message):
    q = torch.randn(1, 2, 8, 16)
    with pytest.raises(RuntimeError, match=message):
        torch.ops.vmae2_mm.cpu_fused_attention(q, q, q, 0.25, bias, None)


@needs_kernel
def test_contiguous_inputs_and_scale():
    q, k, v = (t.contiguous() for t in qkv_views(2, 3, 60, 32))
    with torch.inference_mode():
        assert_fp32_exact(fused.fused_attention(q, k, v, scale=0.3), q, k, v, scale=0.3)


@needs_kernel
def test_peaked_softmax_underflows_to_zero_weights():
    """Scores spread over hundreds: most weights underflow (exp below -86.6 returns 0, no
    denormals); the result still matches, with no NaN or inf."""
    q, k, v = qkv_views(1, 2, 300, 64, spread=12.0)
    with torch.inference_mode():
        out = fused.fused_attention(q, k, v)
    ref = reference_attention(q, k, v)
    scores = (q.double() * 64**-0.5) @ k.double().transpose(-2, -1)
    assert (scores.amax(-1, keepdim=True) - scores).max() > 500  # deep underflow exercised
    assert torch.isfinite(out).all()
    assert (out.double() - ref).abs().max().item() < 1e-4 * ref.abs().max().item()


@bf16_kernels
def test_bf16_peaked_softmax_underflows_to_zero_weights(kernel):
    """As for fp32: weights below 2^-125 are 0 (no denormals), nothing is NaN or inf, and the
    error stays SDPA's bf16 error."""
    q, k, v = (t.bfloat16() for t in qkv_views(1, 2, 300, 64, spread=12.0))
    with torch.inference_mode():
        out = fused.fused_attention(q, k, v, bf16_kernel=kernel)
        sdpa = sdpa_merged(q, k, v)
    ref = reference_attention(q, k, v)
    scores = (q.double() * 64**-0.5) @ k.double().transpose(-2, -1)
    assert (scores.amax(-1, keepdim=True) - scores).max() > 500
    assert torch.isfinite(out.float()).all()
    error, sdpa_error = [(t.double() - ref).abs().max().item() for t in (out, sdpa)]
    assert error <= 1.5 * sdpa_error + 1e-3, (error, sdpa_error)


@bf16_kernels
def test_bf16_heads_land_in_their_channels(kernel):
    q, k, v = (t.bfloat16() for t in qkv_views(1, 4, 50, 8))
    v = v.clone()
    v[:, [0, 1, 3]] = 0
    with torch.inference_mode():
        out = fused.fused_attention(q, k, v, bf16_kernel=kernel)
    assert out[..., 16:24].abs().min() > 0
    assert out[..., :16].abs().max() == 0 and out[..., 24:].abs().max() == 0


@needs_kernel
def test_bf16_kernel_choice_is_checked():
    q = torch.randn(1, 2, 8, 16).bfloat16()
    with pytest.raises(RuntimeError, match="bf16_kernel must be 'auto', 'amx' or 'avx512_bf16'"):
        torch.ops.vmae2_mm.cpu_fused_attention(q, q, q, 0.25, None, None, 'avx2')
    if 'amx' not in fused.bf16_kernels():
        with pytest.raises(RuntimeError, match="no AMX-BF16"):
            torch.ops.vmae2_mm.cpu_fused_attention(q, q, q, 0.25, None, None, 'amx')


@needs_kernel
def test_heads_land_in_their_channels():
    """Zero values in every head but one: only that head's channels are non-zero."""
    q, k, v = qkv_views(1, 4, 50, 8)
    v = v.clone()
    v[:, [0, 1, 3]] = 0
    with torch.inference_mode():
        out = fused.fused_attention(q, k, v)
    assert out[..., 16:24].abs().min() > 0
    assert out[..., :16].abs().max() == 0 and out[..., 24:].abs().max() == 0


@needs_kernel
@pytest.mark.parametrize('bad,message', [
    (lambda q: (q[..., :1].expand(*q.shape[:3], 129).contiguous(), ) * 3, 'head dim'),
    (lambda q: (q.double(), ) * 3, 'float32 or bfloat16'),
    (lambda q: (q, q.bfloat16(), q), 'one dtype'),
    (lambda q: (q, q[:, :, :5], q), r'\[B, H, N, D\]'),
])
def test_bad_input_is_refused_by_name(bad, message):
    q = torch.randn(1, 2, 8, 16)
    with pytest.raises(RuntimeError, match=message):
        torch.ops.vmae2_mm.cpu_fused_attention(*bad(q), 0.25)


def test_explicit_cpu_fused_is_refused_where_it_cannot_run():
    from vmae2_mm.models.backbones.vit_layers import resolve_attn_impl
    if fused.fused_attention_available():
        assert resolve_attn_impl('cpu_fused') == 'cpu_fused'
    else:
        with pytest.raises(ValueError, match="attn_impl='cpu_fused' cannot run here"):
            resolve_attn_impl('cpu_fused')


@needs_kernel
def test_backbone_attention_dispatch():
    assert not fused.fused_attention_active(torch.randn(1, 1, fused.MIN_TOKENS, 129))
    check_backbone_dispatch(fused.fused_attention_active, 'cpu_fused',
                            fused.PROFILER_SCOPE, fused.MIN_TOKENS)
