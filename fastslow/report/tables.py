"""Every terminal table fastslow prints, built from the results' dicts: the commands only
choose which to show."""

from __future__ import annotations

import math
from typing import Any

from rich.table import Table

from fastslow.report.units import format_bytes, format_rate, format_seconds


def _table(title: str, columns: list[str], left: tuple[str, ...] = ()) -> Table:
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c, justify="left" if c in left else "right")
    return t


def stats_table(title: str, rows: list[dict[str, Any]], param_names: list[str]) -> Table:
    """One row per bench point: params, latency distribution, throughput, memory, error."""
    t = Table(title=title, title_justify="left")
    for name in param_names:
        t.add_column(name, justify="right")
    for col in ("median", "IQR", "p10", "p90", "p99", "n", "items/s", "peak mem"):
        t.add_column(col, justify="right")
    for r in rows:
        params = [str(r["params"].get(n, "")) for n in param_names]
        s = r.get("stats")
        if s is None:
            t.add_row(*params, "[red]failed[/red]", *["-"] * 7)
            continue
        mark = " [yellow]![/yellow]" if r.get("warnings") else ""
        t.add_row(
            *params, format_seconds(s["median_s"]) + mark, format_seconds(s["iqr_s"]),
            format_seconds(s["p10_s"]), format_seconds(s["p90_s"]), format_seconds(s["p99_s"]),
            str(s["n"]), format_rate(r.get("throughput_per_s")),
            format_bytes(r.get("peak_mem_bytes")),
        )
    return t


def compare_table(rows: list[tuple[str, dict[str, Any]]]) -> Table:
    """(label, stats) for A and B."""
    t = _table("interleaved comparison", ["", "median", "IQR", "p10", "p90", "n"])
    for label, s in rows:
        t.add_row(label, format_seconds(s["median_s"]), format_seconds(s["iqr_s"]),
                  format_seconds(s["p10_s"]), format_seconds(s["p90_s"]), str(s["n"]))
    return t


def devices_table(found: list[dict[str, Any]]) -> Table:
    t = _table("devices", ["device", "name", "details"], left=("device", "name", "details"))
    for d in found:
        details = {k: v for k, v in d.items() if k not in ("device", "name")}
        if "memory_bytes" in details:
            details["memory_bytes"] = format_bytes(details["memory_bytes"])
        if "isa_flags" in details:
            details["isa_flags"] = " ".join(details["isa_flags"])
        t.add_row(d["device"], d["name"], "\n".join(f"{k}: {v}" for k, v in details.items()))
    return t


def peaks_table(peaks: list[Any]) -> Table:
    t = _table("measured peaks", ["device", "what", "dtype", "rate", "size", "median", "threads"])
    for p in peaks:
        rate = format_rate(p.value, "FLOP/s" if p.kind == "matmul" else "B/s")
        size = f"{p.size}²" if p.kind == "matmul" else format_bytes(p.size)
        t.add_row(p.device, p.kind, p.dtype, rate, size, format_seconds(p.median_s), str(p.threads or "-"))
    return t


def history_table(path: Any, runs: list[Any]) -> Table:
    cols = ["id", "when (UTC)", "command", "spec", "status", "summary", "device", "threads", "commit"]
    t = _table(f"runs in {path}", cols, left=tuple(cols))
    for r in runs:
        status = {"killed": "[red]killed[/red]", "running": "[yellow]running[/yellow]",
                  "failed": "[red]failed[/red]"}.get(r.status, r.status)
        t.add_row(str(r.id), r.created_at[:19].replace("T", " "), r.command, r.spec or "-", status,
                  r.summary, str(r.env.get("device", "-")), str(r.env.get("threads", "-")),
                  (r.env.get("git_commit") or "-")[:12])
    return t


def zoo_table(entries: list[Any]) -> Table:
    cols = ["spec", "inputs", "defaults", "description"]
    t = _table("zoo", cols, left=tuple(cols))
    for e in entries:
        t.add_row(f"zoo:{e.name}", " ".join(e.inputs), " ".join(f"{k}={v}" for k, v in e.defaults.items()),
                  e.description)
    return t


