"""Video and image input/output through PyAV (FFmpeg)."""
