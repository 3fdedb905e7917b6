# VideoMAE V2-g (K710 fine-tuned) clip features for THUMOS14, as the released
# `th14_mae_g_16_4` features: 16 consecutive native-fps frames every 4 frames, squash-resize to
# 224x224, /255 without mean/std (OpenGVLab/VideoMAEv2 extract_tad_feature.py), [N, 1408].
#   python tools/extract_features.py THIS_CONFIG vit_g_hybrid_pt_1200e_k710_ft.pth \
#       --videos data/thumos14/videos --out data/thumos14/features/videomaev2_g_16x4
_base_ = ['../../_base_/default_runtime.py']

model = dict(
    type='VideoMAEv2ViT',
    arch='giant',
    img_size=224,
    num_frames=16,
    tubelet_size=2,
    use_mean_pooling=True,
    out_type='pooled')

feature_extraction = dict(
    clip_len=16,
    stride=4,
    img_size=224,
    preprocess='official',  # 'normalized' adds ImageNet mean/std (how the model was trained)
    batch_size=8,
    chunk_frames=128,
    amp=None)  # fp32 as official; 'bf16' / 'fp16' autocast on GPUs
