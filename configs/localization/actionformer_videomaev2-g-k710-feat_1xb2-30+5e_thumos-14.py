# ActionFormer on VideoMAE V2-g (K710 fine-tuned) THUMOS14 features: the official THUMOS
# recipe (configs/thumos_i3d.yaml) with input_dim 1408, as the paper ran it (69.6 avg mAP
# reported; a public reproduction got 68.73; InternVideo1's config trains 45 epochs instead of
# 30 and picks epochs on the test set, we report the last epoch).
_base_ = [
    '../_base_/models/actionformer.py', '../_base_/datasets/tad_thumos14.py',
    '../_base_/schedules/tad_adamw_cosine.py', '../_base_/default_runtime.py'
]

model = dict(
    backbone=dict(in_channels=1408),
    head=dict(num_classes=20, init_loss_norm=100))

default_hooks = dict(checkpoint=dict(interval=5, save_best=None, max_keep_ckpts=2))
# the lr is per batch of 2 on one GPU; upstream multiplies it by the number of GPUs
auto_scale_lr = dict(enable=False, base_batch_size=2)
randomness = dict(seed=1234567891)
