"""The one exception type that means "the user gave us something we cannot use".

The CLI prints its message as a single line on stderr and exits with status 2; any
other exception is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input: a spec, file, key, argument or value. The message names which."""


def one_line(e: BaseException) -> str:
    """'TypeName: first line of the message', for reports that must stay one line."""
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__
