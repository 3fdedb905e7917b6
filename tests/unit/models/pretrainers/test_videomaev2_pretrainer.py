"""VideoMAEv2Pretrainer: HF parity, dual-masking loss semantics, targets, decoder sizes, AMP."""
import numpy as np
import pytest
import torch

import vmae2_mm  # noqa: F401
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from vmae2_mm.datasets.transforms.masking import RunningCellMasking, TubeMasking
from vmae2_mm.models.pretrainers import VideoMAEv2Pretrainer, patchify, pixel_targets
from vmae2_mm.checkpoint.pretrain import official_to_hf_pretrain

TINY = dict(encoder=dict(arch=dict(embed_dims=64, depth=2, num_heads=2), img_size=64,
                         num_frames=4),
            decoder=dict(embed_dims=32, num_heads=2, depth=2))
GRID = (2, 4, 4)


def perturb(model, seed=0):
    """Random non-trivial values for every parameter (biases and norms included)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith('weight') and p.dim() == 1:
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.add_(0.05 * torch.randn(p.shape, generator=g))


def make_batch(b=2, enc_ratio=0.75, dec_ratio=None, seed=0, t=4, size=64, grid=GRID):
    tm = TubeMasking(grid, enc_ratio, seed=seed)
    rc = RunningCellMasking(grid, dec_ratio, seed=seed + 1) if dec_ratio is not None else None
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(b):
        r = tm({})
        if rc is not None:
            r = rc(r)
        ds = ActionDataSample()
        for k in ('enc_hidden', 'dec_kept'):
            if k in r:
                ds.set_field(r[k], k)
        samples.append(ds)
        inputs.append(torch.randint(0, 256, (1, 3, t, size, size), generator=g,
                                    dtype=torch.uint8))
    return dict(inputs=inputs, data_samples=samples)


def build_tiny(**kw):
    cfg = dict(TINY)
    cfg.update(kw)
    return VideoMAEv2Pretrainer(**cfg)


def hf_twin(model):
    """HF VideoMAEForPreTraining with the same weights (official eps 1e-6, no mean pooling)."""
    transformers = pytest.importorskip('transformers')
    enc, dec = model.encoder, model.decoder
    cfg = transformers.VideoMAEConfig(
        image_size=enc.img_size, patch_size=enc.patch_size, num_channels=3,
        num_frames=enc.num_frames, tubelet_size=enc.tubelet_size, hidden_size=enc.embed_dims,
        num_hidden_layers=enc.depth, num_attention_heads=enc.num_heads,
        intermediate_size=enc.arch['mlp_hidden_dims'], hidden_act='gelu',
        hidden_dropout_prob=0., attention_probs_dropout_prob=0., layer_norm_eps=1e-6,
        qkv_bias=True, use_mean_pooling=False, decoder_num_attention_heads=2,
        decoder_hidden_size=dec.embed_dims, decoder_num_hidden_layers=len(dec.blocks),
        decoder_intermediate_size=dec.blocks[0].mlp.fc1.out_features, norm_pix_loss=True,
        attn_implementation='eager')
    hf = transformers.VideoMAEForPreTraining(cfg).eval()
    hf.decoder.norm.eps = 1e-6  # HF ignores the config eps here
    missing, unexpected = hf.load_state_dict(official_to_hf_pretrain(model.state_dict()),
                                             strict=False)
    assert not unexpected, unexpected
    assert all('key.bias' in k for k in missing), missing
    return hf


def test_hf_parity_without_decoder_masking():
    torch.manual_seed(0)
    model = build_tiny().eval()
    perturb(model)
    hf = hf_twin(model)
    data = model.data_preprocessor(make_batch(b=2), False)
    inputs = data['inputs'][:, 0]
    enc_hidden = torch.stack([torch.as_tensor(d.enc_hidden) for d in data['data_samples']])
    with torch.no_grad():
        ours = model(**data, mode='tensor')
        loss = model(**data, mode='loss')['loss']
        out = hf(inputs.permute(0, 2, 1, 3, 4), bool_masked_pos=enc_hidden)
    assert ours.shape == out.logits.shape == (2, 24, 3 * 2 * 16 * 16)
    assert torch.allclose(ours, out.logits, atol=1e-5, rtol=0)
    assert abs(loss.item() - out.loss.item()) < 1e-5


def test_dual_mask_loss_counts_only_hidden_and_kept_tokens():
    torch.manual_seed(0)
    model = build_tiny(encoder=dict(TINY['encoder'], num_frames=8)).eval()
    grid = (4, 4, 4)
    data = model.data_preprocessor(
        make_batch(b=2, enc_ratio=0.75, dec_ratio=0.5, t=8, grid=grid), False)
    enc_hidden = torch.stack([torch.as_tensor(d.enc_hidden) for d in data['data_samples']])
    dec_kept = torch.stack([torch.as_tensor(d.dec_kept) for d in data['data_samples']])
    with torch.no_grad():
        pred = model(**data, mode='tensor')
        loss = model(**data, mode='loss')['loss']
        samples = model(**data, mode='predict')
    # half of 64 positions kept; each of the 4 visible tube positions is kept in 2 of 4 slices
    assert pred.shape == (2, 32, 1536)
    pre = model.data_preprocessor
    target = pixel_targets((data['inputs'][:, 0] * pre.std + pre.mean) / 255, 16)
    per_tok = (pred - target[dec_kept].reshape(2, 32, -1)).pow(2).mean(-1)
    w = enc_hidden[dec_kept].reshape(2, 32)
    assert w.sum(1).tolist() == [32 - 8, 32 - 8]
    assert torch.allclose(loss, (per_tok * w).sum() / w.sum(), atol=1e-6)
    # encoder-visible kept tokens are excluded: their error must not move the loss
    assert not torch.allclose(loss, per_tok.mean(), atol=1e-4)
    assert samples[0].pred_pixels.shape == (32, 1536)
    assert int(samples[0].loss_mask.sum()) == 24
    expect0 = (per_tok[0] * w[0]).sum() / w[0].sum()
    assert torch.allclose(samples[0].recon_loss, expect0, atol=1e-6)


def test_official_token_counts_base_and_giant():
    for grid, vis, kept, loss_tokens in (((8, 14, 14), 160, 784, 704),
                                         ((8, 16, 16), 208, 1024, 920)):
        tm, rc = TubeMasking(grid, 0.9), RunningCellMasking(grid, 0.5)
        for _ in range(5):
            r = rc(tm({}))
            assert (~r['enc_hidden']).sum() == vis
            assert r['dec_kept'].sum() == kept
            assert (r['dec_kept'] & r['enc_hidden']).sum() == loss_tokens
            assert vis + kept in (944, 1232)


def test_targets_match_hand_computed_layout():
    v = torch.arange(3 * 4 * 4 * 4, dtype=torch.float64).reshape(1, 3, 4, 4, 4)
    v = v.sin() + 0.5
    cubes = patchify(v, 2, 2)  # [1, N=2*2*2, 8, 3]
    assert cubes.shape == (1, 8, 8, 3)
    # token (t'=1, h'=0, w'=1) -> index 1*4 + 0*2 + 1 = 5; pixel (t=1, h=1, w=0) -> 1*4+1*2+0 = 6
    assert cubes[0, 5, 6, 2] == v[0, 2, 3, 1, 2]
    tgt = pixel_targets(v, 2, 2)
    x = cubes[0, 5, :, 1]
    expect = (x - x.mean()) / (x.std(unbiased=True) + 1e-6)
    assert torch.allclose(tgt[0, 5].reshape(8, 3)[:, 1], expect)
    assert torch.allclose(pixel_targets(v, 2, 2, normalize=False), cubes.flatten(2))


@pytest.mark.parametrize('arch,dims,heads,mlp,out', [
    ('small', 192, 3, 768, 1536), ('base', 384, 6, 1536, 1536),
    ('large', 512, 8, 2048, 1536), ('huge', 512, 8, 2048, 1536), ('giant', 512, 8, 2234, 1176)])
def test_official_decoder_sizes(arch, dims, heads, mlp, out):
    from vmae2_mm.models.backbones import ARCH_SETTINGS
    from vmae2_mm.models.pretrainers.decoder import decoder_settings
    a = ARCH_SETTINGS[arch]
    cfg = decoder_settings(arch, a['embed_dims'], a['mlp_hidden_dims'], None)
    assert (cfg['embed_dims'], cfg['num_heads'], cfg['mlp_hidden_dims'], cfg['depth']) == \
        (dims, heads, mlp, 4)
    assert 3 * 2 * a['patch_size']**2 == out


def test_small_pretrainer_matches_official_parameter_counts():
    model = VideoMAEv2Pretrainer(encoder=dict(arch='small'))
    enc = sum(p.numel() for p in model.encoder.parameters())
    dec = sum(p.numel() for n, p in model.named_parameters() if not n.startswith('encoder.'))
    # official: encoder 21.88M (incl. final norm), decoder side 2.08M (+ projector, mask token)
    assert round(enc / 1e6, 2) == 21.88
    assert round((dec - model.encoder_to_decoder.weight.numel() - 192) / 1e6, 2) == 2.08
    assert model.decoder.head.out_features == 1536
    # official pretrain init: mask token cut at +-std, projector at PyTorch default bound
    assert model.mask_token.abs().max() <= 0.02
    assert model.encoder_to_decoder.weight.abs().max() <= 1 / 384**0.5
    qkv = model.encoder.blocks[0].attn.qkv.weight
    assert qkv.abs().max() <= (6 / (384 + 3 * 384))**0.5 + 1e-6
    assert qkv.abs().max() > 0.9 * (6 / (384 + 3 * 384))**0.5


def test_build_errors_name_the_field():
    with pytest.raises(ValueError, match='use_mean_pooling'):
        VideoMAEv2Pretrainer(encoder=dict(arch='small', use_mean_pooling=True))
    with pytest.raises(ValueError, match='decoder config lacks'):
        VideoMAEv2Pretrainer(encoder=dict(arch=dict(embed_dims=64, depth=1, num_heads=2)))
    with pytest.raises(ValueError, match='pixel_max'):
        build_tiny(pixel_max=0)
    model = build_tiny()
    data = model.data_preprocessor(make_batch(b=1), False)
    del data['data_samples'][0].enc_hidden
    with pytest.raises(KeyError, match='TubeMasking'):
        model(**data, mode='loss')
    data = model.data_preprocessor(make_batch(b=1, grid=(2, 2, 2)), False)
    with pytest.raises(ValueError, match='check the masking grid'):
        model(**data, mode='loss')


def test_non_finite_loss_raises_floating_point_error():
    model = build_tiny()
    with torch.no_grad():
        model.decoder.head.bias.fill_(float('nan'))
    data = model.data_preprocessor(make_batch(b=1), True)
    with pytest.raises(FloatingPointError, match='non-finite reconstruction loss'):
        model(**data, mode='loss')


def test_fp32_decoder_under_bf16_autocast():
    torch.manual_seed(0)
    model = build_tiny(fp32_decoder=True)
    data = model.data_preprocessor(make_batch(b=2, dec_ratio=0.5), True)
    ref = model(**data, mode='loss')['loss']
    with torch.autocast('cpu', dtype=torch.bfloat16):
        pred = model(**data, mode='tensor')
        loss = model(**data, mode='loss')['loss']
    assert pred.dtype == torch.float32 and loss.dtype == torch.float32
    assert abs(loss.item() - ref.item()) < 0.05 * ref.item()
    loss.backward()
    assert model.encoder.blocks[0].attn.qkv.weight.grad is not None
    model_mixed = build_tiny(fp32_decoder=False)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert model_mixed(**data, mode='tensor').dtype == torch.bfloat16


def test_registered_and_builds_from_config():
    model = MODELS.build(dict(type='VideoMAEv2Pretrainer', **TINY))
    assert isinstance(model, VideoMAEv2Pretrainer)
    assert np.prod(model.encoder.grid) == model.decoder_pos_embed.shape[1] == 32


def test_giant_decoder_parameter_count_matches_official():
    from vmae2_mm.models.pretrainers import VideoMAEv2Decoder
    dec = VideoMAEv2Decoder(embed_dims=512, num_heads=8, mlp_hidden_dims=2234, out_dims=1176)
    assert round(sum(p.numel() for p in dec.parameters()) / 1e6, 2) == 13.97


def test_visible_only_embedding_equals_conv_embedding_then_drop():
    """The encoder embeds only the visible cubes (linear map per cube); the official model
    embeds every cube with its Conv3d and then drops the hidden tokens."""
    torch.manual_seed(0)
    model = build_tiny().eval()
    perturb(model)
    data = model.data_preprocessor(make_batch(b=2, enc_ratio=0.75), False)
    inputs = data['inputs'][:, 0]
    enc_hidden = torch.stack([torch.as_tensor(d.enc_hidden) for d in data['data_samples']])
    enc = model.encoder
    with torch.no_grad():
        ours = enc.forward_tokens(inputs, enc_hidden)
        x = enc.patch_embed(inputs) + enc.pos_embed
        x = x[~enc_hidden].reshape(2, -1, x.shape[-1])
        for blk in enc.blocks:
            x = blk(x)
        ref = enc.norm(x)
    assert ours.shape == ref.shape == (2, 8, 64)
    assert torch.allclose(ours, ref, atol=1e-5, rtol=0)


def test_normalisation_statistics_are_explicit_and_checked():
    """The targets undo exactly the statistics given (or the preprocessor config's), and a
    mismatch between the two is refused at build time."""
    default = build_tiny()
    assert default.input_mean.tolist() == pytest.approx([123.675, 116.28, 103.53])
    assert default.input_std.tolist() == pytest.approx([58.395, 57.12, 57.375])
    raw_pre = dict(type='ActionDataPreprocessor', format_shape='NCTHW')
    raw = build_tiny(data_preprocessor=raw_pre)
    assert raw.input_mean is None and raw.input_std is None
    torch.manual_seed(0)
    video = torch.randint(0, 256, (1, 3, 4, 64, 64)).float()
    # un-normalised inputs: the target is the pixels / 255, per-cube normalised
    expected = pixel_targets(video / 255, 16)
    assert torch.allclose(raw.targets(video), expected, atol=1e-5)
    normed = (video - default.input_mean.view(1, 3, 1, 1, 1)) / default.input_std.view(
        1, 3, 1, 1, 1)
    assert torch.allclose(default.targets(normed), expected, atol=1e-4)
    with pytest.raises(ValueError, match='differ from the data_preprocessor'):
        build_tiny(input_mean=[0., 0., 0.], input_std=[1., 1., 1.])
    with pytest.raises(ValueError, match='both input_mean and input_std'):
        build_tiny(input_mean=[0., 0., 0.])
    explicit = build_tiny(data_preprocessor=raw_pre, input_mean=[10., 20., 30.],
                          input_std=[2., 2., 2.])
    assert explicit.input_mean.tolist() == [10., 20., 30.]
