# FineAction clip features (VideoMAE V2 release: 16-frame clips at stride 16, [T, 1408]),
# class-agnostic, every video linearly resized to 192 steps (ActionFormer ANet-style case 2).
data_root = 'data/fineaction'
ann_file = 'annotations/fineaction.json'
feat_dir = 'features/fineaction_mae_g'
seq_len = 192

train_pipeline = [
    dict(type='LoadTADFeatures'),
    dict(type='ResizeTADFeatures', seq_len=seq_len),
    dict(type='DropOutsideTADSegments', trunc_thresh=0.5),
    dict(type='PackTADInputs'),
]
test_pipeline = [
    dict(type='LoadTADFeatures'),
    dict(type='ResizeTADFeatures', seq_len=seq_len),
    dict(type='PackTADInputs'),
]

dataset_type = 'FineActionFeatureDataset'
train_dataloader = dict(
    batch_size=16, num_workers=4, persistent_workers=True, drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file=ann_file,
                 feat_dir=feat_dir, subset='training', class_agnostic=True,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file=ann_file,
                 feat_dir=feat_dir, subset='validation', class_agnostic=True, test_mode=True,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='TADmAPMetric', ann_file=f'{data_root}/{ann_file}',
                     subset='validation', class_agnostic=True,
                     tious=[0.5 + 0.05 * i for i in range(10)])
test_evaluator = val_evaluator
