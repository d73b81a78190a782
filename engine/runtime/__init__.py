"""How networks run: ONNX Runtime sessions, the PyTorch ONNX runner and its CUDA graphs,
TensorRT engines, the devices they run on and the measured runtime defaults.

Nothing here knows about frames or faces; the backend (`ghost_engine.backend`) opens
sessions through this package, and the face stages only call what it opened.
"""
