"""``tools/analysis/eval_metric.py`` on a real ``tools/test.py --dump`` pickle of a tiny model
trained here (one epoch of the ViT-B K400 recipe shrunk to 64 wide, on generated motion clips)
reproduces the metrics ``tools/test.py`` printed, exactly."""
import os.path as osp

import pytest
from mmengine.runner import Runner

from tests.conftest import load_script

recipe = load_script('tests/e2e/test_recognition_recipe_e2e.py')
test_tool = load_script('tools/test.py')
eval_tool = load_script('tools/analysis/eval_metric.py')


@pytest.fixture(scope='module')
def dumped(motion_clips, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('eval_metric')
    cfg = recipe._cfg(str(motion_clips), str(tmp / 'work'))
    cfg.train_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.train_cfg.update(max_epochs=1, val_begin=2, val_interval=1)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    cfg_path = str(tmp / 'cfg.py')
    cfg.dump(cfg_path)
    Runner.from_cfg(cfg).train()
    ckpt = osp.join(str(tmp / 'work'), 'epoch_1.pth')
    pkl = str(tmp / 'results.pkl')
    metrics = test_tool.main([cfg_path, ckpt, '--work-dir', str(tmp / 'test'), '--dump', pkl])
    return cfg_path, pkl, metrics, tmp


def test_offline_metrics_equal_tools_test(dumped, capsys):
    cfg_path, pkl, online, tmp = dumped
    assert {'acc/top1', 'acc/top5', 'acc/mean1'} <= set(online)
    out_json = str(tmp / 'metrics.json')
    offline = eval_tool.main([cfg_path, pkl, '--out', out_json])
    assert offline == online  # exact, every key
    printed = capsys.readouterr().out
    assert f"acc/top1: {online['acc/top1']:.4f}" in printed
    assert osp.isfile(out_json)


def test_metric_selection_and_bad_input(dumped, tmp_path):
    cfg_path, pkl, online, _ = dumped
    assert eval_tool.main([cfg_path, pkl, '--metrics', 'AccMetric']) == online
    with pytest.raises(ValueError, match=r"TADmAPMetric.*AccMetric"):
        eval_tool.main([cfg_path, pkl, '--metrics', 'TADmAPMetric'])
    bad = tmp_path / 'bad.pkl'
    bad.write_text('not a pickle')
    with pytest.raises(ValueError, match='bad.pkl'):
        eval_tool.main([cfg_path, str(bad)])
    with pytest.raises(FileNotFoundError, match='missing.pkl'):
        eval_tool.main([cfg_path, str(tmp_path / 'missing.pkl')])
