"""Export of the engine's networks to ONNX and TensorRT.

The route is PyTorch -> ONNX (fp32, then an fp16 variant with fp32 inputs and outputs)
-> TensorRT engine. `ghost_engine.export.exporter.export_model` runs it end to end;
`ghost_engine.export.onnx_runtime.OnnxModel` and
`ghost_engine.export.tensorrt_runtime.TrtEngine` run the results. TensorRT is an
optional extra and is imported only when an engine is built or run.
"""
