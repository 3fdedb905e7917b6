# VideoMAE V2 ViT-H/16 fine-tuning on Kinetics-710 (post-pre-training), as the official
# scripts/finetune/vit_h_k710_ft.sh: 32 GPUs x 4 videos (x2 repeated augmentation),
# base lr 0.001 per 256 videos, layer decay 0.8, wd 0.05, drop path 0.2, head dropout 0.5,
# 40 epochs (5 warm-up).
# = the Kinetics-400 recipe with the Kinetics-710 data and a 710-way head; nothing else differs.
_base_ = ['./vit-huge-p16_videomaev2-hybrid-pre_32xb4-16x4x1-40e_kinetics-400.py']

num_classes = 710
model = dict(
    cls_head=dict(num_classes=num_classes),
    data_preprocessor=dict(
        blending=dict(augments=[
            dict(type='MixupBlending', alpha=0.8, num_classes=num_classes),
            dict(type='CutmixBlending', alpha=1.0, num_classes=num_classes)
        ])))

# configs/_base_/datasets/recognition_kinetics710.py's data (mmengine cannot swap a base of a
# base, so the paths are stated here; the pipelines are the Kinetics-400 ones)
data_root = 'data/kinetics710'
ann_file_train = f'{data_root}/kinetics710_train_list_videos.txt'
ann_file_val = f'{data_root}/kinetics710_val_list_videos.txt'
ann_file_test = ann_file_val
train_dataloader = dict(
    dataset=dict(ann_file=ann_file_train, data_prefix=dict(video=f'{data_root}/videos')))
val_dataloader = dict(
    dataset=dict(ann_file=ann_file_val, data_prefix=dict(video=f'{data_root}/videos')))
test_dataloader = dict(
    dataset=dict(ann_file=ann_file_test, data_prefix=dict(video=f'{data_root}/videos')))
