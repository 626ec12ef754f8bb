"""Keeping the libraries fastslow calls (the exporters, ONNX Runtime's quantiser) off the
user's screen: what they print, warn and log is about their internals, not the user's model."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quietly(*, stderr: bool = False, logs: bool = False) -> Iterator[None]:
    """Run a block with what it prints to stdout and every warning it raises swallowed; with
    `stderr`, what it writes there too; with `logs`, every logging record, which a handler made
    before any redirect would still write to the terminal."""
    before = logging.root.manager.disable
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        if stderr:
            stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore")
        if logs:
            logging.disable(logging.CRITICAL)
            stack.callback(logging.disable, before)
        yield
