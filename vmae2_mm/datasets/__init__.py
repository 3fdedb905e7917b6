from .video_dataset_checked import BadVideoError, VideoDatasetChecked

__all__ = ['VideoDatasetChecked', 'BadVideoError']
