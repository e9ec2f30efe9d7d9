"""One exception tree for everything cloudai_nb reports to a user.

Every error is meant to be shown as a single readable line (``str(err)``): the faces (CLI, magics)
print that line and nothing else. Messages name what is wrong and, where there is a closed set of
valid answers, list them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


class CloudAINbError(Exception):
    """Root of every error cloudai_nb raises on purpose."""


class ConfigError(CloudAINbError):
    """A configuration (TOML file, cell, model field) is invalid.

    ``file``, ``line`` and ``field`` locate the problem where they are known; ``problems`` holds
    every individual finding when one file has several (``str()`` shows the first, then a count).
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
        problems: list[ConfigError] | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.column = column
        self.field = field
        self.problems = problems or []
        super().__init__(self._format())

    def _format(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        field = f"{self.field}: " if self.field else ""
        text = f"{where}{field}{self.message}"
        extra = len(self.problems) - 1
        if extra > 0:
            text += f" (and {extra} more problem{'s' if extra > 1 else ''})"
        return text

    def located(self, file: str | Path | None = None, line: int | None = None) -> ConfigError:
        """A copy of this error with a file (and line) filled in where they were unknown."""
        return ConfigError(
            self.message,
            file=self.file or file,
            line=self.line if self.line is not None else line,
            column=self.column,
            field=self.field,
        )


class RegistryError(CloudAINbError):
    """A name is not registered, or registered twice."""


class SubmissionError(CloudAINbError):
    """A job could not be submitted (scheduler refused it, command missing, folder not writable)."""


class JobFailedError(CloudAINbError):
    """Raised by ``Run.wait(check=True)`` when a job of the run did not succeed."""


class RunNotFoundError(CloudAINbError):
    """A run directory does not exist or holds no ledger."""


class SchedulerError(CloudAINbError):
    """The scheduler could not be asked (controller down, command missing)."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_key(key: str, valid: Iterable[str]) -> str:
    """The one message for a key no model knows: the closest valid key, then all of them."""
    names = sorted(valid)
    return f"unknown key {key!r}{did_you_mean(key, names)}; valid keys: {', '.join(names)}"


def one_of(choices: Iterable[str]) -> str:
    """Format a closed set of valid choices for a message: ``one of: a, b, c``."""
    items = sorted(choices)
    if not items:
        return "none are available"
    return "one of: " + ", ".join(items)
