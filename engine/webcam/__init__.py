"""Realtime swapping from a camera: latest-frame capture, causal stages, live controls.

- `slot`: the one-slot "latest frame wins" buffer between capture and the loop;
- `capture`: OpenCV cameras and URLs, video files played at their own rate;
- `live_stage`: the face-swap stage with a switchable source, live mask blur, stamps;
- `hold`: the last good swap held for a few frames when the face is lost;
- `loop`: `run_live`, the loop itself; `latency`: per-frame records and the report;
- `controls`, `control_server`: live controls from keys or HTTP on 127.0.0.1;
- `sinks`: window, virtual camera, file and stream outputs;
- `bench`: `measure`, the webcam-style run of the GPU check script.
"""
