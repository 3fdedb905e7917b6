# DeepSpeed ZeRO stage 3 through mmengine's FlexibleRunner: parameters too are partitioned and
# gathered per module on use (the ViT-g/H choice when ZeRO-2's replicated bf16 weights plus
# activations do not fit). bf16 as in deepspeed_zero2_bf16.py; on save the partitions are gathered
# into one 16-bit state dict.
runner_type = 'FlexibleRunner'
strategy = dict(
    type='DeepSpeedStrategy',
    bf16=dict(enabled=True),
    inputs_to_half=['inputs'],
    zero_optimization=dict(
        stage=3,
        overlap_comm=True,
        contiguous_gradients=True,
        reduce_bucket_size=int(5e8),
        stage3_prefetch_bucket_size=int(5e8),
        stage3_param_persistence_threshold=int(1e5),
        stage3_gather_16bit_weights_on_model_save=True),
    config=dict(zero_allow_untested_optimizer=True))
