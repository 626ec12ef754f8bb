"""fastslow: how fast is a PyTorch model, why, how to make it faster, and how fast it will be
without running it."""

__version__ = "0.1.0"
