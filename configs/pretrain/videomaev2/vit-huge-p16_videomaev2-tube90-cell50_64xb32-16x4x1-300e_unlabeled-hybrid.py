# VideoMAE V2 ViT-H/16 dual-masking pre-training (official ViT-H script: 64 GPUs x 32, lr 1e-3
# per 256, 30 warm-up of 300 passes, activation checkpointing).
_base_ = ['./vit-large-p16_videomaev2-tube90-cell50_48xb32-16x4x1-300e_unlabeled-hybrid.py']

model = dict(encoder=dict(arch='huge', with_cp=True))
