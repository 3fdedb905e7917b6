"""ActionFormer detector: official size, padding, batched inference, loss, optimiser groups."""
import pytest
import torch
from mmaction.structures import ActionDataSample
from mmengine.structures import InstanceData

import vmae2_mm  # noqa: F401
from vmae2_mm.models.localizers import TADDataPreprocessor


def _sample(t, segs=((10., 30.), ), labels=(1, ), fps=30.0, duration=None):
    ds = ActionDataSample()
    ds.set_metainfo(dict(video_id=f'v{t}', fps=fps, feat_stride=4.0, feat_num_frames=16.0,
                         offset_frames=8.0, duration=duration or (t * 4 + 16) / fps))
    ds.gt_instances = InstanceData(segments=torch.tensor(segs), labels=torch.tensor(labels))
    return ds


def test_official_thumos_config_size(repo_root):
    from mmaction.registry import MODELS
    from mmengine.config import Config
    cfg = Config.fromfile(
        repo_root / 'configs/localization/actionformer_videomaev2-g-k710-feat_1xb2-30+5e_thumos-14.py')
    model = MODELS.build(cfg.model)
    params = list(model.parameters())
    assert sum(p.numel() for p in params) == 28_268_572
    assert len(params) == 229
    # + the checkpointed loss normaliser buffer
    assert set(model.state_dict()) - {n for n, _ in model.named_parameters()} == {
        'head.loss_normalizer'}
    assert model.backbone.max_div_factor == 576
    assert model.data_preprocessor.pad_divisor == 576


def test_demo_mini_thumos_config_builds_and_runs(repo_root):
    """The README demo's tiny ActionFormer config: 64-d features, 4 classes, 128-step windows,
    training on the generated "Validation" subset and testing on "Test"."""
    from mmaction.registry import MODELS
    from mmengine.config import Config
    cfg = Config.fromfile(repo_root / 'configs/localization/actionformer_tiny_1xb2-5+35e_mini-thumos.py')
    assert cfg.train_dataloader.dataset.subset == 'validation'
    assert cfg.test_dataloader.dataset.subset == 'test'
    assert cfg.test_evaluator.ann_file == 'data/mini_thumos/annotations/mini_thumos14.json'
    assert cfg.train_cfg.max_epochs == 40
    model = MODELS.build(cfg.model)
    out = model(torch.randn(2, 64, 128), [_sample(128), _sample(100)], mode='loss')
    assert torch.isfinite(sum(out.values()))


def test_preprocessor_padding_rules():
    pre = TADDataPreprocessor(max_seq_len=256, pad_divisor=128)
    out = pre(dict(inputs=[torch.ones(4, 100), torch.ones(4, 200)], data_samples=None), True)
    assert out['inputs'].shape == (2, 4, 256)
    assert out['masks'].shape == (2, 1, 256)
    assert out['masks'][0, 0].sum() == 100 and out['masks'][1, 0].sum() == 200
    assert out['inputs'][0, :, 100:].abs().sum() == 0
    out = pre(dict(inputs=[torch.ones(4, 300), torch.ones(4, 50)], data_samples=None), False)
    assert out['inputs'].shape == (2, 4, 384)
    with pytest.raises(ValueError, match='300 steps > max_seq_len 256'):
        pre(dict(inputs=[torch.ones(4, 300)], data_samples=None), True)
    with pytest.raises(ValueError, match='sample 1 has 3 channels'):
        pre(dict(inputs=[torch.ones(4, 10), torch.ones(3, 10)], data_samples=None), False)


def test_batched_inference_equals_single_video(tiny_model):
    tiny_model.eval()
    torch.manual_seed(1)
    feats = [torch.randn(16, 200), torch.randn(16, 300)]
    samples = [_sample(200), _sample(300)]
    with torch.no_grad():
        both = tiny_model(**tiny_model.data_preprocessor(
            dict(inputs=feats, data_samples=samples), False), mode='predict')
        single = [tiny_model(**tiny_model.data_preprocessor(
            dict(inputs=[f], data_samples=[_sample(f.shape[1])]), False), mode='predict')[0]
            for f in feats]
    for b, s in zip(both, single):
        p, q = b.pred_instances, s.pred_instances
        assert len(p.scores) > 0
        torch.testing.assert_close(p.scores, q.scores, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(p.segments, q.segments, rtol=1e-4, atol=1e-4)
        assert p.segments.min() >= 0 and p.segments.max() <= b.metainfo['duration']


def test_loss_and_normaliser_ema(tiny_model):
    tiny_model.train()
    feats = [torch.randn(16, 256), torch.randn(16, 180)]
    samples = [_sample(256, ((10., 30.), (100., 104.)), (1, 0)),
               _sample(180, ((50., 120.), ), (2, ))]
    data = tiny_model.data_preprocessor(dict(inputs=feats, data_samples=samples), True)
    losses = tiny_model(**data, mode='loss')
    num_pos = losses['num_pos'].item()
    assert num_pos > 0
    assert tiny_model.head.loss_normalizer.item() == pytest.approx(0.9 * 100 + 0.1 * num_pos)
    total = losses['loss_cls'] + losses['loss_reg']
    total.backward()
    assert tiny_model.backbone.embd[0].conv.weight.grad.abs().sum() > 0
    assert 'head.loss_normalizer' in tiny_model.state_dict()


def test_weight_decay_only_on_conv_weights(tiny_model, repo_root):
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(repo_root / 'configs/_base_/schedules/tad_adamw_cosine.py')
    wrapper = build_optim_wrapper(tiny_model, cfg.optim_wrapper)
    decay = {}
    names = {id(p): n for n, p in tiny_model.named_parameters()}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            decay[names[id(p)]] = group['weight_decay']
    convs = {n + '.weight' for n, m in tiny_model.named_modules()
             if isinstance(m, (torch.nn.Conv1d, torch.nn.Linear))}
    assert decay and all((v == 0.05) == (n in convs) for n, v in decay.items()), \
        {n: v for n, v in decay.items() if (v == 0.05) != (n in convs)}


def test_fineaction_config_class_agnostic_with_voting(repo_root):
    from mmaction.registry import MODELS
    from mmengine.config import Config
    cfg = Config.fromfile(
        repo_root / 'configs/localization/actionformer_videomaev2-g-k710-feat_1xb16-10+5e_fineaction.py')
    assert cfg.model.head.test_cfg.nms.multiclass is False
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    assert model.backbone.window_size == [7, 7, 7, 7, 7, -1]
    assert model.backbone.branch[4].attn.window_size == -1          # global last level
    ds = _sample(192, fps=15.0)
    ds.set_metainfo(dict(feat_stride=10.0, offset_frames=5.0, duration=128.0))
    with torch.no_grad():
        out = model(**model.data_preprocessor(
            dict(inputs=[torch.randn(1408, 192)], data_samples=[ds]), False), mode='predict')
    pred = out[0].pred_instances
    assert 0 < len(pred.scores) <= 100 and set(pred.labels.tolist()) == {0}
    assert pred.segments.min() >= 0 and pred.segments.max() <= 128.0