def format_count(n: float) -> str:
    """A count (FLOPs, MACs) with an SI prefix; 0 as 0."""
    return format_rate(n) if n else "0"


def cost_table(rows: list[Any], total_flops: int, roofline: list[Any] | None) -> Table:
    cols = ["module", "type", "params", "FLOPs", "share", "bytes", "FLOP/B"]
    if roofline:
        cols += ["bound", "lower bound", "measured", "of peak"]
    t = _table("by module (cumulative over submodules)", cols, left=("module", "type"))
    for i, m in enumerate(rows):
        indent = "  " * (m.name.count(".") + 1 if m.name else 0)
        cells = [indent + (m.name or "(model)"), m.type, f"{m.params:,}", format_count(m.flops),
                 f"{100 * m.flops / total_flops:.1f}%" if total_flops else "-", format_bytes(m.bytes),
                 f"{m.flops / m.bytes:.2f}" if m.bytes else "-"]
        if roofline:
            r = roofline[i]
            cells += [r.bound, format_seconds(r.lower_bound_s), format_seconds(r.measured_s),
                      f"{100 * r.share_of_peak:.1f}%" if r.share_of_peak is not None else "-"]
        t.add_row(*cells)
    return t


def arch_table(entries: list[dict[str, Any]], batch: int, threads: int) -> Table:
    t = _table(f"architectures at batch {batch}, {threads} thread(s)",
               ["model", "family", "params", "GFLOPs", "median", "IQR", "n", "items/s"], left=("model", "family"))
    for e in entries:
        t.add_row(e["spec"], e["family"], f"{e['params'] / 1e6:.1f} M", f"{e['flops'] / 1e9:.1f}",
                  format_seconds(e["median_s"]), format_seconds(e["iqr_s"]), str(e["n"]),
                  f"{e['throughput_per_s']:.1f}")
    return t


def steps_table(steps: list[tuple[str, Any]]) -> Table:
    t = _table("optimization steps", ["step", "what it does"], left=("step", "what it does"))
    for name, s in steps:
        t.add_row(name, s.help)
    return t


def optimize_table(report: Any, title: str) -> Table:
    cols = ["variant", "verdict", "latency", "vs fp32 eager", "95% CI", "size", "params", "accuracy", "max |diff|",
            "reason"]
    t = _table(title, cols, left=("variant", "verdict", "reason"))
    b = report.baseline
    t.add_row(("* " if b["pareto"] else "  ") + "baseline (fp32 eager)", "-", format_seconds(b["median_s"]), "1.00",
              "", format_bytes(b["size_bytes"]), f"{b['params']:,}", f"{100 * b['accuracy']:.2f}%", "", "")
    for v in report.variants:
        colour = "green" if v.verdict == "accepted" else "red"
        t.add_row(("* " if v.pareto else "  ") + v.name, f"[{colour}]{v.verdict}[/{colour}]",
                  format_seconds(v.median_s), f"{v.latency_ratio:.2f}" if v.latency_ratio else "-",
                  f"{v.ci95[0]:.2f}-{v.ci95[1]:.2f}" if v.ci95 else "", format_bytes(v.size_bytes),
                  f"{v.params:,}" if v.params is not None else "-",
                  f"{100 * v.accuracy:.2f}%" if v.accuracy is not None else "-",
                  f"{v.max_abs_diff:.2g}" if v.max_abs_diff is not None else "-", v.reason)
    return t


def life_networks_table(rows: list[dict[str, Any]], out: str) -> Table:
    """One row per network from `life train`: network, params, epochs, accuracy."""
    t = _table("life networks", ["network", "params", "epochs", "accuracy (512 neighbourhoods)", "checkpoint"])
    for r in rows:
        t.add_row(r["network"], str(r["params"]), str(r["epochs"]), f"{100 * r['accuracy']:.1f}%",
                  f"{out}/{r['network']}.pt")
    return t


