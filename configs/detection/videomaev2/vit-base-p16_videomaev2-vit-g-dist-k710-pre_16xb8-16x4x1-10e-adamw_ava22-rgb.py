# VideoMAE V2 ViT-B AVA v2.2 detector with the paper's recipe (arXiv 2303.16727, Table 12, in
# the schedule base; 16 GPUs x 8 = batch 128), drop path 0.3, flip; GT boxes for training,
# person proposals for testing. Initialised from the K710-distilled ViT-B
# (OpenGVLab/VideoMAE2 `distill/vit_b_k710_dl_from_giant.pth`); a pre-trained checkpoint
# (`encoder.` keys) loads the same way.
_base_ = [
    '../../_base_/models/videomaev2_ava.py', '../../_base_/datasets/ava_v2.2.py',
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
