"""Shared by the CPU attention kernel tests: inputs laid out as the backbone makes them, the
float64 reference, the fp32 exactness bar and the backbone dispatch check."""
import torch
import torch.nn.functional as F

from vmae2_mm.models.backbones.vit_layers import Attention


def qkv_views(b, heads, n, d, seed=0, spread=2.0):
    """q, k, v [B, heads, N, D] as strided views of one [B, N, 3C] tensor."""
    g = torch.Generator().manual_seed(seed)
    qkv = torch.randn(b, n, 3 * heads * d, generator=g) * spread
    return qkv.reshape(b, n, 3, heads, d).permute(2, 0, 3, 1, 4)


def reference_attention(q, k, v, scale=None):
    """Explicit softmax attention in float64, [B, N, C]."""
    b, heads, n, d = q.shape
    q, k, v = q.double(), k.double(), v.double()
    attn = ((q * (scale or d**-0.5)) @ k.transpose(-2, -1)).softmax(-1)
    return (attn @ v).transpose(1, 2).reshape(b, n, heads * d)


def sdpa_merged(q, k, v, scale=None):
    """torch's SDPA with heads merged into channels, [B, N, C]."""
    b, heads, n, d = q.shape
    out = F.scaled_dot_product_attention(q, k, v, scale=scale)
    return out.transpose(1, 2).reshape(b, n, heads * d)


def assert_fp32_exact(out, q, k, v, scale=None):
    """fp32 rounding only: within 1e-5 of the float64 result relative to its largest entry, and
    at most twice as far from it as torch's own kernel."""
    ref = reference_attention(q, k, v, scale)
    error, sdpa_error = [(t.double() - ref).abs().max().item()
                         for t in (out, sdpa_merged(q, k, v, scale))]
    assert ref.abs().max() > 1
    assert error < 1e-5 * ref.abs().max().item(), (error, sdpa_error)
    assert error <= 2 * sdpa_error + 1e-6, (error, sdpa_error)


def check_backbone_dispatch(active, impl, scope, min_tokens):
    """An ``Attention`` built with ``attn_impl=impl`` takes the kernel exactly where ``active``
    says: from ``min_tokens`` on, fp32 inference only (not for fp32 q under autocast, not with
    gradients), seen by the profiler as ``scope``; one built with ``'sdpa'`` (same weights)
    never does, with the same result."""
    torch.manual_seed(0)
    attn = Attention(32, 4, attn_impl=impl).eval()
    with torch.no_grad():
        attn.q_bias.normal_()
        attn.v_bias.normal_()
    plain = Attention(32, 4, attn_impl='sdpa').eval()
    plain.load_state_dict(attn.state_dict())
    assert attn.attn_impl == impl and plain.attn_impl == 'sdpa'
    x = torch.randn(2, min_tokens, 32)
    q = torch.randn(1, 4, min_tokens, 8)
    with torch.inference_mode():
        assert active(q)
        assert not active(q[:, :, 1:])  # shorter sequences: SDPA
        with torch.profiler.profile() as prof:
            fast = attn(x)
        assert scope in {ev.name for ev in prof.events()}
        with torch.profiler.profile() as prof:
            short = attn(x[:, 1:])
        assert scope not in {ev.name for ev in prof.events()}
        with torch.autocast('cpu', dtype=torch.bfloat16):
            assert not active(q)  # fp32 q under autocast: SDPA casts it
        with torch.profiler.profile() as prof:
            sdpa = plain(x)
        assert scope not in {ev.name for ev in prof.events()}
        assert (short - plain(x[:, 1:])).abs().max().item() < 1e-5
    assert (fast - sdpa).abs().max().item() < 1e-5
    # gradients recorded: SDPA (the kernels have no backward)
    assert not active(q.requires_grad_(True))
    out = attn(x.requires_grad_(True))
    out.sum().backward()
    assert x.grad is not None and (out.detach() - fast).abs().max().item() < 1e-5
