from .videomaev2_distiller import VideoMAEv2Distiller, to_recognizer_keys

__all__ = ['VideoMAEv2Distiller', 'to_recognizer_keys']
