import torch

from vmae2_mm.models.heads import VideoMAEv2Head


def test_init_scale_and_shapes():
    torch.manual_seed(0)
    head = VideoMAEv2Head(num_classes=10, in_channels=64, init_scale=0.001, dropout_ratio=0.5)
    head.init_weights()
    assert torch.count_nonzero(head.fc_cls.bias) == 0
    # trunc-normal(std .02) scaled by 1e-3
    assert 1e-5 < head.fc_cls.weight.std().item() < 3e-5
    head.eval()
    assert head(torch.randn(3, 64)).shape == (3, 10)


def test_loss_and_predict_accept_bf16_scores():
    from mmaction.structures import ActionDataSample
    head = VideoMAEv2Head(num_classes=4, in_channels=8, average_clips='prob')
    samples = [ActionDataSample().set_gt_label(i) for i in range(2)]
    scores = torch.randn(2, 4).bfloat16()
    losses = head.loss_by_feat(scores, samples)
    assert losses['loss_cls'].dtype == torch.float32 and 'top1_acc' in losses
    preds = head.predict_by_feat(scores, samples)
    assert preds[0].pred_score.dtype == torch.float32


def test_registry_smoke():
    import vmae2_mm  # noqa: F401
    from mmaction.registry import DATASETS, MODELS, OPTIM_WRAPPERS
    for name in ('VideoMAEv2ViT', 'VideoMAEv2Head', 'Recognizer3D'):
        assert MODELS.get(name) is not None, name
    assert DATASETS.get('VideoDatasetChecked') is not None
    assert OPTIM_WRAPPERS.get('AutocastOptimWrapper') is not None


def test_recognizer_from_config_builds_and_runs(repo_root):
    from mmaction.registry import MODELS
    from mmengine.config import Config
    cfg = Config.fromfile(repo_root / 'configs/recognition/videomaev2/'
                          'vit-small-p16_videomaev2_1xb8-16x4x1-synthetic-motion.py')
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert type(model.backbone).__name__ == 'VideoMAEv2ViT'
    assert model.backbone.arch['embed_dims'] == 384 and model.backbone.grid == (8, 4, 4)
    inputs = torch.randint(0, 255, (2, 1, 3, 16, 64, 64)).float()
    with torch.no_grad():
        feats = model.extract_feat(inputs, stage='head')[0]
    assert feats.shape == (2, 4)
