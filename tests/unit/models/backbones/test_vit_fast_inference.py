"""The backbone's CPU inference fast paths compute the same function as the plain formulation.

Fast paths: oneDNN linears for fp32 inference (``optimize_for_cpu_inference``, on and off
here so both run on every CPU), the fused or oneDNN attention (``attn_impl``), in-place GELU
and residual sums, contiguous token stream. Reference: the official block written out with ``F.linear`` and
out-of-place ops (the released ``modeling_finetune.py`` formulation).
"""
import pytest
import torch
import torch.nn.functional as F

import vmae2_mm  # noqa: F401
from vmae2_mm.ops.cpu import fused_attention as cpu_fused_attention
from vmae2_mm.ops.cpu import onednn_linear as cpu_linear
from vmae2_mm.ops.cpu import optimize_for_cpu_inference
from vmae2_mm.models.backbones.vit_layers import residual_add
from vmae2_mm.models.backbones.vit_videomaev2 import VideoMAEv2ViT

ARCH = dict(embed_dims=96, depth=3, num_heads=3, mlp_hidden_dims=384)


def _reference_tokens(model, x):
    """Official formulation, out of place, F.linear only. x: [B, 3, T, H, W] -> [B, N, C]."""
    t = model.patch_embed.proj(x).flatten(2).transpose(1, 2)
    t = t + model.pos_embed
    for blk in model.blocks:
        at = blk.attn
        h = blk.norm1(t)
        b, n, c = h.shape
        bias = torch.cat((at.q_bias, torch.zeros_like(at.v_bias), at.v_bias))
        qkv = F.linear(h, at.qkv.weight, bias).reshape(b, n, 3, at.num_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        a = ((q * at.scale) @ k.transpose(-2, -1)).softmax(-1) @ v
        a = at.proj(a.transpose(1, 2).reshape(b, n, c))
        t = t + (blk.gamma_1 * a if blk.gamma_1 is not None else a)
        m = blk.mlp.fc2(F.gelu(blk.mlp.fc1(blk.norm2(t))))
        t = t + (blk.gamma_2 * m if blk.gamma_2 is not None else m)
    return t


def _model(img_size=64, num_frames=4, **kw):
    torch.manual_seed(0)
    model = VideoMAEv2ViT(arch=ARCH, img_size=img_size, num_frames=num_frames,
                          out_type='tokens', **kw).eval()
    with torch.no_grad():  # non-trivial biases / norms
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(torch.randn(p.shape) * 0.1)
    return model


@pytest.mark.parametrize('attn_impl', ['auto', 'sdpa', 'manual'])
@pytest.mark.parametrize('onednn', [True, False])
@pytest.mark.parametrize('init_values', [0., 0.1])
def test_inference_fast_path_matches_reference(init_values, onednn, attn_impl):
    model = _model(init_values=init_values, attn_impl=attn_impl)
    x = torch.randn(2, 3, 4, 64, 64)
    with torch.no_grad():
        ref = _reference_tokens(model, x)
    if onednn and cpu_linear._AVAILABLE:
        n_linears = sum(type(m) is torch.nn.Linear for m in model.modules())
        assert optimize_for_cpu_inference(model, linears=True) == n_linears == 3 * 4
        assert all(isinstance(m, cpu_linear.OneDNNLinear) for m in (
            model.blocks[0].attn.qkv, model.blocks[0].mlp.fc1))
    with torch.inference_mode():
        fast = model(x)
    assert ref.abs().max() > 1
    assert (fast - ref).abs().max().item() < 1e-5


def test_long_sequences_match_reference():
    """392 tokens (16 x 112^2): the fused kernel's range, where it is built."""
    model = _model(112, 16)
    x = torch.randn(1, 3, 16, 112, 112)
    with torch.no_grad():
        ref = _reference_tokens(model, x)
    with torch.inference_mode(), torch.profiler.profile() as prof:
        fast = model(x)
    scopes = {ev.name for ev in prof.events()}
    assert (cpu_fused_attention.PROFILER_SCOPE in scopes) == (
        cpu_fused_attention.fused_attention_available())
    assert fast.shape == (1, 392, 96) and ref.abs().max() > 1
    assert (fast - ref).abs().max().item() < 1e-5


def test_in_place_paths_are_bitwise_exact():
    """With BLAS linears, inference (in-place GELU / residual sums) equals the autograd path."""
    model = _model(init_values=0.1)
    x = torch.randn(1, 3, 4, 64, 64)
    with torch.no_grad():
        inference = model(x)
    graph = model(x.requires_grad_(True))
    assert graph.requires_grad
    assert torch.equal(inference, graph.detach())


def test_training_gradients_match_reference():
    """In-place residual sums keep autograd correct (layer scale, drop path in train mode)."""
    model = _model(init_values=0.1, drop_path_rate=0.2).train()
    x = torch.randn(2, 3, 4, 64, 64)
    grads = []
    for fn in (model, lambda v: _reference_with_drop_path(model, v)):
        model.zero_grad()
        torch.manual_seed(3)
        fn(x).square().mean().backward()
        grads.append(model.blocks[0].attn.qkv.weight.grad.clone())
    assert grads[0].abs().max() > 0
    assert torch.allclose(grads[0], grads[1], atol=1e-6, rtol=1e-5)


def _reference_with_drop_path(model, x):
    t = model.patch_embed.proj(x).flatten(2).transpose(1, 2) + model.pos_embed
    for blk in model.blocks:
        t = t + blk.drop_path(blk.gamma_1 * blk.attn(blk.norm1(t)))
        h = blk.mlp.fc2(blk.mlp.act(blk.mlp.fc1(blk.norm2(t))))
        t = t + blk.drop_path(blk.gamma_2 * h)
    return t


def test_token_stream_is_contiguous():
    model = _model()
    tokens = model.patch_embed(torch.randn(1, 3, 4, 64, 64))
    assert tokens.shape == (1, 2 * 4 * 4, 96) and tokens.is_contiguous()


def test_linears_are_modules_hooks_see():
    """The blocks call their own nn.Linear modules (LoRA / quantisation / hooks see them),
    plain or swapped for OneDNNLinear, which keeps the state dict."""
    model = _model()
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o, name=name: seen.append(name))
             for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    x = torch.randn(1, 3, 4, 64, 64)
    with torch.no_grad():
        before = model(x)
    assert seen[:4] == ['blocks.0.attn.qkv', 'blocks.0.attn.proj', 'blocks.0.mlp.fc1',
                        'blocks.0.mlp.fc2'] and len(seen) == 12
    keys = list(model.state_dict())
    if cpu_linear._AVAILABLE:
        optimize_for_cpu_inference(model, linears=True)
        seen.clear()
        with torch.no_grad():
            after = model(x)
        assert len(seen) == 12 and list(model.state_dict()) == keys
        assert (after - before).abs().max().item() < 1e-5
        assert optimize_for_cpu_inference(model, linears=False) == 12
        assert all(type(m) is torch.nn.Linear for m in model.modules()
                   if isinstance(m, torch.nn.Linear))
    for h in hooks:
        h.remove()
    with pytest.raises(ValueError, match='linears must be'):
        optimize_for_cpu_inference(model, linears='yes')


