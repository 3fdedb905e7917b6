"""tools/demo_recognizer.py and mmaction2's init_recognizer / inference_recognizer on our
configs: a converted HF checkpoint classifies a generated video through the config's
multi-view test pipeline, with the same scores as HF on the same views."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmaction.apis import inference_recognizer, init_recognizer
from mmengine.config import Config
from mmengine.dataset import Compose

import vmae2_mm  # noqa: F401
from vmae2_mm.testing.recognition import generate_motion_dataset
from tests.conftest import load_script

transformers = pytest.importorskip('transformers')
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
CONFIG = osp.join(ROOT, 'configs', 'recognition', 'videomaev2',
                  'vit-small-p16_videomaev2_1xb8-16x4x1-synthetic-motion.py')
ARCH = dict(embed_dims=48, depth=2, num_heads=3, mlp_ratio=2)


def _load(name):
    return load_script(f'tools/{name}.py')


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('demo')
    data = generate_motion_dataset(str(tmp / 'clips'), num_classes=4, train_per_class=0,
                                   val_per_class=1, num_frames=48, size=64)
    cfg = transformers.VideoMAEConfig(image_size=64, num_frames=16, hidden_size=48,
                                      num_hidden_layers=2, num_attention_heads=3,
                                      intermediate_size=96, layer_norm_eps=1e-6, num_labels=4)
    torch.manual_seed(0)
    hf = transformers.VideoMAEForVideoClassification(cfg).eval()
    hf.fc_norm.eps = 1e-6
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    torch.save(hf.state_dict(), tmp / 'hf.bin')
    ckpt = str(tmp / 'converted.pth')
    _load('convert_checkpoint').main([str(tmp / 'hf.bin'), ckpt])
    video = osp.join(str(tmp / 'clips'), open(data['val']).readline().split()[0])
    overrides = {'model.backbone.pos_embed_grid_from': None, 'model.cls_head.in_channels': 48}
    return dict(hf=hf, ckpt=ckpt, raw=str(tmp / 'hf.bin'), video=video,
                classes=data['classes'], overrides=overrides)


def _cfg(overrides):
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(overrides)
    cfg.model.backbone.arch = ARCH  # a str in the config: replaced, not merged
    return cfg


def test_init_and_inference_recognizer_match_hf_on_every_view(setup):
    model = init_recognizer(_cfg(setup['overrides']), setup['ckpt'], device='cpu')
    result = inference_recognizer(model, setup['video'])
    scores = result.pred_score
    assert scores.shape == (4, ) and float(scores.sum()) == pytest.approx(1., abs=1e-5)

    # the same views through HF: softmax per view, then average (average_clips='prob')
    data = Compose(model.cfg.test_pipeline)(dict(filename=setup['video'], label=-1,
                                                 start_index=0, modality='RGB'))
    views = model.data_preprocessor(dict(inputs=[data['inputs']], data_samples=None),
                                    False)['inputs'][0]  # [views, C, T, H, W]
    assert views.shape[0] == 2
    with torch.no_grad():
        logits = setup['hf'](pixel_values=views.permute(0, 2, 1, 3, 4)).logits
    expected = logits.softmax(-1).mean(0)
    assert (scores - expected).abs().max().item() < 1e-5


def test_demo_tool_prints_top_labels(setup, capsys):
    demo = _load('demo_recognizer')
    overrides = dict(setup['overrides'])
    top = demo.classify(_cfg(overrides), setup['ckpt'], setup['video'], top_k=3)
    raw = demo.classify(_cfg(overrides), setup['raw'], setup['video'], top_k=3)  # HF layout
    assert [i for i, _ in top] == [i for i, _ in raw]
    assert np.allclose([p for _, p in top], [p for _, p in raw], atol=1e-6)
    assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1]

    names = [ln.strip() for ln in open(setup['classes'])]
    cfg_file = _cfg(overrides)
    cfg_path = osp.join(osp.dirname(setup['ckpt']), 'tiny_cfg.py')
    cfg_file.dump(cfg_path)
    demo.main([cfg_path, setup['ckpt'], setup['video'], '--label-map', setup['classes'],
               '--top-k', '5'])
    # mmengine also prints its own 'Loads checkpoint ...' lines
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln[:1].isdigit()]
    assert len(lines) == 4  # only 4 classes
    assert lines[0] == f'1. {names[top[0][0]]}: {top[0][1]:.4f}'
