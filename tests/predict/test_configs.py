"""Configurations: which apply to which model, their features, and that each runs the same model."""

import numpy as np
import pytest
import torch

from fastslow.errors import UserError
from fastslow.measure.timer import threads_set_to
from fastslow.predict.configs import CONFIG_FEATS, Config, configs_for, runnable
from fastslow.predict.corpus import sample


def test_which_configurations_apply():
    cnn, mlp = sample("cnn-plain", 0), sample("mlp", 0)
    c_cnn = configs_for(cnn.build(), cnn.input_shape)
    c_mlp = configs_for(mlp.build(), mlp.input_shape)
    assert any(c.channels_last for c in c_cnn) and not any(c.channels_last for c in c_mlp)
    assert any(c.runtime == "int8-dynamic" for c in c_mlp)  # a Linear to quantize
    assert not any(c.channels_last and c.runtime == "onnx" for c in c_cnn)
    assert len({c.features().tobytes() for c in c_cnn}) == len(c_cnn)  # each configuration is distinct
    assert all(c.features().shape == (CONFIG_FEATS,) and c.features().dtype == np.float32 for c in c_cnn)
    t = sample("transformer", 0)  # Linear layers hold its weights, but torch's fast path cannot run them int8
    assert not any(c.runtime == "int8-dynamic" for c in configs_for(t.build(), t.input_shape))
    with pytest.raises(UserError, match="'runtime' value 'tvm' is unknown"):
        Config(runtime="tvm")


@pytest.mark.parametrize("family", ["cnn-se", "mlp"])
def test_every_configuration_computes_the_same_answer(family):
    s = sample(family, 1)
    torch.manual_seed(0)
    model = s.build().eval()
    x = torch.randn(4, *s.input_shape)
    with torch.inference_mode():
        expected = model(x)
    for config in configs_for(model, s.input_shape, batches=(4,), threads=(1,)):
        with threads_set_to(config.threads), torch.inference_mode():
            out = torch.as_tensor(runnable(model, x, config)())
        tolerance = 0.3 if config.runtime == "int8-dynamic" else 1e-4
        assert torch.allclose(out.float(), expected, atol=tolerance, rtol=0), config
