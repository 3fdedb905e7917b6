"""Checkpoint faults (issue 21 items 1 and 3): strict loading through the real Runner paths
(``tools/test.py CONFIG CKPT``, ``load_from``, ``--resume``) and safe reading of bad files.

The test data set lists a video that does not exist: a checkpoint error (not a decoding error)
proves the checkpoint is checked before any data is read.
"""
import json
import os
import os.path as osp

import pytest
import torch
from mmaction.registry import MODELS
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import load_checkpoint

import vmae2_mm  # noqa: F401
from tests.conftest import load_script
from vmae2_mm.checkpoint import CheckpointMismatchError, CheckpointReadError, read_checkpoint
from vmae2_mm.checkpoint.foreign import install_foreign_checkpoint_hook

recipe = load_script('tests/e2e/test_recognition_recipe_e2e.py')
test_tool = load_script('tools/test.py')
train_tool = load_script('tools/train.py')
WIDTH = 64


def _data(tmp_path):
    data = tmp_path / 'data'
    data.mkdir(exist_ok=True)
    for name in ('train.txt', 'val.txt'):
        (data / name).write_text('no_such_video.mp4 0\n')
    return str(data)


def _cfg_file(tmp_path, **backbone):
    cfg = recipe._cfg(_data(tmp_path), str(tmp_path / 'work'))
    cfg.model.backbone.update(backbone)
    path = str(tmp_path / 'cfg.py')
    cfg.dump(path)
    return path, cfg


def _model(cfg_model, seed=0, **backbone):
    init_default_scope('mmaction')
    torch.manual_seed(seed)
    m = cfg_model.copy()
    m.backbone = dict(m.backbone)
    m.backbone['arch'] = dict(m.backbone['arch'], **backbone)
    return MODELS.build(m)


def _save(model, path, drop=()):
    sd = {k: v for k, v in model.state_dict().items() if not k.startswith(drop)}
    torch.save({'state_dict': sd, 'meta': {'epoch': 1}}, path)
    return path


def _run_test_tool(cfg_path, ckpt, *extra):
    return test_tool.main([cfg_path, ckpt, *extra])


def test_wider_vit_checkpoint_fails_in_tools_test_naming_widths(tmp_path):
    cfg_path, cfg = _cfg_file(tmp_path)
    wide = _model(cfg.model, embed_dims=96, num_heads=2)
    ckpt = _save(wide, str(tmp_path / 'wide.pth'))
    with pytest.raises(CheckpointMismatchError) as err:
        _run_test_tool(cfg_path, ckpt)
    msg = str(err.value)
    assert 'wide.pth' in msg
    assert 'backbone.blocks.0.norm1.weight: expected (64,), found (96,)' in msg
    assert f'checkpoint is a ViT (96 wide), config is a ViT ({WIDTH})' in msg
    assert '--partial-load' in msg


def test_missing_blocks_fail_strictly_in_load_from(tmp_path):
    cfg_path, cfg = _cfg_file(tmp_path)
    shallow = _model(cfg.model, depth=1)
    ckpt = _save(shallow, str(tmp_path / 'shallow.pth'))
    with pytest.raises(CheckpointMismatchError) as err:
        _run_test_tool(cfg_path, ckpt)
    assert 'backbone.blocks.1.attn.qkv.weight' in str(err.value)
    assert 'lacks blocks 1' in str(err.value)


def test_wrong_head_size_fails_with_label_map_hint(tmp_path):
    cfg_path, cfg = _cfg_file(tmp_path)
    m = cfg.model.copy()
    m.cls_head = dict(m.cls_head, num_classes=5)
    init_default_scope('mmaction')
    ckpt = _save(MODELS.build(m), str(tmp_path / 'head5.pth'))
    with pytest.raises(CheckpointMismatchError) as err:
        _run_test_tool(cfg_path, ckpt)
    assert 'cls_head.fc_cls.weight: expected (4, 64), found (5, 64)' in str(err.value)
    assert 'has 5 classes, the model 4' in str(err.value)


def test_checkpoint_without_head_fails_unless_partial_load(tmp_path):
    cfg_path, cfg = _cfg_file(tmp_path)
    src = _model(cfg.model, seed=3)
    ckpt = _save(src, str(tmp_path / 'nohead.pth'), drop=('cls_head.', ))
    with pytest.raises(CheckpointMismatchError, match='has no classifier'):
        _run_test_tool(cfg_path, ckpt)
    # partial loading on request: the backbone loads, then the (absent) video is read
    with pytest.raises(Exception) as err:
        _run_test_tool(cfg_path, ckpt, '--partial-load')
    assert not isinstance(err.value, CheckpointMismatchError)
    # and the matching tensors are loaded, the summary logged (model-level, same hook)
    dst = _model(cfg.model, seed=4)
    install_foreign_checkpoint_hook(dst, strict=False, source=ckpt)
    load_checkpoint(dst, ckpt, map_location='cpu')
    assert torch.equal(dst.backbone.blocks[1].mlp.fc1.weight, src.backbone.blocks[1].mlp.fc1.weight)


