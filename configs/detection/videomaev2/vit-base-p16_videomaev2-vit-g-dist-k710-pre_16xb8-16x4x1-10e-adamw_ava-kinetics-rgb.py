# VideoMAE V2 ViT-B AVA-Kinetics detector (train: AVA v2.2 + Kinetics clips, test: AVA v2.2
# val): the AVA v2.2 recipe (same model, schedule and checkpoint: paper Table 12 is identical
# for both) on the AVA-Kinetics data; only the dataset base differs.
_base_ = [
    '../../_base_/models/videomaev2_ava.py', '../../_base_/datasets/ava_kinetics.py',
    '../../_base_/schedules/ava_adamw_layer_decay_10e.py', '../../_base_/default_runtime.py'
]

model = dict(
    backbone=dict(
        arch='base',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/vit_b_k710_dl_from_giant.pth')),
    roi_head=dict(bbox_head=dict(in_channels=768)))

# the runtime base owns default_hooks, so this is stated here (mmengine forbids a key in two
# bases)
default_hooks = dict(checkpoint=dict(max_keep_ckpts=2, save_best='mAP/overall'))
