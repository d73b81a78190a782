"""Export of the engine's networks to ONNX and TensorRT.

The route is PyTorch -> ONNX (fp32, then an fp16 variant with fp32 inputs and outputs)
-> TensorRT engine. `ghost_engine.export.exporter.export_model` runs it end to end;
`ghost_engine.runtime.onnx_model.OnnxModel` and
`ghost_engine.runtime.tensorrt.TrtEngine` run the results. TensorRT is an
optional extra and is imported only when an engine is built or run.
"""
