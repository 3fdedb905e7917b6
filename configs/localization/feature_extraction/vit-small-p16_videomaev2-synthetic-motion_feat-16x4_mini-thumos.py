# Demo: clip features of the generated mini-THUMOS videos with the ViT-S/16 trained by the
# recognition demo (64x64 input, ImageNet mean/std as in its training), 16x4 clips, [N, 384].
#   python tools/make_synthetic_data.py thumos --out data/mini_thumos
#   python tools/extract_features.py THIS_CONFIG work_dirs/<recognition demo>/epoch_N.pth \
#       --videos data/mini_thumos/videos --out data/mini_thumos/features
_base_ = ['../../_base_/demo_recognition_synthetic_motion.py']

feature_extraction = dict(
    clip_len=16,
    stride=4,
    img_size=64,
    preprocess='normalized',  # the recognizer was trained on mean/std-normalised frames
    batch_size=8,
    chunk_frames=128,
    amp=None)
