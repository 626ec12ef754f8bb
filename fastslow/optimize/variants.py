"""The registry of optimization steps, and pipelines built from them.

A pipeline is steps joined by '+', each `name` or `name:argument`; a list of pipelines is
comma-separated: `prune-structured:0.5+finetune,int8-dynamic`. Every step maps a `Candidate`
to a new one; steps that need a torch module get one (the pruning masks of earlier steps are
made permanent first), and a step that leaves torch (onnx, compile) ends what can follow.
"""

from __future__ import annotations

import copy
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fastslow.errors import UserError, param_error
from fastslow.optimize import prune as P
from fastslow.optimize import quantize as Q
from fastslow.optimize import runtime as R
from fastslow.registry import Registry
from fastslow.tasks.base import FitConfig, Predict, Task, TaskData


@dataclass
class Candidate:
    name: str
    predict: Predict
    module: nn.Module | None  # the torch module, while the variant still is one
    float_module: nn.Module  # the float structure it came from (params and FLOPs are counted on it)
    size_bytes: int | None = None  # set when the artefact is not a plain state dict (sparse, ONNX)
    notes: dict[str, Any] = field(default_factory=dict)
    masked: bool = False  # carries pruning masks not yet made permanent
    # What --save writes when the variant is no longer a module of its own (compile, a lower
    # precision, channels_last): the module it runs, and how its inputs must be given.
    artifact: nn.Module | None = None
    input_dtype: torch.dtype = torch.float32


@dataclass
class Context:
    task: Task
    data: TaskData
    baseline: nn.Module
    example: torch.Tensor  # a batch of inputs at the judged batch size
    threads: int | None = 1
    workdir: Path | None = None  # where exports go (a folder of their own each); None: the system's temp folder


Step = Callable[[Candidate, Context, Any], Candidate]


@dataclass(frozen=True)
class StepArg:
    """A step's one optional argument: its type and the range it must lie in."""

    what: str  # "epochs", "amount", ...
    kind: type = float
    default: float | int | None = None
    low: float = 0.0  # exclusive for floats, inclusive for ints
    high: float = 1.0  # inclusive

    def parse(self, step: str, text: str | None) -> float | int | None:
        if text is None:
            return self.default
        try:
            value = self.kind(text)
        except ValueError:
            kind = "an integer" if self.kind is int else "a number"
            raise UserError(f"step '{step}:{text}': the {self.what} must be {kind}") from None
        ok = (self.low <= value <= self.high) if self.kind is int else (self.low < value <= self.high)
        if not ok or not math.isfinite(value):
            bounds = f"{int(self.low)}..{int(self.high)}" if self.kind is int else f"({self.low:g}, {self.high:g}]"
            raise UserError(f"step '{step}:{text}': the {self.what} must lie in {bounds}")
        return value


@dataclass(frozen=True)
class StepSpec:
    fn: Step
    help: str
    needs_module: bool = True
    arg: StepArg | None = None  # None: the step takes no argument
    makes: str = "float"  # what follows it gets: "float" module, "quantized" module, or "none" (left torch)


STEPS: Registry[StepSpec] = Registry("optimization step")


def register_step(name: str, help: str, needs_module: bool = True, arg: StepArg | None = None,
                  makes: str = "float") -> Callable[[Step], Step]:
    def wrap(fn: Step) -> Step:
        STEPS.add(name, StepSpec(fn, help, needs_module, arg, makes))
        return fn
    return wrap


def _module_candidate(prev: Candidate, module: nn.Module, float_module: nn.Module | None = None, **notes: Any
                      ) -> Candidate:
    module.eval()
    return Candidate(prev.name, module, module, float_module or module, None, {**prev.notes, **notes})


@register_step("int8-dynamic", "int8 weights, activations quantized at run time (Linear, LSTM, GRU)",
               makes="quantized")
def _int8_dynamic(c: Candidate, ctx: Context, arg: Any) -> Candidate:
    return _module_candidate(c, Q.dynamic_int8(c.module), c.float_module, int8="dynamic")


@register_step("int8-static", "int8 weights and activations, calibrated (FX graph mode, x86 backend)",
               makes="quantized")
def _int8_static(c: Candidate, ctx: Context, arg: Any) -> Candidate:
    return _module_candidate(c, Q.static_int8(c.module, ctx.data), c.float_module, int8="static")


@register_step("qat", "quantization-aware fine-tuning (argument: epochs, default 3), then int8",
               arg=StepArg("epochs", int, 3, 1, 1000), makes="quantized")
def _qat(c: Candidate, ctx: Context, epochs: Any) -> Candidate:
    return _module_candidate(c, Q.qat_int8(c.module, ctx.task, ctx.data, epochs), c.float_module, int8="qat")


