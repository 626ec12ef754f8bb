"""The case studies as functions: the Game-of-Life networks (train, study, search), the
continuous-XOR tutorial, and `demo`, the whole pipeline `make demo` runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fastslow.api.measure import Store, store_whole
from fastslow.cost.counter import params_of
from fastslow.env import environment, others_cpu_percent
from fastslow.errors import UserError
from fastslow.measure.timer import TimerConfig, threads_set_to
from fastslow.store.db import Record
from fastslow.store.recorder import Saved, open_store
from fastslow.tasks.life.search import SearchResult, find_min_predictor, save_min
from fastslow.tasks.life.study import LifeModels, StudyResult, run_study
from fastslow.tasks.life.train import LifeTrainConfig, LifeTrainResult, load_checkpoint, train_both
from fastslow.tasks.xor import XorConfig, XorResult, train_xor
from fastslow.zoo.life import fc_net, min_net, to_shift_convs

EpochHook = Callable[[str, int, float, float], None]


@dataclass
class LifeTrainRun:
    trained: dict[str, tuple[nn.Module, LifeTrainResult]]
    percell_as_fc_max_abs_diff: float
    out: Path | None
    saved: Saved | None = field(default=None, repr=False)

    def rows(self) -> list[dict[str, Any]]:
        return [{"network": k, "params": params_of(m), "epochs": r.epochs, "accuracy": r.accuracy}
                for k, (m, r) in self.trained.items()]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {k: r.to_dict() for k, (_, r) in self.trained.items()}
        d["percell_as_fc_max_abs_diff"] = self.percell_as_fc_max_abs_diff
        d["out"] = str(self.out) if self.out else None
        return d


def life_train(cfg: LifeTrainConfig | None = None, out: str | Path | None = "runs/life", *, store: Store = True,
               on_epoch: EpochHook | None = None) -> LifeTrainRun:
    """Train the per-cell and fully-convolutional networks on all 512 neighbourhoods (checkpoints and
    curves under `out`), and check the per-cell net made fully convolutional against itself."""
    from fastslow.report.plots import plot_training_curves
    from fastslow.tasks.life.convert import predict_per_window_batched, to_fully_convolutional
    from fastslow.tasks.life.rules import random_grid

    cfg = cfg or LifeTrainConfig()
    db = open_store(store)
    out_dir = Path(out) if out is not None else None
    trained = train_both(cfg, out_dir, on_epoch=on_epoch)
    if out_dir is not None:
        plot_training_curves(out_dir / "curves.png", {k: r.history for k, (_, r) in trained.items()},
                             "life networks on all 512 neighbourhoods")
    percell = trained["percell"][0]
    grid = random_grid(64, seed=cfg.seed)[None, None]
    with torch.inference_mode():
        diff = float((to_fully_convolutional(percell, (3, 3))(grid)
                      - predict_per_window_batched(percell, grid, (3, 3))).abs().max())
    run = LifeTrainRun(trained, diff, out_dir)
    exact = all(r.accuracy == 1.0 for _, r in trained.values())
    run.saved = store_whole(db, Record(
        "life train", None, {"config": vars(cfg), "out": str(out_dir)}, environment(), run.to_dict(),
        "ok" if exact else "partial", ", ".join(f"{k} {r.accuracy:.3f}" for k, (_, r) in trained.items())))
    return run


def life_models(models_dir: str | Path | None = None, min_weights: str | None = None, *, seed: int = 0,
                on_epoch: EpochHook | None = None) -> LifeModels:
    """The trained per-cell and fc networks (from a `life train` folder, or trained now) and the
    smallest exact one (shipped, or from `life search`)."""
    if models_dir:
        nets = {}
        for kind in ("percell", "fc"):
            path = Path(models_dir) / f"{kind}.pt"
            loaded_kind, model = load_checkpoint(path)
            if loaded_kind != kind:
                raise UserError(f"checkpoint {path}: holds a {loaded_kind} network")
            nets[kind] = model
    else:
        nets = {k: m for k, (m, _) in train_both(LifeTrainConfig(seed=seed), None, on_epoch=on_epoch).items()}
    return LifeModels(nets["percell"], nets["fc"], min_net(min_weights) if min_weights else min_net())


def life_study(models: LifeModels, *, sizes: tuple[int, ...], predictors: tuple[str, ...], threads: int = 1,
               loop_max_cells: int = 4096, timer: TimerConfig | None = None, seed: int = 0, store: Store = True,
               on_row: Callable[[Any], None] | None = None) -> StudyResult:
    """Time every predictor over grid sizes, check each against the exact rule, fit the scaling
    exponents, and test trained-vs-untrained and data independence."""
    db = open_store(store)
    others_cpu_percent(refresh=True)
    torch.manual_seed(seed + 1)
    untrained = fc_net().eval()
    result = run_study(models, sizes=sizes, predictors=predictors, threads=threads, loop_max_cells=loop_max_cells,
                       timer=timer or TimerConfig.preset("study"), untrained_fc=untrained, on_row=on_row)
    result.saved = store_whole(db, Record("life study", None, {"sizes": sizes, "predictors": predictors,
                                                               "threads": threads}, environment(threads=threads),
                                          result.to_dict(), "ok", f"{len(result.rows)} rows"))
    return result


def life_search(*, seeds: int = 32, epochs: int = 3000, seed: int = 0, out: str | Path | None = None,
                threads: int = 1, store: Store = True, on_candidate: Callable[[Any], None] | None = None
                ) -> SearchResult:
    """The smallest network right on all 512 neighbourhoods (a width search, on `threads` torch
    threads), saved to `out`."""
    if seeds < 1 or epochs < 1:
        raise UserError(f"'seeds' and 'epochs' must be >= 1 (got {seeds}, {epochs})")
    if threads < 1:
        raise UserError(f"'threads' must be >= 1 (got {threads})")
    db = open_store(store)
    with threads_set_to(threads):
        result = find_min_predictor(seeds=seeds, epochs=epochs, seed=seed, on_candidate=on_candidate)
    payload = result.to_dict()
    if result.model is not None and out is not None:
        save_min(Path(out), result)
        payload["out"] = str(out)
    result.saved = store_whole(db, Record(
        "life search", None, {"seeds": seeds, "epochs": epochs, "seed": seed, "threads": threads},
        environment(threads=threads), payload,
        "ok" if result.model is not None else "failed",
        f"{payload['params']} params" if result.model is not None else "no exact network"))
    return result


def xor_train(cfg: XorConfig | None = None, out: str | Path | None = "runs/xor", *, store: Store = True,
              on_epoch: Callable[[int, float], None] | None = None) -> XorResult:
    """Train the tutorial's 2-4-1 tanh classifier on continuous XOR; checkpoint under `out`."""
    cfg = cfg or XorConfig()
    db = open_store(store)
    result = train_xor(cfg, on_epoch=on_epoch)
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        torch.save({"state_dict": result.model.state_dict(), "config": vars(cfg)}, Path(out) / "xor.pt")
    result.saved = store_whole(db, Record("xor train", "zoo:xor", vars(cfg), environment(), result.to_dict(), "ok",
                                          f"test accuracy {result.test_accuracy:.3f}"))
    return result


