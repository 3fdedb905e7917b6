# PyTorch FSDP (FULL_SHARD) through mmengine's FlexibleRunner for ViT-H/g: parameters, gradients
# and AdamW states sharded over all ranks; one FSDP unit per transformer block (all-gathered just
# before the block runs, freed after); the same blocks recomputed in backward (activation
# checkpointing, so the backbone's own `with_cp` is switched off by the experiment configs).
# GroupedFSDPStrategy decides the optimizer's parameter groups (layer decay, no weight decay for
# 1-D parameters) on the unsharded model; mmengine's FSDPStrategy would see flat 1-D shards and
# silently drop weight decay everywhere. bf16 comes from the optim wrapper (FSDPOptimWrapper:
# autocast over fp32 shards, gradient clipping over the global norm). Checkpoints are full state
# dicts gathered on rank 0 (loadable by tools/test.py and the classic Runner).
runner_type = 'FlexibleRunner'
strategy = dict(
    type='GroupedFSDPStrategy',
    model_wrapper=dict(
        sharding_strategy='FULL_SHARD',
        auto_wrap_policy='videomaev2_block_wrap_policy',
        use_orig_params=True,
        backward_prefetch='BACKWARD_PRE',
        limit_all_gathers=True),
    activation_checkpointing=dict(check_fn='videomaev2_is_block'),
    state_dict_cfg='full')
