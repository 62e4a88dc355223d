"""Errors that carry a message meant for the user (what is wrong, where, and the fix)."""


class InputError(ValueError):
    """Bad user input: a file, a line, an option. The message names the place and the fix.

    It subclasses ``ValueError`` so callers that catch ``ValueError`` keep working; the
    command line prints it without a traceback.
    """
