"""Issue 21 item 2: a non-finite loss or weight stops every model's run with a clear error, no
optimizer step is taken with it, no non-finite checkpoint is written (``best_*`` included) and
checkpoint rotation never removes the last finite checkpoint."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import vmae2_mm  # noqa: F401
from vmae2_mm.engine import build_runner
from vmae2_mm.testing.recognition import generate_motion_dataset
from vmae2_mm.utils.config_options import check_cfg_options

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
TINY_CFG = osp.join(ROOT, 'configs', 'recognition', 'videomaev2',
                    'vit-tiny-p8_scratch_1xb16-8x2x1-20e_synthetic-motion-32px.py')


@pytest.fixture(scope='module')
def clips(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('motion'))
    generate_motion_dataset(out, num_classes=2, train_per_class=2, val_per_class=1,
                            num_frames=16, size=32)
    return out


def _cfg(clips, work_dir, **overrides):
    cfg = Config.fromfile(TINY_CFG)
    for split in ('train', 'val', 'test'):
        ds = cfg[f'{split}_dataloader'].dataset
        ds.ann_file = osp.join(clips, 'train.txt' if split == 'train' else 'val.txt')
        ds.data_prefix = dict(video=clips)
        cfg[f'{split}_dataloader'].num_workers = 0
        cfg[f'{split}_dataloader'].persistent_workers = False
    cfg.train_dataloader.batch_size = 2
    cfg.model.cls_head.num_classes = 2
    cfg.work_dir = work_dir
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=3, val_interval=1)
    cfg.param_scheduler = []
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.default_hooks.checkpoint.interval = 1
    cfg.merge_from_dict(overrides)
    return cfg


class Poison(Hook):
    """Put a NaN into the head's weight at one point of training, as an overflow would."""

    priority = 'LOWEST'

    def __init__(self, epoch, where):
        self.epoch, self.where = epoch, where
        self.before = None

    def _poison(self, runner):
        self.before = {k: v.detach().clone() for k, v in runner.model.state_dict().items()}
        with torch.no_grad():
            runner.model.cls_head.fc_cls.weight[0, 0] = float('nan')

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if self.where == 'loss' and runner.epoch == self.epoch and batch_idx == 1:
            self._poison(runner)

    def before_val_epoch(self, runner):
        # validation after the second epoch: the end-of-epoch checks have passed
        if self.where == 'val' and runner.epoch == self.epoch + 1:
            self._poison(runner)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        # after the last step of the epoch: the loss of that step was finite, the weights not
        last = batch_idx == len(runner.train_dataloader) - 1
        if self.where == 'weights' and runner.epoch == self.epoch and last:
            self._poison(runner)


def _finite(path):
    ckpt = torch.load(path, map_location='cpu', weights_only=False)
    return all(torch.isfinite(v).all() for v in ckpt['state_dict'].values()
               if torch.is_tensor(v) and v.is_floating_point())


def test_nan_loss_stops_recognizer_before_the_step(clips, tmp_path):
    runner = build_runner(_cfg(clips, str(tmp_path)))
    poison = Poison(epoch=1, where='loss')
    runner.register_hook(poison)
    with pytest.raises(FloatingPointError) as err:
        runner.train()
    msg = str(err.value)
    assert 'iteration 4 (epoch 2)' in msg and 'loss_cls' in msg, msg
    # no optimizer step with the NaN loss: every weight but the poisoned one is unchanged
    after = runner.model.state_dict()
    for k, v in poison.before.items():
        if k != 'cls_head.fc_cls.weight' and v.is_floating_point():
            assert torch.equal(v, after[k]), k
    ckpts = sorted(osp.basename(p) for p in glob.glob(osp.join(str(tmp_path), '*.pth')))
    assert 'epoch_1.pth' in ckpts and 'epoch_2.pth' not in ckpts, ckpts
    assert all(_finite(osp.join(str(tmp_path), c)) for c in ckpts)


def test_non_finite_weights_are_never_saved_and_rotation_keeps_the_last_finite(clips, tmp_path):
    cfg = _cfg(clips, str(tmp_path),
               **{'default_hooks.checkpoint.max_keep_ckpts': 1,
                  'default_hooks.checkpoint.save_best': None})
    runner = build_runner(cfg)
    runner.register_hook(Poison(epoch=1, where='weights'))
    with pytest.raises(FloatingPointError, match=r"end of epoch 2: weight "
                       r"'cls_head.fc_cls.weight' is non-finite"):
        runner.train()
    ckpts = sorted(osp.basename(p) for p in glob.glob(osp.join(str(tmp_path), '*.pth')))
    assert ckpts == ['epoch_1.pth'], ckpts  # not rotated away by a NaN epoch_2
    assert _finite(osp.join(str(tmp_path), 'epoch_1.pth'))


