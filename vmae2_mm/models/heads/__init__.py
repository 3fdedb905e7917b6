from .videomaev2_head import VideoMAEv2Head
from .actionformer_head import ActionFormerHead  # noqa: E402

__all__ = ['VideoMAEv2Head', 'ActionFormerHead']
