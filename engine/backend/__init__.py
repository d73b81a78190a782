"""The one place that turns a device name into the machinery that runs on it."""
