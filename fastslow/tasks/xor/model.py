from __future__ import annotations

from torch import nn

from fastslow.zoo import register_model


@register_model("xor", inputs=("Bx2",), defaults={"B": 32})
def xor_net(hidden: int = 4) -> nn.Sequential:
    """The tutorial's 2-4-1 classifier: tanh hidden layer, one logit out."""
    return nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, 1))
