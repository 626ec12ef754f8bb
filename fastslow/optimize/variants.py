"""The registry of optimization steps, and pipelines built from them.

A pipeline is steps joined by '+', each `name` or `name:argument`; a list of pipelines is
comma-separated: `prune-structured:0.5+finetune,int8-dynamic`. Every step maps a `Candidate`
to a new one; steps that need a torch module get one (the pruning masks of earlier steps are
made permanent first), and a step that leaves torch (onnx, compile) ends what can follow.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from fastslow.errors import UserError
from fastslow.optimize import prune as P
from fastslow.optimize import quantize as Q
from fastslow.optimize import runtime as R
from fastslow.tasks.base import Predict, Task, TaskData, TrainConfig


@dataclass
class Candidate:
    name: str
    predict: Predict
    module: nn.Module | None  # the torch module, while the variant still is one
    float_module: nn.Module  # the float structure it came from (params and FLOPs are counted on it)
    size_bytes: int | None = None  # set when the artefact is not a plain state dict (sparse, ONNX)
    notes: dict[str, Any] = field(default_factory=dict)
    masked: bool = False  # carries pruning masks not yet made permanent


@dataclass
class Context:
    task: Task
    data: TaskData
    baseline: nn.Module
    example: torch.Tensor  # a batch of inputs at the judged batch size
    threads: int | None = 1


Step = Callable[[Candidate, Context, str | None], Candidate]


@dataclass(frozen=True)
class StepSpec:
    fn: Step
    help: str
    needs_module: bool = True


STEPS: dict[str, StepSpec] = {}


def register_step(name: str, help: str, needs_module: bool = True) -> Callable[[Step], Step]:
    def wrap(fn: Step) -> Step:
        STEPS[name] = StepSpec(fn, help, needs_module)
        return fn
    return wrap


def _float_arg(arg: str | None, default: float | None, step: str) -> float | None:
    if arg is None:
        return default
    try:
        return float(arg)
    except ValueError:
        raise UserError(f"step '{step}:{arg}': argument must be a number") from None


def _module_candidate(prev: Candidate, module: nn.Module, float_module: nn.Module | None = None, **notes: Any
                      ) -> Candidate:
    module.eval()
    return Candidate(prev.name, module, module, float_module or module, None, {**prev.notes, **notes})


@register_step("int8-dynamic", "int8 weights, activations quantized at run time (Linear, LSTM, GRU)")
def _int8_dynamic(c: Candidate, ctx: Context, arg: str | None) -> Candidate:
    return _module_candidate(c, Q.dynamic_int8(c.module), c.float_module)


@register_step("int8-static", "int8 weights and activations, calibrated (FX graph mode, x86 backend)")
def _int8_static(c: Candidate, ctx: Context, arg: str | None) -> Candidate:
    return _module_candidate(c, Q.static_int8(c.module, ctx.data), c.float_module)


@register_step("qat", "quantization-aware fine-tuning (argument: epochs, default 3), then int8")
def _qat(c: Candidate, ctx: Context, arg: str | None) -> Candidate:
    epochs = int(_float_arg(arg, 3, "qat") or 3)
    return _module_candidate(c, Q.qat_int8(c.module, ctx.task, ctx.data, epochs), c.float_module)


def _unstructured(method: str, default: float | None) -> Step:
    def step(c: Candidate, ctx: Context, arg: str | None) -> Candidate:
        pruned = P.prune_unstructured(c.module, method, _float_arg(arg, default, f"prune-{method}"))
        out = _module_candidate(c, pruned)
        out.masked = True
        return out
    return step


register_step("prune-random", "random unstructured (argument: amount; default conv 0.2 / linear 0.4)")(
    _unstructured("random", None))
register_step("prune-l1", "L1 unstructured per layer (argument: amount; default conv 0.2 / linear 0.4)")(
    _unstructured("l1", None))
register_step("prune-global", "L1 unstructured over all layers together (argument: amount, default 0.5)")(
    _unstructured("global", 0.5))


@register_step("prune-structured", "remove channels for real with Torch-Pruning (argument: ratio, default 0.5)")
def _structured(c: Candidate, ctx: Context, arg: str | None) -> Candidate:
    ratio = _float_arg(arg, 0.5, "prune-structured") or 0.5
    return _module_candidate(c, P.prune_structured(c.module, ctx.example[:1], ratio))


@register_step("finetune", "train further with the task's loop (argument: epochs, default 5)")
def _finetune(c: Candidate, ctx: Context, arg: str | None) -> Candidate:
    epochs = int(_float_arg(arg, 5, "finetune") or 5)
    cfg = ctx.task.train_config
    model = ctx.task.train(c.module, ctx.data, TrainConfig(epochs=epochs, lr=cfg.lr / 2, batch_size=cfg.batch_size,
                                                          seed=cfg.seed))
    out = _module_candidate(c, model)
    out.masked = c.masked
    return out


# A small student trained twice as long: soft targets help most where capacity is short, and
# they act as a regulariser that needs the extra epochs (measured on digits: see the benchmark).
STUDENT_WIDTH = 0.25
STUDENT_EPOCHS_FACTOR = 2


def _student(distilled: bool) -> Step:
    def step(c: Candidate, ctx: Context, arg: str | None) -> Candidate:
        if ctx.task.make_student is None:
            raise UserError(f"task {ctx.task.name} has no student model (Task.make_student)")
        width = _float_arg(arg, STUDENT_WIDTH, "distill" if distilled else "student") or STUDENT_WIDTH
        cfg = ctx.task.train_config
        torch.manual_seed(cfg.seed)
        student = ctx.task.make_student(width)
        teacher = c.predict if distilled else None
        longer = TrainConfig(cfg.epochs * STUDENT_EPOCHS_FACTOR, cfg.lr, cfg.batch_size, cfg.seed, cfg.weight_decay)
        ctx.task.train(student, ctx.data, longer, teacher=teacher)
        return _module_candidate(c, student, student_width=width, distilled=distilled)
    return step


register_step("distill", "a smaller student trained on the model's soft targets (T=4, alpha=0.9; argument: "
                         "width, default 0.25)")(
    _student(True))
register_step("student", "the same student trained without the teacher, for comparison (argument: width)")(
    _student(False))


@register_step("compile", "torch.compile (inductor); reports compile time and break-even calls")
def _compile(c: Candidate, ctx: Context, arg: str | None) -> Candidate:
    fn, seconds = R.compiled(c.module, ctx.example)
    return Candidate(c.name, fn, None, c.float_module, None, {**c.notes, "compile_s": seconds})


def _precision(dtype: torch.dtype) -> Step:
    def step(c: Candidate, ctx: Context, arg: str | None) -> Candidate:
        predict = R.low_precision(c.module, dtype, ctx.example)
        size = P.serialized_size(copy.deepcopy(c.module).to(dtype).state_dict())
        return Candidate(c.name, predict, None, c.float_module, size, dict(c.notes))
    return step


register_step("bf16", "weights and activations in bfloat16")(_precision(torch.bfloat16))
register_step("fp16", "weights and activations in float16")(_precision(torch.float16))


@register_step("channels-last", "NHWC memory layout for convolutions")
def _channels_last(c: Candidate, ctx: Context, arg: str | None) -> Candidate:
    return Candidate(c.name, R.channels_last(c.module), None, c.float_module, None, dict(c.notes))


@register_step("onnx", "export to ONNX and run in ONNX Runtime (outputs checked against PyTorch)")
def _onnx(c: Candidate, ctx: Context, arg: str | None) -> Candidate:
    predict, info = R.onnx_session(c.module, ctx.example, ctx.threads)
    with torch.inference_mode():
        diff = float((predict(ctx.example) - c.module(ctx.example)).abs().max())
    return Candidate(c.name, predict, None, c.float_module, info["size_bytes"],
                     {**c.notes, "export_s": info["export_s"], "onnx_path": info["path"],
                      "onnx_vs_torch_max_abs_diff": diff})


LEAVES_TORCH = {"compile", "onnx", "bf16", "fp16", "channels-last"}
KEEPS_MASKS = {"finetune", "prune-random", "prune-l1", "prune-global"}  # may run before masks are folded in
DEFAULT_TRY = ("int8-dynamic,int8-static,qat,prune-random,prune-l1,prune-global,prune-structured:0.5+finetune,"
               "distill,student,compile,bf16,channels-last,onnx")


def parse_pipelines(text: str) -> list[list[tuple[str, str | None]]]:
    pipelines = []
    for pipe in (p.strip() for p in text.split(",")):
        if not pipe:
            continue
        steps = []
        for item in pipe.split("+"):
            name, _, arg = item.strip().partition(":")
            if name not in STEPS:
                raise UserError(f"--try: unknown step '{name}' (known: {', '.join(STEPS)})")
            steps.append((name, arg or None))
        for name, _ in steps[:-1]:
            if name in LEAVES_TORCH:
                raise UserError(f"--try '{pipe}': '{name}' leaves torch modules; it must come last")
        pipelines.append(steps)
    if not pipelines:
        raise UserError("--try: no steps given")
    return pipelines


def finalize(c: Candidate) -> Candidate:
    """Make pruning permanent and size the result in the compact sparse format."""
    if c.masked and c.module is not None:
        P.make_permanent(c.module)
        c.masked = False
        c.notes["sparsity"] = P.sparsity(c.module)
        c.size_bytes = P.serialized_size(P.to_compact(c.module.state_dict()))
        c.notes["dense_size_bytes"] = P.serialized_size(c.module.state_dict())
    return c


def pipeline_name(pipeline: list[tuple[str, str | None]]) -> str:
    """The text that parses back to the pipeline: steps joined by '+', arguments after ':'."""
    return "+".join(f"{n}:{a}" if a else n for n, a in pipeline)


def build(pipeline: list[tuple[str, str | None]], ctx: Context) -> Candidate:
    name = pipeline_name(pipeline)
    base = copy.deepcopy(ctx.baseline).eval()
    c = Candidate(name, base, base, base)
    for step, arg in pipeline:
        if step not in KEEPS_MASKS:
            c = finalize(c)
        if STEPS[step].needs_module and c.module is None:
            raise UserError(f"'{name}': step '{step}' needs a torch module, and an earlier step produced none")
        c = STEPS[step].fn(c, ctx, arg)
        c.name = name
    return finalize(c)
