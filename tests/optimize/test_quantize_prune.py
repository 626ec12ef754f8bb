import pytest
import torch
from torch import nn

from fastslow.cost.counter import state_dict_size_bytes
from fastslow.errors import UserError
from fastslow.optimize import prune as P
from fastslow.optimize.quantize import dynamic_int8, quantization_error, quantize_tensor, static_int8
from fastslow.tasks.digits import digits_data
from fastslow.zoo import create_model
from fastslow.zoo.models import digits_cnn


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8])
def test_per_tensor_affine_quantization(dtype):
    x = torch.linspace(-1.5, 3.0, 101)
    q = quantize_tensor(x, dtype)
    info = torch.iinfo(dtype)
    assert q.values.dtype == dtype
    assert int(q.values.min()) >= info.min and int(q.values.max()) <= info.max
    assert q.scale == pytest.approx(4.5 / (info.max - info.min))
    assert float(quantize_tensor(torch.zeros(3), dtype).dequantize().abs().max()) == 0.0
    zero = int(torch.round(torch.tensor(0.0) / q.scale)) + q.zero_point
    assert q.dequantize()[x == 0].tolist() == [] or zero == q.zero_point
    err = (q.dequantize() - x).abs().max()
    assert err <= q.scale / 2 + 1e-6
    e = quantization_error(x, dtype)
    assert e["max_abs_error"] == pytest.approx(float(err)) and e["rms_error"] <= e["max_abs_error"]


def test_dynamic_int8_shrinks_a_linear_heavy_model_and_stays_close():
    torch.manual_seed(0)
    mlp = create_model("mlp").eval()
    q = dynamic_int8(mlp)
    assert "Quantized" in type(q[0]).__module__ + type(q[0]).__name__ or "quantized" in type(q[0]).__module__
    x = torch.randn(8, 256)
    with torch.no_grad():
        assert (q(x) - mlp(x)).abs().max() < 0.05
    assert state_dict_size_bytes(q) <= 0.30 * state_dict_size_bytes(mlp)


def test_static_int8_is_calibrated_and_agrees_with_float():
    torch.manual_seed(0)
    data = digits_data(0)
    model = digits_cnn(0.25).eval()
    q = static_int8(model, data)
    x = data.test.tensors[0][:128]
    with torch.no_grad():
        agree = (q(x).argmax(-1) == model(x).argmax(-1)).float().mean()
    assert agree > 0.9
    assert state_dict_size_bytes(q) < state_dict_size_bytes(model)


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 20), nn.ReLU(),
                         nn.Linear(20, 4))


def test_l1_per_layer_type_amounts_and_permanent():
    pruned = P.prune_unstructured(_net(), "l1")
    P.make_permanent(pruned)
    conv, lin = pruned[0].weight, pruned[3].weight
    assert int((conv == 0).sum()) == round(0.2 * conv.numel())
    assert int((lin == 0).sum()) == round(0.4 * lin.numel())
    assert not any(n.endswith("_orig") for n, _ in pruned.named_parameters())
    assert not pruned[0]._forward_pre_hooks


def test_global_and_random_amounts():
    g = P.make_permanent(P.prune_unstructured(_net(), "global", 0.5))
    assert P.sparsity(g) == pytest.approx(0.5, abs=0.01)
    r = P.make_permanent(P.prune_unstructured(_net(), "random", 0.3))
    assert int((r[3].weight == 0).sum()) == round(0.3 * r[3].weight.numel())
    with pytest.raises(UserError, match="between 0 and 1"):
        P.prune_unstructured(_net(), "l1", 1.5)


def test_compact_sparse_format_round_trips_and_is_smaller():
    model = P.make_permanent(P.prune_unstructured(_net(), "global", 0.5))
    state = model.state_dict()
    compact = P.to_compact(state)
    back = P.from_compact(compact)
    assert set(back) == set(state) and all(torch.equal(back[k], state[k]) for k in state)
    dense = P.serialized_size(state)
    assert P.serialized_size(compact) < 0.75 * dense
    coo = {k: v.to_sparse() if v.dim() > 1 else v for k, v in state.items()}
    assert P.serialized_size(coo) > dense  # why COO is not used


def test_structured_pruning_removes_channels_for_real():
    model = digits_cnn().eval()
    x = torch.randn(2, 1, 8, 8)
    pruned = P.prune_structured(model, x, 0.5)
    assert sum(p.numel() for p in pruned.parameters()) <= 0.6 * sum(p.numel() for p in model.parameters())
    assert pruned[0].out_channels == 16 and pruned[-1].out_features == 10
    assert pruned(x).shape == (2, 10)
