"""The streaming pipeline: stages in threads joined by bounded queues."""
