# Something-Something V1: the Something-Something V2 fine-tuning pipeline (recognition_sthv2.py:
# TSN-style UniformSample of 16 segments, RandAugment m7-n4, RandomResizedCrop -> 224 bicubic,
# random erasing 0.25, no flip; test 2 temporal offsets x 3 crops, softmax then average) on
# SSv1's JPEG frame folders. 174 classes.
# SSv1 ships as one folder per video with frames `00001.jpg`, `00002.jpg`, ..., so the data is
# mmaction2's RawframeDataset (list lines `folder total_frames label`, as mmaction2's
# `sthv1_{train,val}_list_rawframes.txt`), start_index 1, filename_tmpl '{:05}.jpg', and
# RawFrameDecode replaces DecordInit + DecordDecode.
# Deviation from the SSv2 recipes: mmaction2's RepeatAugDataset decodes only videos (it requires
# DecordInit / DecordDecode), so training has no repeated augmentation: each optimizer step sees
# the same number of videos and the same lr, but one augmented view of each instead of two.
_base_ = ['./recognition_sthv2.py']

dataset_type = 'RawframeDataset'
data_root = 'data/sthv1'
ann_file_train = 'data/sthv1/sthv1_train_list_rawframes.txt'
ann_file_val = 'data/sthv1/sthv1_val_list_rawframes.txt'
ann_file_test = 'data/sthv1/sthv1_val_list_rawframes.txt'
frames_prefix = 'data/sthv1/rawframes'
filename_tmpl = '{:05}.jpg'


def _frames(pipeline):
    """The video pipeline with RawFrameDecode in place of DecordInit + DecordDecode."""
    return [dict(type='RawFrameDecode', io_backend='disk') if t['type'] == 'DecordDecode' else t
            for t in pipeline if t['type'] != 'DecordInit']


train_pipeline = _frames(_base_.train_pipeline)
val_pipeline = _frames(_base_.val_pipeline)
test_pipeline = _frames(_base_.test_pipeline)
del _frames  # a function is not a config value

_frames_dataset = dict(type=dataset_type, data_prefix=dict(img=frames_prefix),
                       filename_tmpl=filename_tmpl, start_index=1)
train_dataloader = dict(
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(_delete_=True, ann_file=ann_file_train, pipeline=train_pipeline,
                 **_frames_dataset))
val_dataloader = dict(
    dataset=dict(_delete_=True, ann_file=ann_file_val, pipeline=val_pipeline, test_mode=True,
                 **_frames_dataset))
test_dataloader = dict(
    dataset=dict(_delete_=True, ann_file=ann_file_test, pipeline=test_pipeline,
                 test_mode=True, **_frames_dataset))
del _frames_dataset
