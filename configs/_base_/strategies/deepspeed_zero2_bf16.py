# DeepSpeed ZeRO stage 2 through mmengine's FlexibleRunner: AdamW states and gradients
# partitioned over the ranks, parameters replicated; bf16 (the engine casts the model to bf16 and
# keeps fp32 master weights in the optimizer partitions; `inputs_to_half` casts the clips to the
# parameter dtype). The experiment configs set `gradient_clipping` (DeepSpeed clips the global
# norm) and activation checkpointing through the backbone's `with_cp`.
runner_type = 'FlexibleRunner'
strategy = dict(
    type='DeepSpeedStrategy',
    bf16=dict(enabled=True),
    inputs_to_half=['inputs'],
    zero_optimization=dict(
        stage=2,
        allgather_partitions=True,
        allgather_bucket_size=int(5e8),
        overlap_comm=True,
        reduce_scatter=True,
        reduce_bucket_size=int(5e8),
        contiguous_gradients=True),
    # AdamW from torch (with our parameter groups) is not on DeepSpeed's tested list
    config=dict(zero_allow_untested_optimizer=True))