def test_previous_best_is_not_removed_for_a_non_finite_model(clips, tmp_path):
    # only best checkpoints (interval larger than the run): mmengine's CheckpointHook deletes the
    # previous best before writing a new one, so the check must come first
    cfg = _cfg(clips, str(tmp_path), **{'default_hooks.checkpoint.interval': 100,
                                         'default_hooks.checkpoint.save_best': 'acc/top1',
                                         'default_hooks.checkpoint.rule': 'greater'})
    runner = build_runner(cfg)
    runner.register_hook(Poison(epoch=1, where='val'))
    with pytest.raises(FloatingPointError, match='after validation'):
        runner.train()
    best = glob.glob(osp.join(str(tmp_path), 'best_*.pth'))
    assert [osp.basename(b) for b in best] == ['best_acc_top1_epoch_1.pth']
    assert _finite(best[0])


def test_hook_can_be_removed_and_is_added_when_missing(clips, tmp_path):
    from vmae2_mm.engine.hooks import NonFiniteCheckHook
    runner = build_runner(_cfg(clips, str(tmp_path / 'on'), default_hooks=dict(non_finite=None)))
    assert not any(isinstance(h, NonFiniteCheckHook) for h in runner.hooks)
    cfg = _cfg(clips, str(tmp_path / 'added'))
    cfg.default_hooks.pop('non_finite')
    assert any(isinstance(h, NonFiniteCheckHook) for h in build_runner(cfg).hooks)


def _tiny_models():
    """One config per model family that computes its loss in ``BaseModel.parse_losses``."""
    yield 'recognizer', Config.fromfile(TINY_CFG).model
    tad = Config.fromfile(osp.join(ROOT, 'configs', 'localization',
                                   'actionformer_tiny_1xb2-5+35e_mini-thumos.py'))
    yield 'actionformer', tad.model
    dist = Config.fromfile(osp.join(
        ROOT, 'configs', 'distillation', 'videomaev2',
        'vit-nano-p8_vit-tiny-teacher_1xb16-8x2x1-10e_synthetic-motion-32px.py'))
    dist.model.teacher_checkpoint = None
    yield 'distiller', dist.model


@pytest.mark.parametrize('name,model_cfg', list(_tiny_models()), ids=lambda x: x
                         if isinstance(x, str) else '')
def test_every_model_family_is_guarded(name, model_cfg, tmp_path):
    from mmaction.registry import MODELS
    from vmae2_mm.engine.hooks import NonFiniteCheckHook
    init_default_scope('mmaction')
    try:
        model = MODELS.build(model_cfg)
    except (TypeError, KeyError, FileNotFoundError) as e:  # pragma: no cover - config drift
        pytest.fail(f'{name}: tiny config does not build: {e}')
    runner = Runner(model=model, work_dir=str(tmp_path), default_scope='mmaction')
    NonFiniteCheckHook().before_train(runner)
    ok, _ = model.parse_losses(dict(loss_a=torch.tensor(1.0), loss_b=torch.tensor(2.0)))
    assert float(ok) == 3.0
    with pytest.raises(FloatingPointError, match=r'loss_b is inf'):
        model.parse_losses(dict(loss_a=torch.tensor(1.0), loss_b=torch.tensor(float('inf'))))


def test_cfg_options_typo_suggests_the_key():
    cfg = Config.fromfile(TINY_CFG)
    with pytest.raises(KeyError, match="unknown config key 'train_dataloder'.*did you mean "
                       "'train_dataloader'"):
        check_cfg_options(cfg, ['train_dataloder.batch_size'])
    # keys the config has, and Runner arguments it does not set, are fine
    check_cfg_options(cfg, ['train_dataloader.batch_size', 'randomness.seed', 'load_strict',
                            'model.backbone.new_option'])


def test_cfg_options_typo_fails_in_tools_train(clips, tmp_path):
    import sys
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    try:
        import train as train_tool
    finally:
        sys.path.pop(0)
    args = train_tool.parse_args([TINY_CFG, '--work-dir', str(tmp_path), '--cfg-options',
                                  'train_dataloder.batch_size=2'])
    with pytest.raises(KeyError, match="did you mean 'train_dataloader'"):
        train_tool.build_config(args)
    assert not glob.glob(osp.join(str(tmp_path), '*'))  # failed before anything was written