@dataclass
class DemoResult:
    trained: dict[str, tuple[nn.Module, LifeTrainResult]]
    search: SearchResult
    study: StudyResult
    xor: XorResult
    peaks: list[Any]
    report: Path
    predictor: Any = None  # fastslow.api.predict.DemoPredictor
    saved: Saved | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        lp = self.predictor
        return {"life_train": {k: r.to_dict() for k, (_, r) in self.trained.items()}, "search": self.search.to_dict(),
                "study": self.study.to_dict(), "xor": self.xor.to_dict(), "peaks": [p.to_dict() for p in self.peaks],
                "predictor": None if lp is None else {"collect": lp.collected.to_dict(), "train": lp.trained.to_dict(),
                                                      "predict": lp.prediction.to_dict()},
                "report": str(self.report.resolve())}


def demo(out: str | Path = "fastslow-report", *, sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
         search_seeds: int = 32, threads: int = 1, matmul_size: int | None = None, predictor_models: int = 4,
         store: Store = True, say: Callable[[str], None] = lambda s: None, on_epoch: EpochHook | None = None,
         on_candidate: Callable[[Any], None] | None = None, on_row: Callable[[Any], None] | None = None
         ) -> DemoResult:
    """The main job: train the life predictors, find the smallest exact one, run a reduced study,
    train XOR, measure the device peaks, make a small latency predictor for this machine
    (`predictor_models` of each of four families; 0 leaves it out), and write an HTML report to
    `out`/index.html. Everything runs on `threads` torch threads."""
    if predictor_models < 0:
        raise UserError(f"'predictor_models' must be >= 0 (got {predictor_models})")
    with threads_set_to(threads):
        return _demo(out, sizes=sizes, search_seeds=search_seeds, threads=threads, matmul_size=matmul_size,
                     predictor_models=predictor_models, store=store, say=say, on_epoch=on_epoch,
                     on_candidate=on_candidate, on_row=on_row)


