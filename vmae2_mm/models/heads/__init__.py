from .videomaev2_head import VideoMAEv2Head

__all__ = ['VideoMAEv2Head']
