# THUMOS14 clip features (ActionFormer JSON; train on `validation`, test on `test`),
# VideoMAE V2 release: 16-frame clips at stride 4, features [T, 1408] per video.
data_root = 'data/thumos14'
ann_file = 'annotations/thumos14.json'
feat_dir = 'features/th14_mae_g_16_4'
train_len = 2304

train_pipeline = [
    dict(type='LoadTADFeatures'),
    dict(type='RandomTruncateTADFeatures', max_seq_len=train_len, trunc_thresh=0.5,
         crop_ratio=(0.9, 1.0)),
    dict(type='PackTADInputs'),
]
test_pipeline = [dict(type='LoadTADFeatures'), dict(type='PackTADInputs')]

dataset_type = 'Thumos14FeatureDataset'
train_dataloader = dict(
    batch_size=2, num_workers=2, persistent_workers=True, drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file=ann_file,
                 feat_dir=feat_dir, subset='validation', num_classes=20,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file=ann_file,
                 feat_dir=feat_dir, subset='test', num_classes=20, test_mode=True,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='TADmAPMetric', ann_file=f'{data_root}/{ann_file}', subset='test',
                     tious=(0.3, 0.4, 0.5, 0.6, 0.7))
test_evaluator = val_evaluator
