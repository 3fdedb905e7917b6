"""A tiny ActionFormer shared by the localizer tests (CPU, seconds)."""
import pytest
import torch


def tiny_actionformer_cfg(in_channels=16, num_classes=3, embed=32, window=5, max_seq_len=256,
                          drop_path=0.1, **head_kw):
    head = dict(type='ActionFormerHead', num_classes=num_classes, in_channels=embed,
                feat_channels=embed, num_convs=2, init_loss_norm=100, **head_kw)
    return dict(
        type='ActionFormer',
        data_preprocessor=dict(type='TADDataPreprocessor', max_seq_len=max_seq_len),
        backbone=dict(type='ActionFormerBackbone', in_channels=in_channels, embed_dims=embed,
                      num_heads=4, arch=(2, 2, 5), window_size=window, max_seq_len=max_seq_len,
                      drop_path=drop_path),
        neck=dict(type='FPNIdentity', in_channels=[embed] * 6, out_channels=embed),
        head=head)


@pytest.fixture
def tiny_model():
    import vmae2_mm  # noqa: F401
    from mmaction.registry import MODELS
    torch.manual_seed(0)
    return MODELS.build(tiny_actionformer_cfg())


@pytest.fixture(autouse=True)
def single_thread():
    """Small convs are dominated by thread hand-off on a shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