def test_resume_from_another_arch_fails_before_training(tmp_path):
    cfg_path, cfg = _cfg_file(tmp_path)
    wide = _model(cfg.model, embed_dims=96, num_heads=2)
    ckpt = _save(wide, str(tmp_path / 'epoch_1.pth'))
    args = train_tool.parse_args([cfg_path, '--resume', ckpt])
    runner = test_tool.build_runner(train_tool.build_config(args))
    with pytest.raises(CheckpointMismatchError, match='epoch_1.pth'):
        runner.train()


@pytest.mark.parametrize('case', ['empty', 'truncated', 'text', 'list'])
def test_bad_files_give_one_clear_error_naming_the_file(tmp_path, case):
    cfg_path, cfg = _cfg_file(tmp_path)
    good = _save(_model(cfg.model), str(tmp_path / 'good.pth'))
    bad = str(tmp_path / f'{case}.pth')
    if case == 'empty':
        open(bad, 'wb').close()
    elif case == 'truncated':
        data = open(good, 'rb').read()
        open(bad, 'wb').write(data[:len(data) // 2])
    elif case == 'text':
        open(bad, 'w').write('this is not a checkpoint\n')
    else:
        torch.save([1, 2, 3], bad)
    with pytest.raises(CheckpointReadError, match=f'{case}.pth: cannot read checkpoint'):
        _run_test_tool(cfg_path, bad)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def test_malicious_reduce_is_not_executed(tmp_path):
    marker = str(tmp_path / 'PWNED')
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {'w': torch.ones(1)}, 'meta': _Evil(marker)}, path)
    with pytest.raises(CheckpointReadError, match='evil.pth: .*refused to unpickle'):
        read_checkpoint(path)
    cfg_path, _ = _cfg_file(tmp_path)
    with pytest.raises(CheckpointReadError, match='evil.pth'):
        _run_test_tool(cfg_path, path)  # mmengine's load_from path
    with pytest.raises(Exception):
        torch.load(path)  # the process-wide default is weights only again
    assert not osp.exists(marker)


def test_runner_checkpoint_reads_weights_only_with_message_hub(tmp_path):
    """A real mmengine checkpoint (HistoryBuffer, numpy in message_hub) reads as weights only."""
    from mmengine.logging import HistoryBuffer, MessageHub
    hub = MessageHub.get_instance('ckpt_fault_test')
    hub.update_scalar('train/loss', 0.5)
    path = str(tmp_path / 'runner.pth')
    import numpy as np
    torch.save({'state_dict': {'w': torch.ones(2)}, 'message_hub': hub.state_dict(),
                'meta': {'epoch': np.int64(3), 'seed': np.random.get_state()}}, path)
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    assert isinstance(ckpt['message_hub']['log_scalars']['train/loss'], HistoryBuffer)
    assert ckpt['message_hub']['log_scalars']['train/loss'].mean() == 0.5
    assert int(ckpt['meta']['epoch']) == 3


def test_safetensors_and_hf_folder_load_through_load_from(tmp_path):
    from safetensors.torch import save_file
    _, cfg = _cfg_file(tmp_path)
    src = _model(cfg.model, seed=7)
    sd = {k: v.contiguous() for k, v in src.state_dict().items()}
    save_file(sd, str(tmp_path / 'm.safetensors'))
    folder = tmp_path / 'hf'
    folder.mkdir()
    save_file(sd, str(folder / 'model.safetensors'))
    (folder / 'config.json').write_text('{}')
    for path in (str(tmp_path / 'm.safetensors'), str(folder)):
        dst = _model(cfg.model, seed=8)
        install_foreign_checkpoint_hook(dst, strict=True, source=path)
        load_checkpoint(dst, path, map_location='cpu')
        assert torch.equal(dst.cls_head.fc_cls.weight, src.cls_head.fc_cls.weight)


