"""VideoMAEv2ViT: released dimensions, outputs, numerics of its parts, config validation."""
import numpy as np
import pytest
import torch

from vmae2_mm.models.backbones import ARCH_SETTINGS, VideoMAEv2ViT
from vmae2_mm.utils.pos_embed import resize_pos_table, sinusoid_table

# (patch, dims, depth, heads, mlp hidden, params without head) of the released models
RELEASED = {
    'small': (16, 384, 12, 6, 1536, 21.88e6),
    'base': (16, 768, 12, 12, 3072, 86.23e6),
    'large': (16, 1024, 24, 16, 4096, 303.86e6),
    'huge': (16, 1280, 32, 16, 5120, 631.61e6),
    'giant': (14, 1408, 40, 16, 6144, 1011.61e6),
}


@pytest.mark.parametrize('arch', list(RELEASED))
def test_released_dimensions_and_parameter_count(arch):
    patch, dims, depth, heads, hidden, params = RELEASED[arch]
    with torch.device('meta'):
        model = VideoMAEv2ViT(arch)
    assert (model.patch_size, model.embed_dims, model.depth, model.num_heads) == (
        patch, dims, depth, heads)
    assert model.blocks[0].mlp.fc1.out_features == hidden
    assert model.blocks[0].attn.head_dims == dims // heads
    assert model.patch_embed.proj.kernel_size == (2, patch, patch)
    n = sum(p.numel() for p in model.parameters())
    assert abs(n - params) < 0.005e6, n
    assert model.grid == (8, 224 // patch, 224 // patch)
    assert model.pos_embed.shape == (1, 8 * (224 // patch)**2, dims)


@pytest.mark.parametrize('arch', list(ARCH_SETTINGS))
def test_outputs_of_every_arch_at_depth_one(arch):
    settings = dict(ARCH_SETTINGS[arch], depth=1)
    p, c = settings['patch_size'], settings['embed_dims']
    x = torch.randn(2, 3, 4, 2 * p, 3 * p)  # T'=2, H'=2, W'=3 (non-square, != img_size)
    model = VideoMAEv2ViT(settings, img_size=2 * p, num_frames=4).eval()
    with torch.no_grad():
        pooled = model(x)
        model.out_type = 'tokens'
        tokens = model(x)
        model.out_type = 'featmap'
        fmap = model(x)
    assert pooled.shape == (2, c)
    assert tokens.shape == (2, 12, c)
    assert fmap.shape == (2, c, 2, 2, 3)
    # featmap is the token sequence laid out on its (t, h, w) raster grid
    torch.testing.assert_close(fmap.flatten(2).transpose(1, 2), tokens)
    torch.testing.assert_close(pooled, model.fc_norm(tokens.mean(1)))


def test_sinusoid_table_is_the_float64_formula():
    n, c = 50, 12
    table = sinusoid_table(n, c)[0].double()
    pos = np.arange(n)[:, None]
    j = np.arange(c)[None, :]
    angle = pos / np.power(10000, 2 * (j // 2) / c)
    want = np.where(j % 2 == 0, np.sin(angle), np.cos(angle))
    assert np.abs(table.numpy() - want).max() < 1e-7
    assert table.dtype == torch.float64 and sinusoid_table(n, c).dtype == torch.float32


def test_pos_table_resize_identity_and_shapes():
    table = sinusoid_table(8 * 14 * 14, 16)
    assert resize_pos_table(table, (8, 14, 14), (8, 14, 14)) is table
    assert resize_pos_table(table, (8, 14, 14), (4, 7, 10)).shape == (1, 4 * 7 * 10, 16)
    # resizing the 16x224 table happens only when asked for
    model = VideoMAEv2ViT(dict(embed_dims=16, depth=1, num_heads=2), img_size=112, num_frames=8,
                          pos_embed_grid_from=(16, 224))
    torch.testing.assert_close(model.pos_embed,
                               resize_pos_table(table, (8, 14, 14), (4, 7, 7)))


@pytest.mark.parametrize('frames,size', [(16, 112), (16, 160), (8, 112), (16, 224)])
def test_default_pos_table_is_native(frames, size):
    """Official fine-tuning at 16x112 / 16x160 ends up with the table built natively for the
    new grid (videomaev2.md 3.4 step 5), as the official model and HF build it: the default."""
    model = VideoMAEv2ViT(dict(embed_dims=16, depth=1, num_heads=2), img_size=size,
                          num_frames=frames)
    grid = (frames // 2, size // 16, size // 16)
    assert model.grid == grid
    assert torch.equal(model.pos_embed, sinusoid_table(grid[0] * grid[1] * grid[2], 16))


def test_pos_embed_not_in_state_dict():
    model = VideoMAEv2ViT(dict(embed_dims=16, depth=1, num_heads=2), img_size=32, num_frames=4)
    keys = set(model.state_dict())
    assert 'pos_embed' not in keys
    assert {'patch_embed.proj.weight', 'blocks.0.attn.qkv.weight', 'blocks.0.attn.q_bias',
            'blocks.0.attn.v_bias', 'blocks.0.mlp.fc1.weight', 'fc_norm.weight'} <= keys
    assert not any(k.startswith('norm.') or 'gamma' in k for k in keys)


def test_k_has_no_bias():
    model = VideoMAEv2ViT(dict(embed_dims=8, depth=1, num_heads=2), img_size=16, num_frames=2)
    attn = model.blocks[0].attn
    with torch.no_grad():
        attn.q_bias.fill_(1.0)
        attn.v_bias.fill_(2.0)
    x = torch.randn(1, 3, 8)
    captured = {}
    handle = attn.register_forward_hook(lambda m, i, o: captured.setdefault('in', i[0]))
    model.blocks[0](x)
    handle.remove()
    qkv = torch.nn.functional.linear(captured['in'], attn.qkv.weight)
    # the bias added is (q_bias, 0, v_bias)
    bias = torch.cat([attn.q_bias, torch.zeros(8), attn.v_bias])
    assert torch.equal(bias[8:16], torch.zeros(8))
    assert qkv.shape[-1] == 24


def test_sdpa_matches_manual_attention():
    torch.manual_seed(0)
    kw = dict(arch=dict(embed_dims=48, depth=2, num_heads=3), img_size=32, num_frames=4)
    sdpa = VideoMAEv2ViT(attn_impl='sdpa', **kw).eval()
    manual = VideoMAEv2ViT(attn_impl='manual', **kw).eval()
    manual.load_state_dict(sdpa.state_dict())
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(sdpa(x), manual(x), atol=1e-5, rtol=1e-5)


def test_visible_tokens_only_see_visible_cubes():
    torch.manual_seed(0)
    model = VideoMAEv2ViT(dict(embed_dims=32, depth=2, num_heads=2), img_size=32, num_frames=4,
                          use_mean_pooling=False, out_type='tokens').eval()
    x = torch.randn(2, 3, 4, 32, 32)
    hidden = torch.zeros(2, 8, dtype=torch.bool)  # grid 2x2x2
    hidden[:, [1, 2, 5, 6]] = True
    with torch.no_grad():
        out = model(x, hidden)
        x2 = x.clone()
        x2[:, :, 0:2, 0:16, 16:32] += 5.0  # cube (t=0, h=0, w=1) = token 1, hidden
        out2 = model(x2, hidden)
        x3 = x.clone()
        x3[:, :, 0:2, 0:16, 0:16] += 5.0  # token 0, visible
        out3 = model(x3, hidden)
    assert out.shape == (2, 4, 32)
    torch.testing.assert_close(out, out2)
    assert not torch.allclose(out, out3)
    with pytest.raises(ValueError, match='enc_hidden'):
        model(x, hidden[:, :4])


def test_activation_checkpointing_same_gradients():
    torch.manual_seed(0)
    kw = dict(arch=dict(embed_dims=32, depth=2, num_heads=2), img_size=32, num_frames=4)
    plain = VideoMAEv2ViT(**kw)
    ckpt = VideoMAEv2ViT(with_cp=True, **kw)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 4, 32, 32)
    plain(x).sum().backward()
    ckpt(x).sum().backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), ckpt.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_layer_scale_and_drop_path():
    model = VideoMAEv2ViT(dict(embed_dims=16, depth=3, num_heads=2), img_size=16, num_frames=2,
                          init_values=0.1, drop_path_rate=0.2)
    assert torch.allclose(model.blocks[0].gamma_1, torch.full((16,), 0.1))
    rates = [getattr(b.drop_path, 'drop_prob', 0.0) for b in model.blocks]
    assert rates == pytest.approx([0.0, 0.1, 0.2])


@pytest.mark.parametrize('kwargs, match', [
    (dict(arch='tiny'), 'arch must be one of'),
    (dict(arch='small', img_size=100), 'img_size=100'),
    (dict(arch='small', num_frames=15), 'num_frames=15'),
    (dict(arch=dict(embed_dims=30, depth=1, num_heads=4)), 'divisible by num_heads'),
    (dict(arch=dict(embed_dims=32, depth=1)), 'lacks'),
    (dict(arch=dict(embed_dims=32, depth=1, num_heads=2, mlp=3)), 'unknown keys'),
    (dict(arch='small', out_type='map'), 'out_type'),
    (dict(arch='small', attn_impl='flash'), 'attn_impl'),
    (dict(arch='small', drop_path_rate=1.5), 'drop_path_rate'),
])
def test_config_validation_at_build_time(kwargs, match):
    with pytest.raises(ValueError, match=match):
        with torch.device('meta'):
            VideoMAEv2ViT(**kwargs)


def test_input_that_does_not_tile_is_reported():
    model = VideoMAEv2ViT(dict(embed_dims=16, depth=1, num_heads=2), img_size=32, num_frames=4)
    with pytest.raises(ValueError, match='does not tile'):
        model(torch.randn(1, 3, 3, 32, 32))


def test_registered_and_built_from_config():
    import vmae2_mm  # noqa: F401
    from mmaction.registry import MODELS
    model = MODELS.build(dict(type='VideoMAEv2ViT', arch=dict(embed_dims=16, depth=1,
                                                             num_heads=2),
                              img_size=32, num_frames=4))
    assert isinstance(model, VideoMAEv2ViT)
