"""Every skip says why (issue 22): a skipped test names what is missing and how to get it.

Reads the test sources with `ast`: each `pytest.importorskip`, `pytest.mark.skipif` and
`pytest.mark.skip` call must pass `reason=`, and each `pytest.skip(...)` a non-empty message.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _name(node: ast.AST) -> str:
    """'pytest.mark.skipif' for the expression pytest.mark.skipif (else '')."""
    if isinstance(node, ast.Attribute):
        inner = _name(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    return node.id if isinstance(node, ast.Name) else ""


def skips_without_reason(source: str, filename: str = "<test>") -> list[str]:
    """`file:line call` for every skip in `source` that gives no reason."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        keywords = {k.arg for k in node.keywords}
        if name in {"pytest.importorskip", "pytest.mark.skipif", "pytest.mark.skip"}:
            ok = "reason" in keywords or (name == "pytest.mark.skip" and bool(node.args))
        elif name == "pytest.skip":
            message = node.args[0] if node.args else None
            ok = "reason" in keywords or (
                message is not None
                and not (isinstance(message, ast.Constant) and not str(message.value).strip())
            )
        else:
            continue
        if not ok:
            found.append(f"{filename}:{node.lineno} {name}")
    return found


def test_the_checker_finds_skips_without_reasons():
    bad = (
        "import pytest\n"
        "pytest.importorskip('x')\n"
        "@pytest.mark.skipif(True)\ndef test_a(): pytest.skip()\n"
        "def test_b(): pytest.skip('')\n"
    )
    assert [f.split(" ")[1] for f in skips_without_reason(bad)] == [
        "pytest.importorskip", "pytest.mark.skipif", "pytest.skip", "pytest.skip",
    ]  # fmt: skip
    good = (
        "import pytest\n"
        "pytest.importorskip('x', reason='needs x: pip install x')\n"
        "@pytest.mark.skipif(True, reason='why')\ndef test_a(): pytest.skip(f'{1} missing')\n"
    )
    assert skips_without_reason(good) == []


def test_every_skip_in_the_tests_says_why():
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        found += skips_without_reason(path.read_text(), str(path.relative_to(TESTS)))
    assert found == [], "skips without a reason:\n" + "\n".join(found)
