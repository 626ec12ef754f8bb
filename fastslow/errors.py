"""The one exception type that means "the user gave us something we cannot use".

The CLI prints its message as a single line on stderr and exits with status 2; any
other exception is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input: a spec, file, key, argument or value. The message names which."""


def full_reason(e: BaseException, limit: int = 600) -> str:
    """'TypeName: the whole message' on one line, terminal colour codes removed, cut at `limit`
    characters: for reasons a user must be able to act on (a failed export, say)."""
    import re

    text = " ".join(re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(e)).split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def one_line(e: BaseException) -> str:
    """'TypeName: first line of the message', for reports that must stay one line."""
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is (the CLI installs the handler), so that it ends as
    Ctrl-C does: finished work is kept and the run is stored as interrupted."""


_STOP: list[KeyboardInterrupt] = []  # the Ctrl-C or SIGTERM last raised by the CLI's handlers, until taken


def stop_raised(e: KeyboardInterrupt) -> KeyboardInterrupt:
    """What the CLI's Ctrl-C and SIGTERM handlers raise, noted first: Python prints and drops an
    exception raised inside a finalizer or a weakref callback (torch frees tensors through
    those), so a signal that lands there would be lost, and the command would run on to its end
    (seen in `predictor collect`: one Ctrl-C, "Exception ignored in: ... WeakIdKeyDictionary",
    and all 40 models measured)."""
    _STOP[:] = [e]
    return e


def raise_dropped_stop() -> None:
    """Between the steps of a long loop: raise again a Ctrl-C or SIGTERM whose exception was
    dropped (see stop_raised); nothing when there was none or it was taken."""
    if _STOP:
        raise _STOP.pop()


def stop_taken() -> None:
    """A loop that caught the Ctrl-C or SIGTERM and stopped says so, so that no later loop
    raises it again."""
    _STOP.clear()


def param_error(param: str, problem: str) -> UserError:
    """A bad value of a library parameter, named as the library names it ('threads' must be ...);
    the CLI rewrites the quoted name to the option that set it (--threads must be ...)."""
    return UserError(f"'{param}' {problem}")


def check_number(param: str, value: float, *, low: float = 0.0, low_open: bool = True) -> None:
    """A float parameter must be finite and above `low` (or at least `low` when not `low_open`):
    NaN and infinity are refused by name, since every comparison with NaN is False."""
    import math

    if not math.isfinite(value) or (value <= low if low_open else value < low):
        raise param_error(param, f"must be a finite number {'>' if low_open else '>='} {low:g} (got {value})")