def _demo(out: str | Path, *, sizes: tuple[int, ...], search_seeds: int, threads: int, matmul_size: int | None,
          predictor_models: int, store: Store, say: Callable[[str], None], on_epoch: EpochHook | None,
          on_candidate: Callable[[Any], None] | None, on_row: Callable[[Any], None] | None) -> DemoResult:
    from fastslow.measure.devices import list_devices, measure_peaks
    from fastslow.report.html import Section, write_report
    from fastslow.report.plots import plot_decision_boundary, plot_training_curves
    from fastslow.report.study import plot_study, study_sections
    from fastslow.report.units import format_rate

    if threads < 1:
        raise UserError(f"'threads' must be >= 1 (got {threads})")
    started = time.perf_counter()
    db = open_store(store)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = environment(threads=threads)
    sections = []

    say("[bold]1/6[/bold] training the life networks on all 512 neighbourhoods")
    trained = train_both(LifeTrainConfig(), out_dir / "life", on_epoch=on_epoch)
    plot_training_curves(out_dir / "life_curves.png", {k: r.history for k, (_, r) in trained.items()},
                         "life networks")
    sections.append(Section("Game of Life: training").table(
        [{"network": k, "params": params_of(m), "epochs": r.epochs, "accuracy": r.accuracy}
         for k, (m, r) in trained.items()]).image(out_dir / "life_curves.png", "training curves"))

    say("[bold]2/6[/bold] searching for the smallest exact predictor")
    found = find_min_predictor(seeds=search_seeds, on_candidate=on_candidate)
    if found.model is None:
        raise UserError("the width search found no exact network; rerun with more search seeds")
    save_min(out_dir / "life" / "life_min.pt", found)
    sections.append(Section("Smallest exact predictor (width search)").text(
        f"Found: {params_of(found.model)} parameters (a 3x3 convolution to {found.embed} channel(s), a 1x1 to "
        f"{found.hidden}, ReLU, a 1x1 to one logit); checked on all 512 neighbourhoods and on random grids against "
        "the exact rule. Its tiny convolutions run as shifted adds (to_shift_convs).").table(
        [c.to_dict() for c in found.tried]))

    say(f"[bold]3/6[/bold] timing every predictor over grid sides {list(sizes)}")
    others_cpu_percent(refresh=True)
    models = LifeModels(trained["percell"][0], trained["fc"][0], to_shift_convs(found.model))
    torch.manual_seed(1)  # the untrained fc network's weights
    study = run_study(models, sizes=sizes, predictors=("rule_cell", "rule_numpy", "rule_torch", "percell_loop",
                                                       "percell_batched", "fc", "min"),
                      threads=threads, timer=TimerConfig.preset("demo"), untrained_fc=fc_net().eval(),
                      loop_max_cells=32 * 32, on_row=on_row)
    plot_study(out_dir / "life_study.png", study.to_dict())
    sections.append(study_sections(study.to_dict(), out_dir / "life_study.png"))
    store_whole(db, Record("life study", None, {"sizes": sizes, "threads": threads, "demo": True}, env,
                           study.to_dict(), "ok", f"{len(study.rows)} rows"))

    say("[bold]4/6[/bold] training the continuous-XOR classifier")
    xr = train_xor(XorConfig())
    x, y = xr.test.tensors  # type: ignore[union-attr]
    plot_decision_boundary(out_dir / "xor.png", xr.model, x.numpy(), y.numpy(),
                           f"test accuracy {100 * xr.test_accuracy:.1f}%")
    sections.append(Section("Continuous XOR (2-4-1 tanh)").table([xr.to_dict()]).image(out_dir / "xor.png", "xor"))

    say("[bold]5/6[/bold] measuring device peaks (matmul FLOP/s, copy bandwidth)")
    devices = list_devices()
    peaks = [p for d in devices for p in measure_peaks(d["device"], threads=threads, matmul_size=matmul_size)]
    if db is not None:
        db.add_peaks(peaks, host=env["host"])
    sections.append(Section("Devices and measured peaks").table(
        [{"device": d["device"], "name": d["name"]} for d in devices]).table(
        [{"device": p.device, "what": p.kind, "dtype": p.dtype,
          "rate": format_rate(p.value, "FLOP/s" if p.kind == "matmul" else "B/s"), "median_s": p.median_s,
          "threads": p.threads} for p in peaks]))

    lp = None
    if predictor_models:
        say("[bold]6/6[/bold] a latency predictor for this machine: a short collection, training, a prediction")
        from fastslow.api.predict import demo_predictor

        lp = demo_predictor(out_dir, per_family=predictor_models, threads=threads,
                            store=db.path if db is not None else False, say=say)
        sections.append(predictor_section(lp))

    summary = demo_summary(found, study.to_dict(), xr, peaks, threads, time.perf_counter() - started, lp)
    report = write_report(out_dir / "index.html", "fastslow demo report", sections, env, summary)
    result = DemoResult(trained, found, study, xr, peaks, report, lp)
    result.saved = store_whole(db, Record("demo", None, {"out": str(out_dir), "sizes": sizes, "threads": threads},
                                          env, result.to_dict(), "ok", f"report {report}"))
    return result


