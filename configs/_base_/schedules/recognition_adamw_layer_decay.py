# Official VideoMAE V2 fine-tuning optimisation (run_class_finetuning.py): AdamW (0.9, 0.999),
# eps 1e-8, layer-wise lr decay decay^(L+1-i) (patch embed = layer 0, head = L+1), no weight
# decay on 1-D params / biases / pos embed; recipes set lr, decay, epochs and param_scheduler
# (linear warm-up from warmup_lr, then per-iteration cosine to min_lr, both scaled per layer).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05),
    constructor='VideoMAEv2LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay=0.75))

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=30, val_begin=1, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
