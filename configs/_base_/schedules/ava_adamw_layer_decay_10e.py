# VideoMAE V2 AVA / AVA-Kinetics fine-tuning schedule (arXiv 2303.16727, Table 12, the same for
# both datasets and every backbone size): AdamW lr 3e-4 at a total batch of 128, betas
# (0.9, 0.999), wd 0.05, layer decay 0.9, 2 linear warm-up epochs then cosine to 10 epochs, no
# gradient clipping; validation (frame-mAP) every epoch.
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=10, val_begin=1, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

base_lr = 3e-4  # for a total batch of 128
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        begin=0,
        end=2,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=8,
        eta_min=1e-6,
        by_epoch=True,
        begin=2,
        end=10,
        convert_to_iter_based=True)
]
optim_wrapper = dict(
    optimizer=dict(
        type='AdamW', lr=base_lr, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='VideoMAEv2LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay=0.9))

# `--auto-scale-lr` rescales base_lr linearly from a total batch of 128
auto_scale_lr = dict(enable=False, base_batch_size=128)
