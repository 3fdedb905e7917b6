# ViT-S/16 VideoMAE V2 recognizer, 16x4x1 sampling, on generated motion clips
# (python tools/make_synthetic_data.py recognition --out data/motion): the README demo's
# recognition stage. Everything is in the shared demo base, which the pre-train -> fine-tune
# and feature-extraction demos also start from.
_base_ = ['../../_base_/demo_recognition_synthetic_motion.py']
