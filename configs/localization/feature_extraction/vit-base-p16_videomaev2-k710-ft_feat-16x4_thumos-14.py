# VideoMAE V2 ViT-B (K710 fine-tuned / distilled) clip features for THUMOS14: 16x4 clips,
# official preprocessing, [N, 768].
_base_ = ['./vit-giant-p14_videomaev2-k710-ft_feat-16x4_thumos-14.py']

model = dict(arch='base')
feature_extraction = dict(batch_size=16)
