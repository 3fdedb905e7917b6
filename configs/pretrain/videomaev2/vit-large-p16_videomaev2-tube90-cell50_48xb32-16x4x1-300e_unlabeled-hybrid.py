# VideoMAE V2 ViT-L/16 dual-masking pre-training (official ViT-L script: 48 GPUs x 32, lr 1e-3
# per 256, 30 warm-up of 300 passes = the paper's "1200e").
_base_ = ['./vit-base-p16_videomaev2-tube90-cell50_32xb32-16x4x1-200e_unlabeled-hybrid.py']

model = dict(encoder=dict(arch='large'))
base_lr = 1e-3
warmup_epochs = 30
max_epochs = 300
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6 / base_lr, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min_ratio=1e-5 / base_lr,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