def _unstructured(method: str) -> Step:
    def step(c: Candidate, ctx: Context, amount: Any) -> Candidate:
        pruned = P.prune_unstructured(c.module, method, amount)
        out = _module_candidate(c, pruned)
        out.masked = True
        return out
    return step


AMOUNT = StepArg("amount", float, None, 0.0, 0.999)
register_step("prune-random", "random unstructured (argument: amount; default conv 0.2 / linear 0.4)",
              arg=AMOUNT)(_unstructured("random"))
register_step("prune-l1", "L1 unstructured per layer (argument: amount; default conv 0.2 / linear 0.4)",
              arg=AMOUNT)(_unstructured("l1"))
register_step("prune-global", "L1 unstructured over all layers together (argument: amount, default 0.5)",
              arg=StepArg("amount", float, 0.5, 0.0, 0.999))(_unstructured("global"))


@register_step("prune-structured", "remove channels for real with Torch-Pruning (argument: ratio, default 0.5)",
               arg=StepArg("ratio", float, 0.5, 0.0, 0.95))
def _structured(c: Candidate, ctx: Context, ratio: Any) -> Candidate:
    return _module_candidate(c, P.prune_structured(c.module, ctx.example[:1], ratio))


@register_step("finetune", "train further with the task's loop (argument: epochs, default 5)",
               arg=StepArg("epochs", int, 5, 1, 1000))
def _finetune(c: Candidate, ctx: Context, epochs: Any) -> Candidate:
    cfg = ctx.task.train_config
    model = ctx.task.train(c.module, ctx.data, FitConfig(epochs=epochs, lr=cfg.lr / 2, batch_size=cfg.batch_size,
                                                          seed=cfg.seed))
    out = _module_candidate(c, model)
    out.masked = c.masked
    return out


# A small student trained twice as long: soft targets help most where capacity is short, and
# they act as a regulariser that needs the extra epochs (measured on digits: see the benchmark).
STUDENT_WIDTH = 0.25
STUDENT_EPOCHS_FACTOR = 2


def _student(distilled: bool) -> Step:
    def step(c: Candidate, ctx: Context, width: Any) -> Candidate:
        if ctx.task.make_student is None:
            raise UserError(f"task {ctx.task.name} has no student model (Task.make_student)")
        cfg = ctx.task.train_config
        torch.manual_seed(cfg.seed)
        student = ctx.task.make_student(width)
        teacher = c.predict if distilled else None
        longer = FitConfig(cfg.epochs * STUDENT_EPOCHS_FACTOR, cfg.lr, cfg.batch_size, cfg.seed, cfg.weight_decay)
        ctx.task.train(student, ctx.data, longer, teacher=teacher)
        return _module_candidate(c, student, student_width=width, distilled=distilled)
    return step


WIDTH = StepArg("width", float, STUDENT_WIDTH, 0.0, 1.0)
register_step("distill", "a smaller student trained on the model's soft targets (T=4, alpha=0.9; argument: "
                         "width, default 0.25)", arg=WIDTH)(_student(True))
register_step("student", "the same student trained without the teacher, for comparison (argument: width)",
              arg=WIDTH)(_student(False))


@register_step("compile", "torch.compile (inductor); reports compile time and break-even calls", makes="none")
def _compile(c: Candidate, ctx: Context, arg: Any) -> Candidate:
    fn, seconds = R.compiled(c.module, ctx.example)
    return Candidate(c.name, fn, None, c.float_module, None, {**c.notes, "compile_s": seconds}, artifact=c.module)


def _precision(dtype: torch.dtype) -> Step:
    def step(c: Candidate, ctx: Context, arg: Any) -> Candidate:
        predict = R.low_precision(c.module, dtype, ctx.example)
        converted = copy.deepcopy(c.module).to(dtype).eval()
        size = P.serialized_size(converted.state_dict())
        return Candidate(c.name, predict, None, c.float_module, size, dict(c.notes), artifact=converted,
                         input_dtype=dtype)
    return step


register_step("bf16", "weights and activations in bfloat16", makes="none")(_precision(torch.bfloat16))
register_step("fp16", "weights and activations in float16", makes="none")(_precision(torch.float16))


@register_step("channels-last", "NHWC memory layout for convolutions", makes="none")
def _channels_last(c: Candidate, ctx: Context, arg: Any) -> Candidate:
    return Candidate(c.name, R.channels_last(c.module), None, c.float_module, None, dict(c.notes), artifact=c.module)


