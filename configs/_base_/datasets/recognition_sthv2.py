# Something-Something V2: official VideoMAE V2 fine-tuning data pipeline, i.e. the Kinetics-400
# one with TSN-style sampling (UniformSample: 16 segments, one frame each) and no flip.
# mmaction2's UniformSample test offsets (1/3, 2/3 of a segment) differ slightly from
# the official ones (0, 1/2).
# Train: 2 repeated augmentations per decoded video (RepeatAugDataset, official num_sample 2),
# clip-consistent RandAugment rand-m7-n4-mstd0.5-inc1, RandomResizedCrop (area 0.08-1, ratio
# 3/4-4/3) -> 224 bicubic, random erasing 0.25 (per-pixel normal noise around the mean,
# the 0-255 equivalent of timm's 'pixel' mode). Val: one centre crop. Test: short side 224,
# 2 temporal offsets x 3 crops (TSN-style 16-segment sampling), softmax per view then average
# (head average_clips='prob').
_base_ = ['./recognition_kinetics400.py']

data_root = 'data/sthv2'
ann_file_train = 'data/sthv2/sthv2_train_list_videos.txt'
ann_file_val = 'data/sthv2/sthv2_val_list_videos.txt'
ann_file_test = 'data/sthv2/sthv2_val_list_videos.txt'

# the Kinetics pipelines with SampleFrames -> UniformSample (same clip_len / num_clips /
# test_mode); no Flip: left/right matters for Something-Something (official: no flip for SSv2)
train_pipeline = [
    dict(type='UniformSample', clip_len=16, num_clips=1) if t['type'] == 'SampleFrames' else t
    for t in _base_.train_pipeline if t['type'] != 'Flip'
]
val_pipeline = [
    dict(type='UniformSample', clip_len=16, num_clips=1, test_mode=True)
    if t['type'] == 'SampleFrames' else t for t in _base_.val_pipeline
]
test_pipeline = [
    dict(type='UniformSample', clip_len=16, num_clips=2, test_mode=True)
    if t['type'] == 'SampleFrames' else t for t in _base_.test_pipeline
]

train_dataloader = dict(
    dataset=dict(ann_file=ann_file_train, data_prefix=dict(video='data/sthv2/videos'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(ann_file=ann_file_val, data_prefix=dict(video='data/sthv2/videos'),
                 pipeline=val_pipeline))
test_dataloader = dict(
    dataset=dict(ann_file=ann_file_test, data_prefix=dict(video='data/sthv2/videos'),
                 pipeline=test_pipeline))
