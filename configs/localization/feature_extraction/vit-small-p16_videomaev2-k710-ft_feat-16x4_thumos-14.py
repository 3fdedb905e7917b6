# VideoMAE V2 ViT-S (K710 distilled) clip features for THUMOS14: 16x4 clips, official
# preprocessing, [N, 384].
_base_ = ['./vit-giant-p14_videomaev2-k710-ft_feat-16x4_thumos-14.py']

model = dict(arch='small')
feature_extraction = dict(batch_size=32)