@register_step("onnx", "export to ONNX and run in ONNX Runtime (outputs checked against PyTorch)", makes="none")
def _onnx(c: Candidate, ctx: Context, arg: Any) -> Candidate:
    """Float models are exported as they are; an int8 one (after int8-dynamic or int8-static) is
    exported from its float model and quantized by ONNX Runtime the same way (torch.ao's int8
    modules do not export)."""
    int8 = c.notes.get("int8")
    source = c.float_module if int8 else c.module
    out_dir = Path(tempfile.mkdtemp(prefix="fastslow-onnx-", dir=ctx.workdir))
    predict, info = R.onnx_session(source, ctx.example, ctx.threads, out_dir, int8=int8,
                                   calibration=ctx.data.calibration.tensors[0])
    with torch.inference_mode():
        diff = float((predict(ctx.example) - c.predict(ctx.example).float()).abs().max())
    return Candidate(c.name, predict, None, c.float_module, info["size_bytes"],
                     {**c.notes, "export_s": info["export_s"], "onnx_exporter": info["exporter"],
                      "onnx_path": info["path"], "onnx_vs_torch_max_abs_diff": diff})


KEEPS_MASKS = {"finetune", "prune-random", "prune-l1", "prune-global"}  # may run before masks are folded in
# What may follow a quantized module: nothing trains or prunes an int8 model; onnx re-quantizes
# its float model with ONNX Runtime's tools (after int8-dynamic or int8-static).
AFTER_QUANTIZED = {"compile", "onnx"}
DEFAULT_TRY = ("int8-dynamic,int8-static,qat,prune-random,prune-l1,prune-global,prune-structured:0.5+finetune,"
               "distill,student,compile,bf16,channels-last,onnx")

Pipeline = list[tuple[str, Any]]


def parse_pipelines(text: str) -> list[Pipeline]:
    """'a:0.5+b,c' -> [[("a", 0.5), ("b", default)], [("c", default)]], every argument parsed
    and range-checked and every step checked to be able to follow the one before, so that a
    pipeline that cannot work is refused before anything is trained."""
    if not text.strip():
        raise param_error("pipelines", "has no steps (give e.g. int8-dynamic,prune-l1+finetune; see --list)")
    pipelines = []
    for pipe in (p.strip() for p in text.split(",")):
        if not pipe:
            raise param_error("pipelines", f"value '{text}' has an empty pipeline between commas")
        steps: Pipeline = []
        made = "float"
        for item in pipe.split("+"):
            name, sep, arg_text = item.strip().partition(":")
            spec = STEPS.get(name)
            if sep and spec.arg is None:
                raise UserError(f"step '{item.strip()}': {name} takes no argument")
            if sep and not arg_text:
                raise UserError(f"step '{item.strip()}': empty argument after ':'")
            if made == "none":
                raise UserError(f"pipeline '{pipe}': '{steps[-1][0]}' leaves torch modules, so it must come last")
            if steps and steps[-1][0] == "qat" and name == "onnx":
                raise UserError(f"pipeline '{pipe}': ONNX Runtime quantizes from the float model, which would drop "
                                "qat's fine-tuning; use int8-static+onnx (calibrated) or int8-dynamic+onnx")
            if made == "quantized" and name not in AFTER_QUANTIZED:
                raise UserError(f"pipeline '{pipe}': '{name}' cannot follow '{steps[-1][0]}', which makes an int8 "
                                f"model (only {', '.join(sorted(AFTER_QUANTIZED))} can; put {name} first)")
            steps.append((name, spec.arg.parse(name, arg_text or None) if spec.arg else None))
            made = spec.makes
        pipelines.append(steps)
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


def pipeline_name(pipeline: Pipeline) -> str:
    """The text that parses back to the pipeline: steps joined by '+', arguments after ':' where
    they differ from the step's default."""
    def part(name: str, arg: Any) -> str:
        spec = STEPS.get(name).arg
        return f"{name}:{arg:g}" if spec is not None and arg is not None and arg != spec.default else name

    return "+".join(part(n, a) for n, a in pipeline)


def build(pipeline: Pipeline, ctx: Context, cache: dict[str, Candidate] | None = None) -> Candidate:
    """Apply the pipeline's steps to a copy of the baseline. With `cache`, a prefix already built
    (a torch module after it) is copied rather than rebuilt: a search that tries distill+onnx
    and distill+int8-static trains the student once."""
    name = pipeline_name(pipeline)
    start = 0
    c: Candidate | None = None
    if cache is not None:
        for i in range(len(pipeline) - 1, 0, -1):
            hit = cache.get(pipeline_name(pipeline[:i]))
            if hit is not None:
                c, start = copy.deepcopy(hit), i
                break
    if c is None:
        base = copy.deepcopy(ctx.baseline).eval()
        c = Candidate(name, base, base, base)
    for i, (step, arg) in enumerate(pipeline[start:], start):
        if step not in KEEPS_MASKS:
            c = finalize(c)
        spec = STEPS.get(step)
        if spec.needs_module and c.module is None:
            raise UserError(f"'{name}': step '{step}' needs a torch module, and an earlier step produced none")
        c = spec.fn(c, ctx, arg)
        c.name = name
        if cache is not None and c.module is not None:
            cache[pipeline_name(pipeline[: i + 1])] = copy.deepcopy(c)
    return finalize(c)