def predictor_section(lp: Any) -> Any:
    """The demo's latency predictor: how it was made, its held-out scores beside the baselines, the
    prediction of zoo:convnet against its measurement, and the scatter plot."""
    from fastslow.report.html import Section
    from fastslow.report.tables import PREDICTOR_METHODS

    t = lp.trained
    rows = [{"method": PREDICTOR_METHODS[k], "models": s["models"], "within ±10%": f"{100 * s['within_10']:.0f}%",
             "within ±20%": f"{100 * s['within_20']:.0f}%", "RMSPE": f"{100 * s['rmspe']:.0f}%",
             "Kendall tau": f"{s['kendall_tau']:.2f}", "top-1 slowdown": f"{100 * s['top1_slowdown']:.1f}%"}
            for k, s in t.held_out.items()]
    measured = dict(lp.prediction.measured or [])
    pred_rows = [{"configuration": c.describe(), "predicted_s": p, "measured_s": measured.get(c),
                  "error": f"{100 * (p / measured[c] - 1):+.0f}%" if c in measured else "-"}
                 for c, p in sorted(lp.prediction.predictions, key=lambda x: x[1] / x[0].batch)]
    return (Section("Latency predictor for this machine (a short demo run)").text(
        f"Measured {lp.collected.total_models} corpus models under their configurations (batch, layout, runtime) on "
        f"this machine, trained the graph network on {t.trained} of them in {t.seconds:.0f} s and kept {t.held} out; "
        "the two baselines are fitted on the same data. A demo collection is far too small for good predictions: "
        "`fastslow predictor collect --minutes 30` makes a real one.").table(rows).text(
        f"zoo:convnet, predicted without running it (best: {lp.prediction.best[0].describe()}), then measured:"
    ).table(pred_rows).image(lp.plot, "predicted against measured"))


def demo_summary(found: SearchResult, study: dict[str, Any], xor: XorResult, peaks: list[Any], threads: int,
                 seconds: float, predictor: Any | None = None) -> list[tuple[str, str]]:
    """The report's headline figures, one line each."""
    from fastslow.report.output import describe_fit
    from fastslow.report.units import format_rate, format_seconds

    out = []
    rows = {(r["predictor"], r["size"]): r for r in study["rows"] if r["median_s"]}
    sides = sorted({size for (name, size) in rows if name == "min" and ("rule_torch", size) in rows})
    line = f"{params_of(found.model)} parameters, exact on all 512 neighbourhoods and on random grids"
    if sides:
        side = sides[-1]
        mine, rule = rows[("min", side)]["median_s"], rows[("rule_torch", side)]["median_s"]
        line += (f"; at {side}x{side} it takes {format_seconds(mine)} per generation against "
                 f"{format_seconds(rule)} for the exact rule in PyTorch ({mine / rule:.2g}x)")
    out.append(("Smallest exact network", line))
    for name in ("fc", "min"):
        if name in study["fits"]:
            out.append((f"Scaling of {name}", describe_fit(study["fits"][name])))
    out.append(("Continuous XOR", f"test accuracy {100 * xor.test_accuracy:.1f}% on {len(xor.test.tensors[0])} "
                                  "points (the tutorial reports 100%)"))
    for p in peaks:
        if (p.kind, p.dtype) in (("matmul", "float32"), ("matmul", "bfloat16"), ("bandwidth", "float32")):
            unit = "FLOP/s" if p.kind == "matmul" else "B/s"
            out.append((f"Peak {p.kind} {p.dtype} ({p.device})", f"{format_rate(p.value, unit)} on {p.threads} "
                                                                 f"thread{'s' if p.threads != 1 else ''}"))
    if predictor is not None and predictor.trained.held_out:
        t, s = predictor.trained, predictor.trained.held_out
        out.append(("Latency predictor", f"{t.trained} models trained, {t.held} held out: "
                                         f"{100 * s['gnn']['within_20']:.0f}% of held-out predictions within ±20% "
                                         f"(operator sum {100 * s['operator-sum']['within_20']:.0f}%, roofline "
                                         f"{100 * s['roofline']['within_20']:.0f}%)"))
    out.append(("This report", f"made in {seconds:.0f} s on {threads} thread{'s' if threads != 1 else ''}"))
    return out
