"""oneDNN blocked attention (fp32 CPU inference) computes the same softmax(q k^T / sqrt(d)) v as
SDPA, to fp32 rounding, in the [B, N, C] layout, and the backbone only takes it where it may."""
import pytest
import torch
import torch.nn.functional as F

from vmae2_mm.models.backbones import cpu_attention, cpu_fused_attention, cpu_linear
from vmae2_mm.models.backbones.vit_layers import Attention
from vmae2_mm.utils.cpu_info import cpu_vendor, mkl_has_fast_sgemm

needs_onednn = pytest.mark.skipif(not cpu_linear._AVAILABLE, reason='torch built without oneDNN')


@pytest.fixture
def onednn_path():
    """The oneDNN paths forced on and the fused kernel (which takes precedence) off, so this
    path is tested on every CPU, not only where it is the default."""
    linear_mode = cpu_linear.set_onednn_linear(True)
    fused = cpu_fused_attention.set_fused_attention(False)
    yield
    cpu_linear.set_onednn_linear(linear_mode)
    cpu_fused_attention.set_fused_attention(fused)


def test_onednn_is_the_default_only_where_mkl_is_slow():
    vendor = cpu_vendor()
    assert isinstance(vendor, str)
    if vendor == 'GenuineIntel':
        assert mkl_has_fast_sgemm()
    elif vendor == 'AuthenticAMD':
        assert not mkl_has_fast_sgemm()
    previous = cpu_linear.set_onednn_linear(None)
    try:
        assert cpu_linear.onednn_preferred() == (cpu_linear._AVAILABLE and not mkl_has_fast_sgemm())
        cpu_linear.set_onednn_linear(False)
        assert not cpu_linear.onednn_preferred()
        cpu_linear.set_onednn_linear(True)
        assert cpu_linear.onednn_preferred() == cpu_linear._AVAILABLE
    finally:
        cpu_linear.set_onednn_linear(previous)


def _qkv(b, heads, n, d, seed=0):
    """q, k, v as the backbone makes them: views of one [B, N, 3C] tensor."""
    g = torch.Generator().manual_seed(seed)
    qkv = torch.randn(b, n, 3 * heads * d, generator=g) * 2
    return qkv.reshape(b, n, 3, heads, d).permute(2, 0, 3, 1, 4)


def _reference(q, k, v):
    """Explicit softmax attention in float64, [B, N, C]."""
    b, heads, n, d = q.shape
    q, k, v = q.double(), k.double(), v.double()
    attn = ((q * d**-0.5) @ k.transpose(-2, -1)).softmax(-1)
    return (attn @ v).transpose(1, 2).reshape(b, n, heads * d)


@needs_onednn
@pytest.mark.parametrize('b,heads,n,d,block', [
    (1, 6, 192, 64, 64),         # N a multiple of the block, ViT-S heads
    (2, 3, 100, 16, 32),         # last block partial, batch 2
    (1, 2, 20, 8, 256),          # N smaller than one block
])
def test_matches_sdpa_and_explicit_softmax(b, heads, n, d, block):
    q, k, v = _qkv(b, heads, n, d)
    with torch.inference_mode():
        out = cpu_attention.onednn_attention(q, k, v, block=block)
        sdpa = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, heads * d)
    assert out.shape == (b, n, heads * d) and out.is_contiguous()
    ref = _reference(q, k, v)
    error, sdpa_error = [(t.double() - ref).abs().max().item() for t in (out, sdpa)]
    assert ref.abs().max() > 1
    # fp32 rounding only: as close to the float64 result as torch's own kernel
    assert error < 1e-5 and error <= 2 * sdpa_error + 1e-6, (error, sdpa_error)


@needs_onednn
def test_heads_land_in_their_channels():
    """Zero values in every head but one: only that head's channels are non-zero."""
    q, k, v = _qkv(1, 4, 12, 8)
    v = v.clone()
    v[:, [0, 1, 3]] = 0
    with torch.inference_mode():
        out = cpu_attention.onednn_attention(q, k, v, block=5)
    assert out[..., 16:24].abs().min() > 0
    assert out[..., :16].abs().max() == 0 and out[..., 24:].abs().max() == 0


@needs_onednn
def test_backbone_attention_dispatch(onednn_path):
    torch.manual_seed(0)
    attn = Attention(32, 4).eval()
    with torch.no_grad():
        attn.q_bias.normal_()
        attn.v_bias.normal_()
    n = cpu_attention.MIN_TOKENS
    x = torch.randn(2, n, 32)
    q = torch.randn(1, 4, n, 8)
    with torch.inference_mode():
        assert cpu_attention.onednn_attention_active(q)
        # fewer tokens: the Python loop costs more than oneDNN saves, SDPA
        assert not cpu_attention.onednn_attention_active(q[:, :, 1:])
        with torch.profiler.profile() as prof:
            fast = attn(x)
        assert cpu_attention.PROFILER_SCOPE in {ev.name for ev in prof.events()}
        with torch.autocast('cpu', dtype=torch.bfloat16):
            assert not cpu_attention.onednn_attention_active(q)  # bf16 stays with SDPA
        previous = cpu_attention.set_onednn_attention(False)
        try:
            assert not cpu_attention.onednn_attention_active(q)
            sdpa = attn(x)
        finally:
            cpu_attention.set_onednn_attention(previous)
    assert (fast - sdpa).abs().max().item() < 1e-5
    # gradients recorded: SDPA (oneDNN's products have no backward here)
    assert not cpu_attention.onednn_attention_active(q.requires_grad_(True))
    out = attn(x.requires_grad_(True))
    out.sum().backward()
    assert x.grad is not None and (out.detach() - fast).abs().max().item() < 1e-5
