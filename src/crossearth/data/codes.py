"""Class codes in label files: one rule, whether a code is a number or text.

A label file names each polygon's or pixel's class by a *code*: the value of a vector attribute
(`label_field`, text or a number) or the value of a label raster's pixel. One rule turns codes
into class ids, the same for text and integer fields and for rasters:

1. Codes are compared as text, numbers by their value: 5, 5.0, "5" and " 05 " are the one code
   "5"; text compares case-insensitively, without surrounding spaces.
2. With `label_values` in the data set file (code -> class name, or null for "unlabelled"), that
   table is the whole rule: WorldCover's `{10: tree_cover, 20: shrubland, ...}`, CORINE's
   `{111: urban, 112: urban, ...}`, or text codes (`{Wald: forest}`). Any other code is an error.
3. Without it, a code equal to a class name is that class. Classes given as numbers
   (`classes: [10, 20, 30]`) are so read as codes.
4. Otherwise a whole number 0..C-1 is the class id (the position in `classes`); but never when
   a class name is itself a number (then numbers are names only: rule 3).
5. A vector field whose codes are read partly by name (3) and partly by id (4) is ambiguous: an
   error that asks for `label_values`. A code that no rule reads is an error listing it.

`data check` prints the code -> class table each label source was read with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crossearth.errors import ConfigError

IGNORE = 255  # the class id of "unlabelled" in every label array (crossearth.data.labels.IGNORE)
UNKNOWN = -1  # a code no rule reads

# how a code was read (the third column of `data check`'s table)
BY_TABLE, BY_NAME, BY_ID = "label_values", "class name", "class id"


def canonical(value: Any) -> str | None:
    """The code a field or pixel value stands for (module docstring, rule 1); None for a missing
    value (None, NaN, empty text), which labels nothing."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            return text.lower()
        return _number(number) if math.isfinite(number) else text.lower()
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else _number(float(value))
    return str(value).strip().lower() or None


def _number(number: float) -> str:
    return str(int(number)) if number.is_integer() else repr(number)


@dataclass
class CodeTable:
    """Codes -> class ids for one data set (module docstring).

    Args:
        classes: the class names, id = position.
        label_values: canonical code -> class id, or IGNORE for "unlabelled" (from
            `parse_label_values`); None: rules 3-4.
    """

    classes: tuple[str, ...]
    label_values: dict[str, int] | None = None
    #: some class name is a number: numbers are then names, never positions (rule 4)
    numeric_names: bool = field(init=False)
    _names: dict[str, int] = field(init=False, repr=False)
    _lut: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._names = {canonical(n) or "": i for i, n in enumerate(self.classes)}
        self.numeric_names = any(_is_number(code) for code in self._names)

    @property
    def rule(self) -> str:
        """The rule in words, for messages and `data check`."""
        if self.label_values is not None:
            return "codes by label_values"
        if self.numeric_names:
            return "codes by class name (classes are numbers, so numbers are names)"
        return f"codes by class name, or class id 0..{len(self.classes) - 1}"

    def lookup(self, code: str | None) -> tuple[int, str]:
        """(class id, IGNORE or UNKNOWN; how it was read: BY_TABLE, BY_NAME, BY_ID or "")."""
        if code is None:
            return IGNORE, ""
        if self.label_values is not None:
            found = self.label_values.get(code)
            return (UNKNOWN, "") if found is None else (found, BY_TABLE)
        if code in self._names:
            return self._names[code], BY_NAME
        if (
            not self.numeric_names
            and _is_number(code)
            and float(code).is_integer()
            and 0 <= float(code) < len(self.classes)
        ):
            return int(float(code)), BY_ID
        return UNKNOWN, ""

    def class_of(self, value: Any) -> int:
        """The class id (IGNORE for "unlabelled", UNKNOWN) of one field or pixel value."""
        return self.lookup(canonical(value))[0]

    def ids_of_array(self, values: np.ndarray) -> np.ndarray:
        """Class ids (int64, IGNORE, UNKNOWN) of an array of pixel values, same shape."""
        if values.dtype.kind == "u" and values.dtype.itemsize <= 2:  # a lookup table
            if self._lut is None or len(self._lut) < 2 ** (8 * values.dtype.itemsize):
                size = 2 ** (8 * values.dtype.itemsize)
                self._lut = np.array([self.lookup(str(v))[0] for v in range(size)], np.int64)
            return self._lut[values]
        found, inverse = np.unique(values, return_inverse=True)
        mapped = np.array([self.class_of(v) for v in found.tolist()], np.int64)
        return mapped[inverse.reshape(values.shape)]

    def describe_unknown(self, codes: list[str], listed: str | None = None) -> str:
        """Why `codes` were read as no class, and what to do, in one phrase (`listed`: how to
        show them, default the codes themselves)."""
        listed = listed or ", ".join(codes)
        if self.label_values is not None:
            return f"{listed} not in label_values (add them, with null for unlabelled)"
        names = ", ".join(self.classes)
        if self.numeric_names:
            return (
                f"{listed} not in classes [{names}] (numbers are read as class names because "
                "some class names are numbers; map codes to classes with label_values)"
            )
        numbers = [c for c in codes if _is_number(c)]
        hint = ""
        if numbers:
            hint = (
                f"; numbers are class ids 0..{len(self.classes) - 1}: for other codes map them "
                f"to classes with label_values, e.g. label_values: {{{numbers[0]}: {self.classes[0]}}}"
            )
        return f"{listed} not in classes [{names}]{hint}"

    def table(self, seen: dict[str, int]) -> list[tuple[str, str, str, int]]:
        """(code, class name or "unlabelled" or "?", how, count) for each code in `seen`."""
        rows = []
        for code, count in sorted(seen.items(), key=lambda kv: _sort_key(kv[0])):
            class_id, how = self.lookup(code)
            name = {IGNORE: "unlabelled", UNKNOWN: "?"}.get(class_id) or self.classes[class_id]
            rows.append((code, name, how, count))
        return rows


def parse_label_values(value: Any, classes: tuple[str, ...] | None, path: Any) -> dict[str, int]:
    """`label_values` of a data set file: {code: class name or null}, as canonical code -> class
    id (IGNORE for null). Raises ConfigError naming every problem of the mapping."""
    if not isinstance(value, dict) or not value:
        raise ConfigError(
            f"{path}: label_values must map label codes to class names, e.g. "
            f"{{10: forest, 20: water, 0: null}}, got {value!r}"
        )
    names = {canonical(n): i for i, n in enumerate(classes or ())}
    out: dict[str, int] = {}
    problems = []
    for key, name in value.items():
        code = canonical(key)
        if code is None:
            problems.append(f"label_values: an empty code ({key!r})")
            continue
        if code in out:
            problems.append(f"label_values: code {key!r} is given twice (as {code})")
            continue
        if name is None:
            out[code] = IGNORE
        elif classes is not None and canonical(name) not in names:
            problems.append(
                f"label_values: {key!r} maps to {name!r}, which is not in classes "
                f"[{', '.join(classes)}] (or null for unlabelled)"
            )
        elif classes is not None:
            out[code] = names[canonical(name)]
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    return out


def _is_number(code: str) -> bool:
    try:
        return math.isfinite(float(code))
    except ValueError:
        return False


def _sort_key(code: str) -> tuple[int, float, str]:
    return (0, float(code), "") if _is_number(code) else (1, 0.0, code)
