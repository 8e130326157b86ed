"""The error type for user mistakes: the CLI prints its message on one line and exits with code 2."""


class UserError(Exception):
    """Bad input from the user (a flag, a file, a spec). Shown without a stack trace."""
