"""The notebook's two life networks and the small exact one, registered in the zoo.

All three output a logit per cell (alive when > 0), so they share one training loop and
one way of turning outputs into a next generation.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from fastslow.errors import UserError
from fastslow.optimize.convert import to_shift_convs
from fastslow.zoo import register_model

HIDDEN = 85  # the notebook's first layer width
HIDDEN2 = 10  # its second
MIN_WEIGHTS = Path(__file__).with_name("life_min.pt")  # shipped result of `fastslow life search`


@register_model("life-percell", inputs=("Bx1x3x3",), defaults={"B": 1})
def percell_net() -> nn.Sequential:
    """Per-cell predictor: one 3x3 neighbourhood in, the centre's next-state logit out."""
    return nn.Sequential(
        nn.Conv2d(1, HIDDEN, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(HIDDEN, HIDDEN2), nn.ReLU(), nn.Linear(HIDDEN2, 1),
    )


@register_model("life-fc", inputs=("Bx1xHxW",), defaults={"B": 1, "H": 64, "W": 64})
def fc_net() -> nn.Sequential:
    """Fully-convolutional predictor: a whole grid in, a logit per cell out."""
    return nn.Sequential(
        nn.Conv2d(1, HIDDEN, 3, padding=1), nn.ReLU(),
        nn.Conv2d(HIDDEN, HIDDEN2, 1), nn.ReLU(),
        nn.Conv2d(HIDDEN2, 1, 1),
    )


def small_net(embed: int, hidden: int) -> nn.Sequential:
    """The family the minimum-size search walks: [3x3 conv to `embed` channels, linear] ->
    1x1 conv to `hidden` -> ReLU -> 1x1 conv to one logit. embed=0 drops the first layer
    (a 3x3 conv straight to `hidden`)."""
    if embed == 0:
        return nn.Sequential(nn.Conv2d(1, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, 1, 1))
    return nn.Sequential(
        nn.Conv2d(1, embed, 3, padding=1), nn.Conv2d(embed, hidden, 1), nn.ReLU(),
        nn.Conv2d(hidden, 1, 1),
    )


@register_model("life-min", inputs=("Bx1xHxW",), defaults={"B": 1, "H": 64, "W": 64})
def min_net(weights: str | None = None, fast: bool = True) -> nn.Module:
    """The smallest exact predictor found by `fastslow life search`, tiny convs as shifts."""
    from fastslow.specs import load_torch_file

    path = Path(weights) if weights else MIN_WEIGHTS
    ckpt = load_torch_file(path, "life-min weights")
    try:
        net = small_net(int(ckpt["embed"]), int(ckpt["hidden"]))
        net.load_state_dict(ckpt["state_dict"])
    except (KeyError, TypeError, RuntimeError) as e:
        raise UserError(f"life-min weights {path}: not a `life search` result ({type(e).__name__}: {e})") from None
    net.eval()
    return to_shift_convs(net) if fast else net

