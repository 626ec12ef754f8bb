"""The seeded corpus: varied, reproducible, every sample named by family, runnable and capturable."""

import torch

from fastslow.predict.capture import capture
from fastslow.predict.corpus import FAMILIES, corpus, sample


def test_every_family_runs_and_is_captured():
    assert set(FAMILIES) == {"cnn-plain", "cnn-residual", "cnn-depthwise", "cnn-se", "mlp", "transformer", "rnn"}
    for s in corpus(2):
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
    assert [s.family for s in corpus(1)] == FAMILIES.names()