def search_table(tried: list[Any]) -> Table:
    t = _table("candidates, fewest parameters first", ["embed", "hidden", "params", "exact seeds", "best accuracy",
                                                        "time"])
    for c in tried:
        t.add_row(str(c.embed), str(c.hidden), str(c.params), f"{c.exact_seeds}/{c.seeds}",
                  f"{100 * c.best_accuracy:.2f}%", f"{c.seconds:.1f} s")
    return t


def tpugraphs_files_table(files: list[dict[str, Any]], title: str) -> Table:
    t = _table(title, ["file", "collection", "split", "nodes", "edges", "configs", "labelled"],
               left=("file", "collection", "split"))
    for r in files:
        name = r["path"].rsplit("/", 1)[-1]
        if r["error"]:
            t.add_row(name, r["collection"], r["split"], "[red]bad[/red]", "-", "-", "-")
        else:
            t.add_row(name, r["collection"], r["split"], f"{r['nodes']:,}", f"{r['edges']:,}", f"{r['configs']:,}",
                      "yes" if r["labelled"] else "no")
    return t


def ranking_files_table(files: list[dict[str, Any]], informative_k: list[str], limit: int = 15) -> Table:
    """Per-file ranking metrics: the order metrics, and the top-K slowdowns that carry information
    (worst first by the first of them, else by Kendall's tau)."""
    key = (lambda f: -f["slowdown"][informative_k[0]]) if informative_k else (lambda f: f["kendall_tau"])
    worst = f"worst top-{informative_k[0]} slowdown first" if informative_k else "lowest Kendall tau first"
    t = _table(f"per file ({worst})", ["file", "configs", "Kendall tau", "pair accuracy",
                                       *[f"slowdown@{k}" for k in informative_k]], left=("file",))
    for f in sorted(files, key=key)[:limit]:
        pair = f"{f['pair_accuracy']:.3f}" if f.get("pair_accuracy") is not None else "-"
        t.add_row(f["file"], str(f["configs"]), f"{f['kendall_tau']:.3f}", pair,
                  *[f"{f['slowdown'][k]:.4f}" for k in informative_k])
    return t


# The latency predictor's methods as a reader knows them.
PREDICTOR_METHODS = {"gnn": "graph network", "roofline": "roofline regression", "operator-sum": "operator sum"}
SCORE_COLUMNS = ["within ±10%", "within ±20%", "RMSPE", "Kendall tau", "top-1 slowdown", "top-1 ≤5%"]


