# VideoMAE V2 pre-training schedule (official run_mae_pretraining.py defaults, ViT-B script):
# AdamW betas (0.9, 0.95), constant weight decay 0.05 except 1-D params/biases and mask_token,
# lr = base_lr x total_batch / 256 (auto_scale_lr; repeated-augmentation views not counted),
# linear warm-up from warmup_lr 1e-6 then per-iteration cosine to min_lr 1e-5 (both scale too:
# they are written as ratios of the lr here). Epochs are data passes (the paper's "800e" for
# ViT-B = 200 passes x 4 repeated views).
base_lr = 1e-3
warmup_epochs = 20
max_epochs = 200

optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=base_lr, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(flat_decay_mult=0., bias_decay_mult=0., norm_decay_mult=0.,
                       custom_keys={'mask_token': dict(decay_mult=0.)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6 / base_lr, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min_ratio=1e-5 / base_lr,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
val_cfg = None
val_dataloader = None
val_evaluator = None
test_cfg = None
test_dataloader = None
test_evaluator = None
auto_scale_lr = dict(enable=True, base_batch_size=256)
