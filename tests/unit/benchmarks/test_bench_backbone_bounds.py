"""The informational breakdown in benchmarks/bench_backbone.py: the FLOP split and the
'attention at the linear layers' rate' ceiling on hand-computed figures, the per-layer attention
timings and the profiler attribution."""
import pytest

from tests.conftest import load_script


@pytest.fixture(scope='module')
def bench():
    return load_script('benchmarks/bench_backbone.py')


def test_split_flops_vit_s_16x224(bench):
    split = bench.split_flops(bench.ARCHS['small'], frames=16, size=224)
    n, d = 8 * 14 * 14, 384  # 1568 tokens
    # per layer: qkv 3d^2, proj d^2, mlp 2 * 4d^2 multiply-adds per token; q k^T and attn v
    assert split['linear'] == 12 * 2 * n * 12 * d * d
    assert split['attention'] == 12 * 4 * n * n * d
    assert split['attention'] / 12 / 1e9 == pytest.approx(3.776, abs=1e-3)


def test_attention_ceiling_time(bench):
    # linears: 10 GFLOP in 1 s; attention: 10 GFLOP in 2 s; other 0.5 s
    parts = dict(linear=1.0, attention=2.0, other=0.5)
    split = dict(linear=10e9, attention=10e9)
    assert bench.attention_ceiling_time(parts, split) == pytest.approx(2.5)
    # half the linear FLOPs per second: attention's 10 GFLOP would take 2 s too
    assert bench.attention_ceiling_time(dict(parts, linear=2.0), split) == pytest.approx(4.5)


def test_attention_layer_times_every_implementation(bench):
    from vmae2_mm.ops.cpu.fused_attention import fused_attention_available
    times = bench.attention_layer_times(bench.ARCHS['small'], frames=2, size=64, repeats=1)
    expected = {'sdpa', 'onednn', 'onednn_products', 'sdpa_bf16'} | (
        {'fused', 'fused_bf16'} if fused_attention_available() else set())
    assert set(times) == expected and all(t > 0 for t in times.values())


@pytest.mark.parametrize('path', ['fused', 'onednn'])
def test_profile_counts_our_attention_as_attention(bench, path):
    """Our attention kernels count as attention; the oneDNN attention's products are oneDNN
    linear calls and must not count as linear layers."""
    import torch

    from vmae2_mm.ops.cpu import fused_attention as cpu_fused_attention
    from vmae2_mm.ops.cpu import onednn_linear as cpu_linear
    from vmae2_mm.models.backbones.vit_videomaev2 import VideoMAEv2ViT
    if path == 'onednn' and not cpu_linear._AVAILABLE:
        pytest.skip('torch built without oneDNN')
    if path == 'fused' and not cpu_fused_attention.fused_attention_available():
        pytest.skip(cpu_fused_attention.fused_attention_unavailable_reason())
    # 16 x 112^2 = 392 tokens: long enough for both kernels
    from vmae2_mm.ops.cpu import optimize_for_cpu_inference
    model = VideoMAEv2ViT(arch=dict(bench.ARCHS['small'], depth=1), img_size=112, num_frames=16,
                          out_type='tokens',
                          attn_impl='cpu_fused' if path == 'fused' else 'onednn').eval()
    if path == 'onednn':
        optimize_for_cpu_inference(model, linears=True)
    manual_model = VideoMAEv2ViT(arch=dict(bench.ARCHS['small'], depth=1), img_size=112,
                                 num_frames=16, out_type='tokens', attn_impl='manual').eval()
    with torch.inference_mode():
        x = torch.randn(1, 3, 16, 112, 112)
        parts = bench.profile_parts(model, x)
        manual = bench.profile_parts(manual_model, x)  # same FLOPs, no attention scope
    assert parts['attention'] > 0 and parts['linear'] > 0
    assert manual['attention'] == 0
