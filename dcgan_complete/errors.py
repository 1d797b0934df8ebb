"""The one exception the command line turns into a one-line message instead of a traceback."""


class DcganError(Exception):
    """A problem with the user's input or files: bad option, missing data, mismatched checkpoint."""
