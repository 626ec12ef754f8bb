"""The one exception type that means "the user gave us something we cannot use".

The CLI prints its message as a single line on stderr and exits with status 2; any
other exception is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input: a spec, file, key, argument or value. The message names which."""
