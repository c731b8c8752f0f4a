"""Errors caused by what the user gave (config, data, run directory), not by a bug.

The command-line tools print these as one line (`error: ...`) and exit with status 2
(`corrkd_jax.cli`); anything else is a bug and keeps its traceback. All are `ValueError`s,
so code that caught `ValueError` before keeps working.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input from the user; the message says what and where, on one line."""


class ConfigError(UserError):
    """A config field has a bad value, or fields contradict each other (or the data).

    `field` is the dotted name of the (first) field at fault, e.g. "model.dim".
    """

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        # The prefix only when the problem does not already name the field.
        named = not field or field in problem
        super().__init__(problem if named else f"config.{field}: {problem}")


class WorkdirError(UserError):
    """The run directory belongs to another experiment or dataset, or is inconsistent."""
