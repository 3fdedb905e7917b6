"""``load_from`` with a checkpoint in the released (official) fine-tuned layout, through the real
Runner of the K400 recipe: ``model``-nested ``blocks.*`` / ``fc_norm`` / ``head.*`` with a larger
classifier whose rows are selected by ``ForeignCheckpointHook(label_map=...)``."""

import pytest
import torch
from mmengine.runner import Runner

from vmae2_mm.testing.recognition import generate_motion_dataset
from tests.conftest import load_script

recipe_e2e = load_script('tests/e2e/test_recognition_recipe_e2e.py')


@pytest.mark.e2e
def test_runner_load_from_official_finetuned_checkpoint(tmp_path):
    data = str(tmp_path / 'motion')
    generate_motion_dataset(data, num_classes=4, train_per_class=1, val_per_class=2,
                            num_frames=32, size=recipe_e2e.SIZE, seed=0)
    cfg = recipe_e2e._cfg(data, str(tmp_path / 'work'))
    # the "released" model: same backbone, a 6-class head (as a K710 head for a K400 model)
    src_cfg = cfg.model.copy()
    src_cfg.cls_head = dict(src_cfg.cls_head, num_classes=6)
    from mmaction.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    torch.manual_seed(5)
    src = MODELS.build(src_cfg)
    official = {k[len('backbone.'):]: v.half() for k, v in src.state_dict().items()
                if k.startswith('backbone.')}
    official.update({'head.weight': src.cls_head.fc_cls.weight.detach().half(),
                     'head.bias': src.cls_head.fc_cls.bias.detach().half()})
    torch.save({'model': official, 'epoch': 34, 'args': {'model': 'vit_tiny'}},
               tmp_path / 'official_ft.pth')
    rows = [3, 0, 5, 1]
    cfg.load_from = str(tmp_path / 'official_ft.pth')
    cfg.default_hooks.foreign_checkpoint = dict(type='ForeignCheckpointHook', label_map=rows)
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    assert 'acc/top1' in metrics
    model = runner.model
    assert torch.equal(model.cls_head.fc_cls.weight, official['head.weight'][rows].float())
    assert torch.equal(model.backbone.blocks[0].attn.qkv.weight,
                       official['blocks.0.attn.qkv.weight'].float())
    assert torch.equal(model.backbone.fc_norm.weight, official['fc_norm.weight'].float())
