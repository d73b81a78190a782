"""CUDA twins of the CPU kernels (Numba CUDA on CuPy arrays); imported lazily."""