def test_cpu_linear_dispatch():
    x, w, b = torch.randn(2, 5, 8), torch.randn(6, 8), torch.randn(6)
    with torch.no_grad():
        assert cpu_linear.onednn_linear_active(x) == cpu_linear._AVAILABLE
        assert torch.allclose(cpu_linear.linear(x, w, b), F.linear(x, w, b), atol=1e-5)
        assert torch.allclose(cpu_linear.linear(x, w), F.linear(x, w), atol=1e-5)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            assert not cpu_linear.onednn_linear_active(x)  # autocast must cast to bf16
            assert cpu_linear.linear(x, w, b).dtype == torch.bfloat16
    w.requires_grad_(True)
    assert not cpu_linear.onednn_linear_active(x)  # gradients: F.linear (has a backward)
    cpu_linear.linear(x, w, b).sum().backward()
    assert torch.allclose(w.grad, x.reshape(-1, 8).sum(0).expand(6, 8))


def test_residual_add_exact_and_dtype_safe():
    x, branch = torch.randn(4, 3), torch.randn(4, 3)
    expected = x + branch
    out = residual_add(branch, x)
    assert out.data_ptr() == branch.data_ptr() and torch.equal(out, expected)
    low = torch.randn(4, 3).bfloat16()
    out = residual_add(low, x)  # a bf16 branch must not round the fp32 stream
    assert out.dtype == torch.float32 and torch.equal(out, x + low)
