"""Configurations: which apply to which model, their features, and that each runs the same model."""

import numpy as np
import pytest
import torch

from fastslow.errors import UserError
from fastslow.measure.timer import threads_set_to
from fastslow.predict.configs import CONFIG_FEATS, Config, Runners, configs_for, runnable
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


def test_onnx_configurations_of_one_thread_count_share_one_session():
    # Sessions timed in turn each keep a pool of spinning threads that slow the others (Runners'
    # docstring): every batch size runs on the thread count's one session, dynamic batch intact.
    s = sample("mlp", 0)
    torch.manual_seed(0)
    model = s.build().eval()
    runners = Runners(model, s.input_shape)
    try:
        outs = {b: runners(Config(b, 2, runtime="onnx"))() for b in (1, 4)}
        assert list(runners._sessions) == [2]
        runners(Config(1, 1, runtime="onnx"))
        assert sorted(runners._sessions) == [1, 2]
        with torch.inference_mode():
            for b, out in outs.items():
                assert torch.allclose(torch.as_tensor(out), model(runners.example(b)), atol=1e-4), b
    finally:
        runners.close()
    assert not runners._sessions and runners._onnx is None
