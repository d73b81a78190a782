"""ghost-engine: streaming one-shot face swapping with the published GHOST networks."""

__version__ = "0.1.0"
