# VideoMAE V2 ViT-S (K710 distilled) clip features for FineAction: 16x16 clips, [N, 384].
_base_ = ['./vit-small-p16_videomaev2-k710-ft_feat-16x4_thumos-14.py']

feature_extraction = dict(stride=16)
