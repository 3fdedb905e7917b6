# ActionFormer optimisation (libs/utils/train_utils.py): AdamW, weight decay only on conv /
# linear weights, linear warm-up from 0 for `warmup_epochs` then cosine to 1e-8, both stepped
# per iteration, gradient clipping at L2 norm 1.0, model EMA 0.999 used for evaluation.
warmup_epochs = 5
epochs = 30                        # after warm-up (upstream counts 30 + 5)
max_epochs = warmup_epochs + epochs

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=1.0, norm_type=2),
    # no decay on biases, LayerNorms (`*norm*`), per-level Scale and AffineDropPath (`*scale`)
    paramwise_cfg=dict(
        bias_decay_mult=0.0,
        custom_keys={'norm': dict(decay_mult=0.0), 'scale': dict(decay_mult=0.0)}))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-8, end_factor=1.0, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=epochs, eta_min=1e-8, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_begin=max_epochs,
                 val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# mmengine momentum m: ema = (1 - m) * ema + m * model, i.e. upstream's decay 0.999;
# the EMA weights are swapped in for validation / test and saved as `state_dict`
custom_hooks = [dict(type='EMAHook', ema_type='ExponentialMovingAverage', momentum=0.001,
                     update_buffers=False)]
