# VideoMAE V2 ViT-B (K710 fine-tuned / distilled) clip features for FineAction: 16x16 clips,
# [N, 768].
_base_ = ['./vit-base-p16_videomaev2-k710-ft_feat-16x4_thumos-14.py']

feature_extraction = dict(stride=16)
