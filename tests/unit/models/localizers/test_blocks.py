"""Masked 1-D blocks: masking, downsampling and local attention vs a dense reference."""
import math

import pytest
import torch
import torch.nn.functional as F

from vmae2_mm.models.localizers.blocks import (ChannelLayerNorm, ConvTransformerBlock,
                                               MaskedConv1D, MaskedMHCA)


def dense_local_attention(attn: MaskedMHCA, x, mask):
    """Reference: full T x T attention with keys limited to |i - j| <= w, masked keys -1e4,
    keys outside the sequence excluded, padded query rows zeroed (upstream semantics)."""
    q, qm = attn.query_conv(x, mask)
    k, km = attn.key_conv(x, mask)
    v, _ = attn.value_conv(x, mask)
    q = attn._heads(attn.query(attn.query_norm(q)))
    k = attn._heads(attn.key(attn.key_norm(k)))
    v = attn._heads(attn.value(attn.value_norm(v)))
    t = q.shape[2]
    att = (q * attn.scale) @ k.transpose(-2, -1)
    att = att + (~km[:, 0]).float()[:, None, None, :] * -1e4
    i = torch.arange(t)
    band = (i[:, None] - i[None, :]).abs() <= attn.window_overlap
    att = att.masked_fill(~band, float('-inf')).softmax(-1)
    att = att.masked_fill(~km[:, 0][:, None, :, None], 0.0)
    out = (att @ v).transpose(2, 3).reshape(x.shape[0], x.shape[1], -1)
    return attn.proj(out) * qm.float(), qm


@pytest.mark.parametrize('stride', [1, 2])
def test_local_attention_matches_dense_band_reference(stride):
    torch.manual_seed(0)
    attn = MaskedMHCA(16, 4, stride=stride, window_size=7).eval()
    x = torch.randn(2, 16, 24)
    mask = torch.ones(2, 1, 24, dtype=torch.bool)
    mask[1, :, 17:] = False
    x = x * mask
    out, om = attn(x, mask)
    ref, rm = dense_local_attention(attn, x, mask)
    assert out.shape == (2, 16, 24 // stride)
    assert torch.equal(om, rm)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    # padded steps stay exactly zero
    assert out[1, :, om[1, 0].logical_not()].abs().max() == 0


@pytest.mark.parametrize('window', [-1, 5])
def test_padding_does_not_change_valid_outputs(window):
    """A zero-padded, masked sequence gives the same outputs on its valid steps as the
    unpadded sequence (padded keys get no attention)."""
    torch.manual_seed(0)
    attn = MaskedMHCA(8, 2, window_size=window).eval()
    x = torch.randn(1, 8, 10)
    mask = torch.ones(1, 1, 20, dtype=torch.bool)
    mask[..., 10:] = False
    out_pad, _ = attn(F.pad(x, (0, 10)), mask)
    out, _ = attn(x, torch.ones(1, 1, 10, dtype=torch.bool))
    torch.testing.assert_close(out_pad[..., :10], out, rtol=1e-5, atol=1e-6)


def test_local_attention_rejects_bad_length():
    attn = MaskedMHCA(8, 2, window_size=7)
    with pytest.raises(ValueError, match='divisible by window_size // 2 = 3'):
        attn(torch.randn(1, 8, 10), torch.ones(1, 1, 10, dtype=torch.bool))


def test_masked_conv_downsamples_mask_nearest_and_zeroes_padding():
    conv = MaskedConv1D(4, 4, 3, stride=2)
    mask = torch.tensor([[[True] * 5 + [False] * 3]])
    out, om = conv(torch.randn(1, 4, 8), mask)
    assert om.tolist() == [[[True, True, True, False]]]
    assert out[..., 3].abs().max() == 0
    with pytest.raises(ValueError, match='not divisible by the conv stride 2'):
        conv(torch.randn(1, 4, 7), torch.ones(1, 1, 7, dtype=torch.bool))


def test_channel_layer_norm_matches_layer_norm_over_channels():
    ln = ChannelLayerNorm(6)
    with torch.no_grad():
        ln.weight.normal_()
        ln.bias.normal_()
    x = torch.randn(2, 6, 5)
    ref = F.layer_norm(x.transpose(1, 2), (6, ), ln.weight.view(6), ln.bias.view(6), 1e-5)
    torch.testing.assert_close(ln(x), ref.transpose(1, 2), rtol=1e-5, atol=1e-5)


def test_transformer_block_downsamples_and_has_affine_drop_path():
    blk = ConvTransformerBlock(16, 4, stride=2, window_size=5, drop_path=0.1).eval()
    assert blk.drop_path_attn.scale.shape == (1, 16, 1)
    assert torch.allclose(blk.drop_path_attn.scale, torch.full((1, 16, 1), 1e-4))
    x = torch.randn(1, 16, 16)
    out, om = blk(x, torch.ones(1, 1, 16, dtype=torch.bool))
    assert out.shape == (1, 16, 8) and om.all()
    # with the 1e-4 branch scale the block starts close to the max-pooled skip path
    skip = F.max_pool1d(x, 3, 2, 1)
    assert (out - skip).abs().max() < 1e-2
    no_dp = ConvTransformerBlock(16, 4, window_size=5, drop_path=0.0)
    assert not any('drop_path' in k for k in no_dp.state_dict())
    assert math.isclose(blk.attn.scale, 1 / math.sqrt(4))
