"""tools/analysis/vit_memory_plan.py: the activation formula against autograd's saved tensors.

The bytes autograd keeps for backward are measured exactly (and device-independently) with
``torch.autograd.graph.saved_tensors_hooks`` on the real ``VideoMAEv2Pretrainer``: every saved
tensor's storage is counted once, parameter storages are skipped, and the per-clip figure is the
difference between batch 3 and batch 2 (which removes batch-independent tensors such as
autocast's bf16 weight copies).
"""
import pytest
import torch
from mmaction.structures import ActionDataSample

from tools.analysis import vit_memory_plan as vmp
from vmae2_mm.datasets.transforms.masking import RunningCellMasking, TubeMasking
from vmae2_mm.models.pretrainers import VideoMAEv2Pretrainer

ARCH = dict(embed_dims=64, depth=2, num_heads=4, mlp_hidden_dims=256, patch_size=16)
DECODER = dict(embed_dims=32, num_heads=2, depth=2)
FRAMES, SIZE = 16, 64          # grid 8 x 4 x 4 = 128 tokens
GRID = (FRAMES // 2, SIZE // 16, SIZE // 16)


def build(attn, with_cp):
    torch.manual_seed(0)
    return VideoMAEv2Pretrainer(
        encoder=dict(arch=ARCH, img_size=SIZE, num_frames=FRAMES, attn_impl=attn,
                     with_cp=with_cp),
        decoder=dict(DECODER, attn_impl=attn, with_cp=with_cp)).train()


def batch(model, b, dual):
    tube, cell = TubeMasking(GRID, 0.9, seed=0), RunningCellMasking(GRID, 0.5, seed=1)
    samples = []
    for _ in range(b):
        r = tube({})
        if dual:
            r = cell(r)
        ds = ActionDataSample()
        ds.set_field(r['enc_hidden'], 'enc_hidden')
        if 'dec_kept' in r:
            ds.set_field(r['dec_kept'], 'dec_kept')
        samples.append(ds)
    g = torch.Generator().manual_seed(b)
    inputs = [torch.randint(0, 256, (1, 3, FRAMES, SIZE, SIZE), generator=g, dtype=torch.uint8)
              for _ in range(b)]
    return model.data_preprocessor(dict(inputs=inputs, data_samples=samples), True)


def saved_bytes(model, data, bf16):
    """Bytes of the distinct non-parameter storages saved for backward by one training step."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in params:
            storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), \
            torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
        loss = model(**data, mode='loss')['loss']
    total = sum(storages.values())  # all saved tensors are alive here
    loss.backward()
    return total


def measured_per_clip(attn, with_cp, dual, bf16):
    model = build(attn, with_cp)
    return (saved_bytes(model, batch(model, 3, dual), bf16)
            - saved_bytes(model, batch(model, 2, dual), bf16))


@pytest.mark.parametrize('policy', ['cpu_bf16', 'fp32'])
@pytest.mark.parametrize('attn', ['sdpa', 'manual'])
@pytest.mark.parametrize('dual', [True, False], ids=['dual', 'encoder-only'])
@pytest.mark.parametrize('with_cp', [False, True], ids=['no-cp', 'cp'])
def test_activation_formula_matches_saved_tensors(policy, attn, dual, with_cp):
    dims = vmp.Dims.from_arch(ARCH, DECODER)
    tokens = vmp.token_counts(dims, FRAMES, SIZE, dual=dual)
    predicted = vmp.saved_activation_bytes(dims, tokens, attn, policy, with_cp)['total']
    measured = measured_per_clip(attn, with_cp, dual, bf16=policy == 'cpu_bf16')
    assert measured > 0
    assert abs(predicted - measured) <= 0.05 * measured, (predicted, measured)


def test_checkpointing_and_dual_masking_reduce_measured_bytes():
    full = measured_per_clip('sdpa', False, False, True)
    assert measured_per_clip('sdpa', True, False, True) < full
    assert measured_per_clip('sdpa', False, True, True) < full


def test_token_counts_match_the_masking_transforms():
    dims = vmp.Dims.from_arch(ARCH, DECODER)
    r = RunningCellMasking(GRID, 0.5, seed=1)(TubeMasking(GRID, 0.9, seed=0)({}))
    dual = vmp.token_counts(dims, FRAMES, SIZE, dual=True)
    assert (dual.total, dual.visible, dual.kept) == (
        r['enc_hidden'].size, int((~r['enc_hidden']).sum()), int(r['dec_kept'].sum()))
    enc_only = vmp.token_counts(dims, FRAMES, SIZE, dual=False)
    assert enc_only.kept == int(r['enc_hidden'].sum())
    # giant at 16x224^2 (reference token table): 208 visible, 1024 kept, decoder input 1232
    g = vmp.token_counts(vmp.Dims.from_arch('giant'), 16, 224, dual=True)
    assert (g.total, g.visible, g.kept, g.decoder_len) == (2048, 208, 1024, 1232)


@pytest.mark.parametrize('arch', [ARCH, 'giant'])
def test_param_counts_match_the_model(arch):
    decoder = DECODER if isinstance(arch, dict) else None
    with torch.device('meta'):  # giant: shapes only, no 4 GB of weights
        model = VideoMAEv2Pretrainer(encoder=dict(arch=arch), decoder=decoder)
    counts = vmp.param_counts(vmp.Dims.from_arch(arch, decoder))
    assert counts['encoder'] == sum(p.numel() for p in model.encoder.parameters())
    assert counts['decoder'] == sum(p.numel() for p in model.decoder.parameters())
    assert counts['total'] == sum(p.numel() for p in model.parameters())


def test_giant_plan_reproduces_paper_flops_and_prints_tables(capsys):
    plan = vmp.main(['--arch', 'giant', '--gpus', '64'])
    out = capsys.readouterr().out
    assert '| dual / encoder-only |' in out and 'max clips per 80 GB GPU' in out
    assert plan['params']['total'] == pytest.approx(1026.31e6, rel=1e-4)
    macs = {m: plan['masking'][m]['macs']['total'] / 1e9 for m in ('encoder-only', 'dual')}
    assert macs['encoder-only'] == pytest.approx(263.93, rel=0.01)   # paper Table 2
    assert macs['dual'] == pytest.approx(241.61, rel=0.01)
    # DDP keeps 18 bytes/param; fully sharded states shrink with N
    assert sum(plan['states'][('ddp', 64)].values()) == pytest.approx(18 * 1026.31e6, rel=1e-4)
    states = {s: sum(plan['states'][(s, 64)].values()) for s in vmp.STRATEGIES}
    assert states['zero3'] < states['zero2'] < states['ddp']
    for cp in (False, True):
        clips = {m: plan['clips'][('fsdp', 64, m, cp)] for m in ('dual', 'encoder-only')}
        assert clips['dual'] > clips['encoder-only'] > 0
    # the official explicit-softmax formulation under CUDA AMP lands near the paper's Table 2
    manual = {m: plan['masking'][m]['manual']['total'] / 1e6 for m in ('encoder-only', 'dual')}
    assert manual['encoder-only'] == pytest.approx(1753, rel=0.2)
    assert manual['dual'] == pytest.approx(1050, rel=0.2)
    assert manual['dual'] / manual['encoder-only'] == pytest.approx(1050 / 1753, abs=0.05)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match='attn'):
        vmp.block_saved_bytes(10, 64, 4, 256, attn='flash3')
    with pytest.raises(ValueError, match='strategy'):
        vmp.state_bytes(10, 'zero9', 8)
    with pytest.raises(SystemExit):
        vmp.main(['--usable', '1.5'])
