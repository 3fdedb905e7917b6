# VideoMAE V2 ViT-S/16 dual-masking pre-training (decoder 192 wide, 3 heads). The official
# release has no ViT-S pre-training script (its ViT-S is distilled); this reuses the ViT-B recipe.
_base_ = ['./vit-base-p16_videomaev2-tube90-cell50_32xb32-16x4x1-200e_unlabeled-hybrid.py']

model = dict(encoder=dict(arch='small'))
