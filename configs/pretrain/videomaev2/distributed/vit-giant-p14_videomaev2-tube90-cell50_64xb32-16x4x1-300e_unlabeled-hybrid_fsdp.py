# ViT-g/14 dual-masking pre-training (the official ViT-g recipe,
# vit-giant-p14_videomaev2-tube90-cell50_64xb32-16x4x1-300e_unlabeled-hybrid.py)
# sharded with FSDP: see configs/_base_/strategies/fsdp_bf16.py. The optimizer settings restate
# the recipe's (AdamW 0.9/0.95, lr 6e-4 per 256, wd 0.05 except 1-D/bias/norm/mask_token,
# gradient clipping at global norm 0.02, clipped over all shards by FSDPOptimWrapper); the fp16
# AmpOptimWrapper becomes bf16 autocast with the decoder kept in fp32 (fp32_decoder, as the paper).
_base_ = [
    '../vit-giant-p14_videomaev2-tube90-cell50_64xb32-16x4x1-300e_unlabeled-hybrid.py',
    '../../../_base_/strategies/fsdp_bf16.py'
]

model = dict(encoder=dict(with_cp=False))  # FSDP checkpoints the same blocks
optim_wrapper = dict(
    _delete_=True,
    type='FSDPOptimWrapper',
    dtype='bfloat16',
    optimizer=dict(type='AdamW', lr=6e-4, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(flat_decay_mult=0., bias_decay_mult=0., norm_decay_mult=0.,
                       custom_keys={'mask_token': dict(decay_mult=0.)}),
    clip_grad=dict(max_norm=0.02))
