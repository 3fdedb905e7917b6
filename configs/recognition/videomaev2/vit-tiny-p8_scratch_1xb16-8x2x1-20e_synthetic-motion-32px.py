# A tiny VideoMAE V2-style ViT (64 wide, 2 blocks, 8x8 patches) trained from scratch on 32x32
# generated motion clips: the README demo and the end-to-end tests. About 2 CPU-minutes.
#   python tools/make_synthetic_data.py recognition --out data/motion-32px --size 32 \
#       --num-frames 32 --speed 1 --train-per-class 48 --val-per-class 16
# Everything is in the shared demo base, which the distillation demo also starts from.
_base_ = ['../../_base_/demo_recognition_synthetic_motion_32px.py']
