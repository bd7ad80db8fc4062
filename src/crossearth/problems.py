"""Collect every problem of a configuration file and report them together.

A user with three mistakes in a YAML file should learn of all three in one run, not fix them one
at a time. `Problems` gathers messages (directly, or from the `ConfigError`s that checking
functions raise) and raises a single `ConfigError`: one line, problems separated by "; ".
`unknown_keys` names each unknown key with a "did you mean" suggestion for a near miss.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from crossearth.errors import ConfigError

T = TypeVar("T")


def near_misses(keys: Iterable[Any], known: Iterable[str]) -> dict[str, str | None]:
    """Each key of `keys` not in `known` (sorted), with the known key it is a near miss of
    (difflib ratio >= 0.6), or None."""
    known = sorted(known)
    unknown = sorted(set(map(str, keys)) - set(known))
    return {
        key: next(iter(difflib.get_close_matches(key, known, n=1, cutoff=0.6)), None)
        for key in unknown
    }


def unknown_keys(keys: Iterable[Any], known: Iterable[str], where: str = "") -> list[str]:
    """One message per key of `keys` not in `known`, in sorted order.

    `where` prefixes the key (e.g. "train." for a split's keys). A near miss of a known key
    gets "(did you mean 'x'?)"; when no unknown key has a suggestion, the last message lists the
    known keys instead.
    """
    known = sorted(known)
    messages = []
    for key, close in near_misses(keys, known).items():
        hint = f" (did you mean {where}{close}?)" if close else ""
        messages.append(f"unknown key {where}{key}{hint}")
    if messages and "did you mean" not in "".join(messages):
        messages[-1] += f" (known: {', '.join(known)})"
    return messages


class Problems:
    """An ordered list of problem messages about one file (or one set of options).

    `prefix` (e.g. the file's path) starts the error's message; messages that already start with
    it (from checking functions that name the file themselves) are not prefixed twice.
    """

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        """Note one problem."""
        lead = f"{self.prefix}: "
        if self.prefix and message.startswith(lead):
            message = message[len(lead) :]
        if message not in self.messages:
            self.messages.append(message)

    def extend(self, messages: Iterable[str]) -> None:
        """Note several problems."""
        for message in messages:
            self.add(message)

    def check(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """`function(*args, **kwargs)`; a `ConfigError` it raises is noted (each of its problems,
        when it came from another `Problems`) and None returned."""
        try:
            return function(*args, **kwargs)
        except ConfigError as exc:
            self.extend(getattr(exc, "problems", None) or [str(exc)])  # from another `Problems`
            return None

    def __bool__(self) -> bool:
        return bool(self.messages)

    def error(self) -> ConfigError:
        """The `ConfigError` naming every problem: "PREFIX: a" or "PREFIX: 3 problems: a; b; c"."""
        head = f"{self.prefix}: " if self.prefix else ""
        if len(self.messages) > 1:
            head += f"{len(self.messages)} problems: "
        error = ConfigError(head + "; ".join(self.messages))
        error.problems = list(self.messages)  # type: ignore[attr-defined]
        return error

    def raise_if_any(self) -> None:
        """Raise `error()` if any problem was noted."""
        if self.messages:
            raise self.error()
