# VideoMAE V2 ViT-B AVA-Kinetics detector (train: AVA v2.2 + Kinetics clips, test: AVA v2.2
# val) with the paper's recipe (arXiv 2303.16727, Table 12, identical for AVA and
# AVA-Kinetics): AdamW lr 3e-4 at batch 128, betas (0.9, 0.999), wd 0.05, 2 warm-up epochs
# then cosine to 10 epochs, drop path 0.3, flip, layer decay 0.9, no gradient clipping.
_base_ = [
    '../../_base_/models/videomaev2_ava.py', '../../_base_/datasets/ava_kinetics.py',
    '../../_base_/default_runtime.py'
]

model = dict(
    backbone=dict(
        arch='base',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/vit_b_k710_dl_from_giant.pth')),
    roi_head=dict(bbox_head=dict(in_channels=768)))

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

default_hooks = dict(checkpoint=dict(max_keep_ckpts=2, save_best='mAP/overall'))
auto_scale_lr = dict(enable=False, base_batch_size=128)
