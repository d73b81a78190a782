"""Realtime swapping from a camera: latest-frame capture, causal stages, live controls."""
