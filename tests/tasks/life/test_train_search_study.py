import io

import pytest
import torch

from fastslow.cost.counter import params_of
from fastslow.errors import UserError
from fastslow.measure.timer import TimerConfig
from fastslow.tasks.life.play import play, render
from fastslow.tasks.life.search import find_min_predictor, verify_exact
from fastslow.tasks.life.study import PREDICTORS, LifeModels, run_study
from fastslow.tasks.life.train import (
    LifeTrainConfig,
    accuracy_on_all,
    load_checkpoint,
    save_checkpoint,
    train_life,
)
from fastslow.zoo import resolve_model
from fastslow.zoo.life import fc_net, min_net, percell_net

FAST = TimerConfig(warmup_s=0.0, warmup_calls=1, min_time_s=0.0, max_time_s=0.02, min_samples=2)


@pytest.fixture(scope="module")
def trained() -> LifeModels:
    percell, fc = percell_net(), fc_net()
    assert train_life(percell).accuracy == 1.0
    assert train_life(fc).accuracy == 1.0
    return LifeModels(percell, fc, min_net())


def test_notebook_architectures():
    assert params_of(percell_net()) == (9 * 85 + 85) + (85 * 10 + 10) + (10 + 1)
    assert params_of(fc_net()) == params_of(percell_net())


def test_training_is_deterministic_and_checkpoints_round_trip(tmp_path):
    a, b = percell_net(), percell_net()
    ra = train_life(a, LifeTrainConfig(seed=3))
    rb = train_life(b, LifeTrainConfig(seed=3))
    assert ra.epochs == rb.epochs and ra.accuracy == 1.0
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert ra.history[-1]["loss"] < ra.history[0]["loss"]
    save_checkpoint(tmp_path / "p.pt", "percell", a, ra, LifeTrainConfig(seed=3))
    kind, loaded = load_checkpoint(tmp_path / "p.pt")
    assert kind == "percell" and accuracy_on_all(loaded) == 1.0
    (tmp_path / "bad.pt").write_bytes(b"junk")
    with pytest.raises(UserError, match="checkpoint .*bad.pt: cannot be loaded"):
        load_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(UserError, match="'epochs' must be >= 1"):
        LifeTrainConfig(epochs=0)


def test_search_rejects_too_small_and_finds_an_exact_network():
    result = find_min_predictor(seeds=16, epochs=1500, candidates=[(1, 1), (1, 2)])
    too_small, found = result.tried
    assert too_small.exact_seeds == 0 and too_small.best_accuracy < 1.0  # one ReLU cannot make a bump
    assert result.model is not None and (result.embed, result.hidden) == (1, 2)
    assert params_of(result.model) == 17 and verify_exact(result.model)


def test_shipped_min_network_is_exact_and_in_the_zoo():
    net = min_net(fast=False)
    assert params_of(net) <= 23 and verify_exact(net)
    fast = resolve_model("zoo:life-min").model
    assert verify_exact(fast)


def test_study_checks_every_predictor(trained):
    result = run_study(trained, sizes=(1, 4, 16), threads=1, timer=FAST, loop_max_cells=16,
                       check_size=8, untrained_fc=fc_net().eval())
    rows = result.to_dict()["rows"]
    assert {r["predictor"] for r in rows} == set(PREDICTORS)
    measured = [r for r in rows if r["median_s"] is not None]
    assert all(r["accuracy"] == 1.0 for r in measured)
    skipped = [r for r in rows if r["error"]]
    assert {(r["predictor"], r["size"]) for r in skipped} == {("rule_cell", 16), ("percell_loop", 16)}
    assert all(r["estimated_s"] > 0 for r in skipped)
    assert "fc" in result.fits and result.fit is result.fits["fc"]
    assert {c["verdict"] for c in result.checks} <= {"faster", "slower", "indistinguishable"}
    assert len(result.checks) == 2
    with pytest.raises(UserError, match="'predictors' value 'nope' is unknown"):
        run_study(trained, predictors=("nope",))


def test_an_untrained_network_is_caught_by_the_check(trained):
    wrong = LifeModels(trained.percell, fc_net().eval(), trained.min)
    bad = play(wrong, "fc", size=16, steps=5, check=True, draw=False)
    assert bad.first_mismatch == 1 and bad.mismatched_cells > 0
    good = play(trained, "min", size=16, steps=5, check=True, draw=False)
    assert good.first_mismatch is None and good.steps == 5 and len(good.predict_s) == 5


def test_render_draws_two_rows_per_line():
    g = torch.zeros(4, 3)
    g[0, 0] = g[1, 1] = g[0, 2] = g[1, 2] = 1
    assert render(g, 80, 24).splitlines()[0] == "▀▄█"
    out = io.StringIO()
    play(LifeModels(None, None, min_net()), "min", size=6, steps=2, interval_s=0, out=out)  # type: ignore[arg-type]
    assert "gen 2/2" in out.getvalue()
