"""Official ActionFormer checkpoint layout <-> ours."""
import sys
from pathlib import Path

import pytest
import torch

import vmae2_mm  # noqa: F401
from vmae2_mm.checkpoint.actionformer import (load_actionformer_checkpoint,
                                                    official_to_ours, ours_to_official)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'models' / 'localizers'))
from conftest import tiny_actionformer_cfg  # noqa: E402


@pytest.fixture(autouse=True)
def single_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _build(seed):
    from mmaction.registry import MODELS
    torch.manual_seed(seed)
    return MODELS.build(tiny_actionformer_cfg()).eval()


def test_official_key_names():
    sd = ours_to_official(_build(0).state_dict())
    for key in ('backbone.embd.0.conv.weight', 'backbone.embd_norm.0.weight',
                'backbone.stem.0.ln1.weight', 'backbone.branch.4.ln2.bias',
                'backbone.stem.1.mlp.0.weight', 'backbone.branch.0.mlp.3.bias',
                'backbone.branch.0.attn.query_conv.conv.weight',
                'backbone.stem.0.attn.key_norm.weight', 'backbone.stem.0.attn.value.weight',
                'backbone.stem.0.attn.proj.bias', 'backbone.stem.0.drop_path_attn.scale',
                'neck.fpn_norms.5.weight', 'cls_head.head.1.conv.weight', 'cls_head.norm.0.bias',
                'cls_head.cls_head.conv.bias', 'reg_head.head.0.conv.weight',
                'reg_head.offset_head.conv.weight', 'reg_head.scale.5.scale'):
        assert key in sd, key
    assert 'head.loss_normalizer' not in sd
    assert official_to_ours({'module.' + k: v for k, v in sd.items()}).keys() == \
        set(_build(0).state_dict()) - {'head.loss_normalizer'}


def test_official_checkpoint_loads_with_equal_outputs(tmp_path):
    src = _build(0)
    with torch.no_grad():                  # make the EMA copy differ from the raw weights
        ema = {k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v
               for k, v in src.state_dict().items()}
    src.load_state_dict(ema)
    official = {'epoch': 35,
                'state_dict': {'module.' + k: torch.zeros_like(v)
                               for k, v in ours_to_official(_build(3).state_dict()).items()},
                'state_dict_ema': {'module.' + k: v
                                   for k, v in ours_to_official(ema).items()}}
    path = tmp_path / 'epoch_035.pth.tar'
    torch.save(official, path)
    dst = _build(1)
    report = load_actionformer_checkpoint(dst, str(path))
    assert report == dict(missing=[], unexpected=[], mismatched=[])
    x = torch.randn(2, 16, 256)
    with torch.no_grad():
        for a, b in zip(src(x, mode='tensor'), dst(x, mode='tensor')):
            for ta, tb in zip(a, b):
                assert torch.equal(ta, tb)


def test_mismatches_are_reported_clearly(tmp_path):
    sd = ours_to_official(_build(0).state_dict())
    sd['backbone.stem.0.attn.rel_pe'] = torch.zeros(1, 1, 4, 5)
    sd['cls_head.cls_head.conv.weight'] = torch.zeros(20, 32, 3)
    del sd['reg_head.scale.0.scale']
    with pytest.raises(KeyError) as err:
        load_actionformer_checkpoint(_build(1), {'state_dict': sd})
    msg = str(err.value)
    assert "missing in checkpoint (1): ['head.scales.0.scale']" in msg
    assert "unexpected in checkpoint (1): ['backbone.stem.0.attn.rel_pe']" in msg
    assert "('head.cls_out.conv.weight', (20, 32, 3), (3, 32, 3))" in msg
    report = load_actionformer_checkpoint(_build(1), {'state_dict': sd}, strict=False)
    assert report['missing'] == ['head.scales.0.scale']


def test_convert_official_checkpoint_for_runner(tmp_path):
    from mmengine.runner import load_checkpoint
    from vmae2_mm.checkpoint.actionformer import convert_official_checkpoint
    src = _build(0)
    path = tmp_path / 'official.pth.tar'
    torch.save({'state_dict_ema': {'module.' + k: v
                                   for k, v in ours_to_official(src.state_dict()).items()}},
               path)
    convert_official_checkpoint(str(path), str(tmp_path / 'ours.pth'))
    dst = _build(1)
    # strict: the converted file lacks head.loss_normalizer like the official one
    load_checkpoint(dst, str(tmp_path / 'ours.pth'), strict=True)
    for k, v in src.state_dict().items():
        assert torch.equal(v, dst.state_dict()[k]), k
    with pytest.raises(ValueError, match='official ActionFormer layout'):
        convert_official_checkpoint(str(tmp_path / 'ours.pth'), str(tmp_path / 'x.pth'))


def _official_state_dict(model):
    """A state dict in upstream's layout: ``module.``-prefixed official keys and, as upstream's
    ``PtTransformer.state_dict()`` (the normaliser is a float attribute there), no
    loss_normalizer."""
    return {'module.' + k: v for k, v in ours_to_official(model.state_dict()).items()}


def test_official_layout_loads_with_strict_true():
    src = _build(0)
    sd = _official_state_dict(src)
    assert not any('loss_normalizer' in k for k in sd)
    dst = _build(1)
    dst.load_state_dict(official_to_ours(sd), strict=True)           # torch's own strict load
    for k, v in src.state_dict().items():
        assert torch.equal(v, dst.state_dict()[k]), k
    # absent from the file: the model keeps its init_loss_norm (100 in the tiny config), which
    # is where upstream restarts after loading a checkpoint
    assert dst.head.loss_normalizer.item() == 100.0
    report = load_actionformer_checkpoint(_build(1), {'state_dict_ema': sd}, strict=True)
    assert report == dict(missing=[], unexpected=[], mismatched=[])


def test_strict_foreign_hook_accepts_the_converted_layout():
    """The strict key check that load_from / tools/test.py install (a load pre-hook comparing
    the whole state dict) sees the normaliser the model fills in, and still refuses a file that
    lacks a real weight."""
    from vmae2_mm.checkpoint.foreign import install_foreign_checkpoint_hook
    from vmae2_mm.checkpoint.report import CheckpointMismatchError
    sd = official_to_ours(_official_state_dict(_build(0)))
    dst = _build(1)
    assert install_foreign_checkpoint_hook(dst, strict=True, source='converted.pth')
    dst.load_state_dict(sd, strict=True)
    del sd['head.scales.0.scale']
    with pytest.raises(CheckpointMismatchError,
                       match=r'(?s)converted.pth: .*missing in the checkpoint: head\.scales\.0'):
        dst.load_state_dict(sd, strict=True)


def test_our_checkpoint_restores_the_normaliser():
    src = _build(0)
    src.head.loss_normalizer.fill_(42.5)             # as after training (the EMA moved)
    dst = _build(1)
    dst.load_state_dict(src.state_dict(), strict=True)
    assert dst.head.loss_normalizer.item() == 42.5
    dst2 = _build(1)
    load_actionformer_checkpoint(dst2, {'state_dict': src.state_dict()})
    assert dst2.head.loss_normalizer.item() == 42.5
