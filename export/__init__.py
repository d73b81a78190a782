"""Export of the engine's networks to ONNX and TensorRT."""
