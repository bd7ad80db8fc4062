"""Words around numbers and names in messages: "1 image", "3 images", "an RGB model".

`count(n, noun)` agrees the noun with the number; `ordinal(n)` gives "1st", "2nd", "3rd"; `with_article(word)` puts "a" or "an" before a
word as it is spoken: acronyms by their letters ("an RGB", "an IRRG", "a GeoTIFF", "an NIR band"),
numbers by their sound ("an 8-bit", "an 11-band", "a 16-bit"), other words by their first letter
with the usual exceptions ("a unit", "a one-band", "an hour").
"""

from __future__ import annotations

import re

#: Letters whose spoken name starts with a vowel sound (eff, aitch, ell, em, en, ar, ess, ex...).
_VOWEL_LETTER_NAMES = set("AEFHILMNORSX")
#: Words that start with a vowel letter but a consonant sound, and the reverse.
_CONSONANT_SOUND = ("uni", "use", "usu", "uti", "eu", "one", "once", "ubiq", "ura", "uro")
_VOWEL_SOUND = ("hour", "honest", "honour", "honor", "heir")


def count(n: int, noun: str, plural: str | None = None) -> str:
    """'1 image', '3 images', '1,204 windows', '0 classes' (`plural` for irregular nouns;
    default: `noun` + "es" after s/x/z/ch/sh, "ies" after a consonant + y, else "s")."""
    if n == 1:
        return f"1 {noun}"
    if plural is None:
        if noun.endswith(("s", "x", "z", "ch", "sh")):
            plural = noun + "es"
        elif len(noun) > 1 and noun.endswith("y") and noun[-2] not in "aeiou":
            plural = noun[:-1] + "ies"
        else:
            plural = noun + "s"
    return f"{n:,} {plural}"


def ordinal(n: int) -> str:
    """'1st', '2nd', '3rd', '4th', '11th', '12th', '13th', '21st', '102nd'."""
    suffix = "th" if n % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def article(word: str) -> str:
    """'a' or 'an' for `word` as it is spoken (see the module docstring)."""
    text = word.strip().lstrip("\"'`(")
    if not text:
        return "a"
    number = re.match(r"\d+", text)
    if number:
        digits = number.group(0)
        # eight..., eighty..., eleven, eighteen (and 11,000 / 18 million) start with a vowel
        if digits[0] == "8" or (len(digits) % 3 == 2 and digits[:2] in {"11", "18"}):
            return "an"
        return "a"
    head = re.match(r"[A-Za-z]+", text)
    if head is None:
        return "a"
    letters = head.group(0)
    acronym = (len(letters) > 1 and letters[:2].isupper()) or len(letters) == 1
    if acronym:
        return "an" if letters[0].upper() in _VOWEL_LETTER_NAMES else "a"
    lower = letters.lower()
    if lower.startswith(_VOWEL_SOUND):
        return "an"
    if lower.startswith(_CONSONANT_SOUND):
        return "a"
    return "an" if lower[0] in "aeiou" else "a"


def with_article(word: str) -> str:
    """`word` with its article: 'an RGB', 'an IRRG', 'a GeoTIFF', 'an OrderedDict'."""
    return f"{article(word)} {word}"
