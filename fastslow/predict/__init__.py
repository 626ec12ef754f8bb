"""How fast will it be without running it: latency predictors learned from fastslow's own measurements."""
