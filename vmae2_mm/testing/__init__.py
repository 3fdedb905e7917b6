"""Generated data in the real file formats (mp4s, frame folders, annotation files) for the tests,
the demo and ``tools/make_synthetic_data.py``; not imported by the library."""
