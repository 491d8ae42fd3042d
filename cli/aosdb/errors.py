"""The one exception type the CLI turns into a single readable line."""


class AosdbError(Exception):
    """An expected failure: printed as one line, exit status non-zero, no traceback."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code
