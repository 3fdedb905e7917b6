# VideoMAE V2-g (K710 fine-tuned) clip features for FineAction, as the released
# `fineaction_mae_g` features: 16 frames every 16 frames, official preprocessing, [N, 1408].
_base_ = ['./vit-giant-p14_videomaev2-k710-ft_feat-16x4_thumos-14.py']

feature_extraction = dict(stride=16)
