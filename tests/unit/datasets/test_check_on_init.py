"""``check_on_init`` of RecognitionVideoDataset on real video variants (PyAV-written): a
damaged middle, a too-short and a variable-frame-rate video are found when the dataset is built,
not at the first validation; a rotated phone video decodes upright."""
import pytest

pytest.importorskip('decord')
pytest.importorskip('av')

from vmae2_mm.datasets import BadVideoError, RecognitionVideoDataset  # noqa: E402
from vmae2_mm.testing.video_variants import write_variants  # noqa: E402

NAMES = ['h264_bframes', 'rotate90', 'vfr', 'corrupt_middle', 'one_frame']
PIPELINE = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=4, frame_interval=2, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]


@pytest.fixture(scope='module')
def ann(tmp_path_factory):
    root = tmp_path_factory.mktemp('probe_variants')
    variants = write_variants(str(root), NAMES)
    path = root / 'list.txt'
    path.write_text(''.join(f"{variants[n]['path']} {i}\n" for i, n in enumerate(NAMES)))
    return str(path)


def _names(ds):
    return [ds.get_data_info(i)['filename'].rsplit('/', 1)[-1] for i in range(len(ds))]


def test_check_on_init_drops_bad_and_flags_vfr(ann):
    ds = RecognitionVideoDataset(ann, PIPELINE, check_on_init=True, test_mode=True)
    assert _names(ds) == ['h264_bframes.mp4', 'rotate90.mp4', 'vfr.mp4']
    assert len(ds.bad_videos) == 2
    # opening succeeds (header and index are intact); decoding the middle frame does not
    assert 'corrupt_middle.mp4: ' in ds.bad_videos[0] and 'middle' in ds.bad_videos[0]
    assert 'one_frame.mp4: ' in ds.bad_videos[1] and 'shorter than the clip' in ds.bad_videos[1]
    assert len(ds.vfr_videos) == 1 and 'vfr.mp4: variable frame rate' in ds.vfr_videos[0]
    assert ds[1]['inputs'].shape == (1, 3, 4, 160, 96)  # rotation applied: upright frames


def test_vfr_policy_and_fail_fast(ann):
    strict = RecognitionVideoDataset(ann, PIPELINE, check_on_init=True, test_mode=True,
                                     on_vfr='error')
    assert _names(strict) == ['h264_bframes.mp4', 'rotate90.mp4']
    assert 'vfr.mp4: variable frame rate' in strict.bad_videos[0]
    quiet = RecognitionVideoDataset(ann, PIPELINE, check_on_init=True, test_mode=True,
                                    on_vfr='ignore')
    assert quiet.vfr_videos == [] and len(quiet) == 3
    with pytest.raises(BadVideoError, match='corrupt_middle.mp4'):
        RecognitionVideoDataset(ann, PIPELINE, check_on_init=True, on_bad_video='error')