def _percent(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def _tau(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.3f}"


def _score_cells(s: dict[str, Any]) -> list[str]:
    return [_percent(s["within_10"]), _percent(s["within_20"]), _percent(s["rmspe"]), _tau(s.get("kendall_tau")),
            _percent(s["top1_slowdown"]), _percent(s["top1_within_5"])]


def predictor_scores_table(title: str, by_method: dict[str, dict[str, Any]]) -> Table:
    """One row per method (the network and both baselines) on the same models."""
    t = _table(title, ["method", "models", "predictions", *SCORE_COLUMNS], left=("method",))
    for method, s in by_method.items():
        t.add_row(PREDICTOR_METHODS.get(method, method), str(s["models"]), str(s["pairs"]), *_score_cells(s))
    return t


def family_scores_table(families: dict[str, dict[str, dict[str, Any]]],
                        unseen: dict[str, list[str]] | None = None) -> Table:
    """Leave one family out: per held-out family, each method's scores; under the table, the
    operator kinds a family has that no other family had (the network never trained on them)."""
    t = _table("held-out families (trained on every other family)", ["family", "method", "models", *SCORE_COLUMNS],
               left=("family", "method"))
    for family, by_method in families.items():
        for i, (method, s) in enumerate(by_method.items()):
            t.add_row(family if i == 0 else "", PREDICTOR_METHODS.get(method, method), str(s["models"]),
                      *_score_cells(s))
    if unseen:
        t.caption = "operators no other family has: " + "; ".join(
            f"{family}: {', '.join(ops)}" for family, ops in unseen.items())
        t.caption_justify = "left"
    return t


PART_NAMES = {"threads": "thread count"}  # a configuration part as a title names it (else by its own name)


def part_scores_table(part: str, by_value: dict[str, dict[str, Any]], noise_by_value: dict[str, Any]) -> Table:
    """Per value of a configuration part (its runtime, its thread count): how often each method's
    held-out predictions, and the collection's repeated measurements, fall within ±10%: where the
    noise floor is low, no method can score high."""
    methods = list(next(iter(by_value.values()))) if by_value else []
    t = _table(f"within ±10% per {PART_NAMES.get(part, part)} (held-out models of seen families)",
               [part, "predictions", *[PREDICTOR_METHODS.get(m, m) for m in methods], "noise floor", "ceiling",
                "repeats"], left=(part,))
    for value, by_method in by_value.items():
        n = noise_by_value.get(value) or {"pairs": 0, "within_10": math.nan, "ceiling_10": math.nan}
        t.add_row(value, str(next(iter(by_method.values()))["pairs"]),
                  *[_percent(s["within_10"]) for s in by_method.values()], _percent(n["within_10"]),
                  _percent(n["ceiling_10"]), str(n["pairs"]))
    return t


def noise_table(noise: dict[str, Any]) -> Table:
    """How often repeated measurements agree, and (estimated from them) how often a predictor that
    is right on average would land within ±10% / ±20% of one measurement: the most any can score."""
    t = _table("noise floor (the same models, timed twice)",
               ["repeats", "pairs", "agree within ±10%", "within ±20%", "RMSPE", "ceiling ±10%", "ceiling ±20%"],
               left=("repeats",))
    rows = [("all", noise)]
    if "steady" in noise:  # both times with the speed reference near its usual time: nothing disturbing the machine
        rows.append((f"machine steady (reference within {noise['steady']['within']:g})", noise["steady"]))
    for label, n in rows:
        t.add_row(label, str(n["pairs"]), _percent(n["within_10"]), _percent(n["within_20"]), _percent(n["rmspe"]),
                  _percent(n["ceiling_10"]), _percent(n["ceiling_20"]))
    return t


def ranking_floor_table(ranking: dict[str, Any]) -> Table:
    """The repeated models' second measurements scored as the prediction of their first: how well
    measuring again ranks models and picks the best configuration (not a ceiling, see
    fastslow.predict.evaluate.ranking_floor)."""
    t = _table("noise floor: a second measurement as the predictor",
               ["models", "Kendall tau", "top-1 slowdown", "top-1 ≤5%"])
    t.add_row(str(ranking["models"]), _tau(ranking["kendall_tau"]), _percent(ranking["top1_slowdown"]),
              _percent(ranking["top1_within_5"]))
    return t


def predictions_table(title: str, predictions: list[dict[str, Any]], measured: list[dict[str, Any]] | None,
                      best: dict[str, Any]) -> Table:
    """Per configuration: predicted time per call and per item, and with --verify the time as
    timed, the measurement at the predictor's speed and the prediction's error against it; the
    predicted best is marked."""
    cols = ["batch", "threads", "layout", "runtime", "predicted", "per item"]
    if measured is not None:
        cols += ["timed", "measured", "error"]
    t = _table(title, cols, left=("layout", "runtime"))
    seen = {_config_key(m["config"]): m for m in measured or []}
    for p in sorted(predictions, key=lambda p: p["latency_s"] / p["config"]["batch"]):
        c = p["config"]
        mark = " [green]*[/green]" if c == best["config"] else ""
        cells = [str(c["batch"]), str(c["threads"]), "channels_last" if c["channels_last"] else "contiguous",
                 c["runtime"] + mark, format_seconds(p["latency_s"]), format_seconds(p["latency_s"] / c["batch"])]
        if measured is not None:
            m = seen.get(_config_key(c))
            cells += ["-", "-", "-"] if m is None else [
                format_seconds(m["timed_s"]), format_seconds(m["latency_s"]),
                f"{100 * (p['latency_s'] / m['latency_s'] - 1):+.1f}%"]
        t.add_row(*cells)
    return t


def _config_key(c: dict[str, Any]) -> tuple[Any, ...]:
    return c["batch"], c["threads"], c["channels_last"], c["runtime"]
