"""`quietly`: what a called library prints, warns and logs stays off the screen, and only for
the block."""

import logging
import sys
import warnings

from fastslow.quiet import quietly


def _chatter(log: logging.Logger) -> None:
    print("progress")
    print("trouble", file=sys.stderr)
    warnings.warn("internals", UserWarning, stacklevel=1)
    log.error("traceback")


def test_quietly_swallows_stdout_and_warnings_and_on_request_stderr_and_logs(capsys, caplog):
    log = logging.getLogger("fastslow-test-chatter")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quietly():
            _chatter(log)
        out = capsys.readouterr()
        assert out.out == "" and out.err == "trouble\n" and not caught
        assert [r.getMessage() for r in caplog.records] == ["traceback"]
        caplog.clear()
        with quietly(stderr=True, logs=True):
            _chatter(log)
        out = capsys.readouterr()
        assert out.out == out.err == "" and not caught and not caplog.records
        # only for the block: logging is back on, warnings are shown again
        _chatter(log)
        assert [r.getMessage() for r in caplog.records] == ["traceback"] and len(caught) == 1
        assert capsys.readouterr().out == "progress\n"
