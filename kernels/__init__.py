"""Per-pixel image kernels: CPU (numpy/OpenCV/Numba) and CUDA (Numba on CuPy) twins."""
