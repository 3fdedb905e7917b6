# VideoMAE V2 ViT-g/14 dual-masking pre-training (official ViT-g script: 64 A100 x 32 videos x 4
# views, lr 6e-4 per 256 -> 4.8e-3, 30 warm-up of 300 passes = "1200e", clip grad 0.02,
# activation checkpointing). Patch 14 -> token grid 8x16x16 (208 visible, 1024 decoded,
# 920 in the loss); decoder 512 wide with MLP 2234 (encoder ratio 48/11).
_base_ = ['./vit-large-p16_videomaev2-tube90-cell50_48xb32-16x4x1-300e_unlabeled-hybrid.py']

token_grid = (8, 16, 16)
model = dict(encoder=dict(arch='giant', with_cp=True))
base_lr = 6e-4
warmup_epochs = 30
max_epochs = 300
optim_wrapper = dict(optimizer=dict(lr=base_lr), clip_grad=dict(max_norm=0.02))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6 / base_lr, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min_ratio=1e-5 / base_lr,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True)
]
train_pipeline = [
    dict(type='MultiScaleCrop', input_size=224, scales=(1, .875, .75, .66), random_crop=False,
         max_wh_scale_gap=1, num_fixed_crops=13),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='TubeMasking', grid=token_grid, ratio=0.9),
    dict(type='RunningCellMasking', grid=token_grid, ratio=0.5),
    dict(type='PackActionInputs', algorithm_keys=('enc_hidden', 'dec_kept'), meta_keys=()),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
