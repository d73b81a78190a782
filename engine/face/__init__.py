"""Face analysis: detection, alignment, identity, tracking, smoothing, masks, paste-back."""
