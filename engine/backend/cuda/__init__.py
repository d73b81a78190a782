"""The CUDA backend: frames stay on the GPU from decode to the encoder's hand-off.

`context` says where arrays live (CuPy on a GPU; numpy when emulated on the CPU for
tests), `kernel_set` which image kernels run on them, `frames` the reusable buffers,
`decode` NVDEC (or PyAV plus upload), `image_ops` the swap stage's image work on device
frames, `download` the copy back to pinned host memory, and `pipeline` the threads.
"""