def test_pretrain_loader_reads_safetensors(tmp_path):
    from safetensors.torch import save_file
    from vmae2_mm.checkpoint.pretrain import load_pretrain_checkpoint
    from vmae2_mm.models.pretrainers import VideoMAEv2Pretrainer
    enc = dict(arch=dict(embed_dims=64, depth=2, num_heads=2), img_size=32, num_frames=4)
    dec = dict(embed_dims=32, num_heads=2, depth=1)
    torch.manual_seed(0)
    src = VideoMAEv2Pretrainer(encoder=dict(enc), decoder=dict(dec))
    save_file({k: v.contiguous() for k, v in src.state_dict().items()},
              str(tmp_path / 'p.safetensors'))
    torch.manual_seed(1)
    dst = VideoMAEv2Pretrainer(encoder=dict(enc), decoder=dict(dec))
    load_pretrain_checkpoint(dst, str(tmp_path / 'p.safetensors'))
    for (k, a), b in zip(src.state_dict().items(), dst.state_dict().values()):
        assert torch.equal(a, b), k


def _official_ft(model, path, extra=None):
    """``model`` in the released fine-tuned layout (``model``-nested ``blocks.*`` + ``head``)."""
    sd = {k[len('backbone.'):]: v for k, v in model.state_dict().items()
          if k.startswith('backbone.')}
    sd.update({'head.weight': model.cls_head.fc_cls.weight.detach(),
               'head.bias': model.cls_head.fc_cls.bias.detach()})
    sd.update(extra or {})
    torch.save({'model': sd}, path)
    return path


def test_convert_reports_unexpected_keys_instead_of_writing_them(tmp_path, capsys):
    convert_tool = load_script('tools/convert_checkpoint.py')
    _, cfg = _cfg_file(tmp_path)
    src = _official_ft(_model(cfg.model), str(tmp_path / 'ft.pth'),
                       extra={'blocks.0.attn.rel_bias': torch.zeros(3),
                              'adapter.weight': torch.zeros(2, 2)})
    dst = str(tmp_path / 'out.pth')
    convert_tool.main([src, dst])
    err = capsys.readouterr().err
    assert 'backbone.blocks.0.attn.rel_bias' in err and 'backbone.adapter.weight' in err
    out = torch.load(dst, weights_only=True)
    assert not any('rel_bias' in k or 'adapter' in k for k in out['state_dict'])
    assert sorted(out['meta']['unexpected_keys']) == ['backbone.adapter.weight',
                                                       'backbone.blocks.0.attn.rel_bias']


def test_convert_check_config_fails_for_another_arch_before_writing(tmp_path):
    convert_tool = load_script('tools/convert_checkpoint.py')
    cfg_path, cfg = _cfg_file(tmp_path)
    src = _official_ft(_model(cfg.model, embed_dims=96, num_heads=2), str(tmp_path / 'ft.pth'))
    dst = str(tmp_path / 'out.pth')
    with pytest.raises(CheckpointMismatchError, match=r'\(96 wide\), config is a ViT \(64\)'):
        convert_tool.main([src, dst, '--check-config', cfg_path])
    assert not osp.exists(dst)
    ok = _official_ft(_model(cfg.model), str(tmp_path / 'ok.pth'))
    convert_tool.main([ok, dst, '--check-config', cfg_path])
    assert osp.exists(dst)


@pytest.mark.parametrize('head', ['label_map', 'no_head'])
def test_official_vit_b_into_vit_s_config_names_both_archs(tmp_path, head):
    """A released ViT-B file (K710 head, or converted without head) given to a ViT-S config."""
    convert_tool = load_script('tools/convert_checkpoint.py')
    cfg_path, cfg = _cfg_file(tmp_path, arch='small', img_size=32, num_frames=4)
    cfg.model.cls_head.update(num_classes=400, in_channels=384)
    for augment in cfg.model.data_preprocessor.blending.augments:
        augment.num_classes = 400
    cfg.dump(cfg_path)
    base = cfg.model.copy()
    base.backbone = dict(base.backbone, arch='base')
    base.cls_head = dict(base.cls_head, num_classes=710, in_channels=768)
    init_default_scope('mmaction')
    src = _official_ft(MODELS.build(base), str(tmp_path / 'vit_b_k710.pth'))
    dst = str(tmp_path / 'converted.pth')
    if head == 'label_map':  # the shipped maps need the official class lists: a 710->400 map
        label_map = tmp_path / 'map.json'
        label_map.write_text(json.dumps(list(range(0, 710, 2))[:355] + list(range(1, 91, 2))))
        convert_tool.main([src, dst, '--label-map', str(label_map)])
    else:
        convert_tool.main([src, dst, '--no-head'])
    for ckpt in (src, dst):  # the released file itself, and its conversion
        with pytest.raises(CheckpointMismatchError) as err:
            _run_test_tool(cfg_path, ckpt)
        assert 'checkpoint is ViT-B (768 wide), config is ViT-S (384)' in str(err.value)
        assert 'expected (384,), found (768,)' in str(err.value)
