"""The seeded corpus: varied, reproducible, every sample named by family, runnable and capturable."""

import pytest
import torch

from fastslow.cost.counter import count_cost
from fastslow.errors import UserError
from fastslow.predict.capture import capture
from fastslow.predict.corpus import (
    CNN_MAX_MACS,
    FAMILIES,
    LARGE_MACS,
    SYNTHETIC,
    _cnn_macs,
    corpus,
    family_size,
    sample,
)


def test_every_family_runs_and_is_captured():
    assert set(FAMILIES) >= {*SYNTHETIC, "zoo", "torchvision", "timm"}  # tests may register throw-away ones
    assert set(SYNTHETIC) == {"cnn-plain", "cnn-residual", "cnn-depthwise", "cnn-se", "cnn-large", "mlp", "transformer",
                              "rnn"}
    for s in corpus(1):
        model = s.build().eval()
        x = torch.randn(2, *s.input_shape)
        with torch.inference_mode():
            out = model(x)
        assert out.shape[0] == 2 and torch.isfinite(out).all(), s.name
        g = capture(model, (x,), name=s.name)
        assert g.nodes > 2 and g.flops > 0, s.name
        assert s.to_dict()["family"] == s.family and s.name.startswith(s.family)


def test_samples_are_reproducible_and_varied():
    a, b = sample("cnn-residual", 7), sample("cnn-residual", 7)
    assert a.params == b.params and a.input_shape == b.input_shape
    torch.manual_seed(0)
    wa = a.build().state_dict()
    torch.manual_seed(0)
    wb = b.build().state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert len({str(sample("transformer", s).params) for s in range(20)}) >= 15
    assert [s.family for s in corpus(1)] == list(SYNTHETIC)


def test_convolutional_samples_stay_within_their_cost_and_the_estimate_is_the_count():
    for s in corpus(6, ["cnn-plain", "cnn-residual", "cnn-depthwise", "cnn-se"]):
        x = torch.randn(1, *s.input_shape)
        macs = count_cost(s.build().eval(), (x,)).macs
        assert macs <= CNN_MAX_MACS * 1.02, s.name
        assert abs(_cnn_macs(s.family[4:], s.params) - macs) <= 0.02 * macs, s.name  # convolutions are nearly all
    large = corpus(8, ["cnn-large"])
    for s in large[:3]:
        macs = count_cost(s.build().eval(), (torch.randn(1, *s.input_shape),)).macs
        assert LARGE_MACS[0] < macs <= LARGE_MACS[1] * 1.02 and s.input_shape[1] >= 112, s.name
        assert abs(_cnn_macs(s.params["block"], s.params) - macs) <= 0.02 * macs, s.name
    assert len({s.params["block"] for s in large}) >= 3  # one kind of block per sample, all kinds in the family
    assert sample("cnn-large", 2).params == sample("cnn-large", 2).params


@pytest.mark.slow
def test_every_library_member_runs_at_its_size():
    # a size a model cannot take (dla46_c at 48 px concatenates maps of 2 and 3 pixels) is a
    # member every collection fails on
    for family in ("torchvision", "timm"):
        for i in range(family_size(family)):
            s = sample(family, i)
            with torch.no_grad():
                s.build().eval()(torch.randn(1, *s.input_shape))


def test_families_of_fixed_members_end_and_never_repeat():
    for family in ("zoo", "torchvision", "timm"):
        n = family_size(family)
        members = [str(sample(family, i).params) for i in range(n)]
        assert len(set(members)) == n, family
        with pytest.raises(UserError, match=f"family '{family}' has {n} members"):
            sample(family, n)
    assert len([s for s in corpus(100, ["zoo"])]) == family_size("zoo")
    zoo = [sample("zoo", i) for i in range(family_size("zoo"))]
    assert {s.params["model"] for s in zoo} >= {"convnet", "mlp", "xor"}
