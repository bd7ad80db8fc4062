"""Read a flat mmengine Python config (a dumped `cfg.pretty_text`) without executing it.

Only literals, `dict(...)`, lists, tuples, unary minus and names assigned earlier in the same file are
evaluated; anything else (imports, function calls, `_base_` inheritance) is refused. This lets users
pass the config the official training run dumped into its work dir, and lets us read the config that
mmengine stores in a checkpoint's `meta['cfg']`.
"""

from __future__ import annotations

import ast
from typing import Any

from crossearth.errors import ConfigError


def read_python_config(text: str) -> dict[str, Any]:
    """Evaluate the top-level assignments of a flat config; returns {name: value}."""
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise ConfigError(f"the Python config does not parse: {exc}") from None
    scope: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
            try:
                value = _evaluate(node.value, scope)
            except _Unsupported:
                continue  # e.g. a lambda or a call we do not need; skipped, not executed
            for target in node.targets:
                scope[target.id] = value  # type: ignore[attr-defined]
    if "_base_" in scope:
        raise ConfigError(
            "the Python config inherits from _base_ files; pass the dumped config of a run (its "
            "work dir holds one) or the model config as JSON"
        )
    if "model" not in scope:
        raise ConfigError("the Python config has no `model = dict(...)` entry")
    return scope


class _Unsupported(Exception):
    pass


def _evaluate(node: ast.AST, scope: dict[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in scope:
            return scope[node.id]
        raise _Unsupported(node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_evaluate(node.operand, scope)
    if isinstance(node, ast.List):
        return [_evaluate(e, scope) for e in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_evaluate(e, scope) for e in node.elts)
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise _Unsupported("dict unpacking")
        return {
            _evaluate(k, scope): _evaluate(v, scope)
            for k, v in zip(node.keys, node.values, strict=True)
        }
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
        if node.args:
            raise _Unsupported("positional dict() arguments")
        return {kw.arg: _evaluate(kw.value, scope) for kw in node.keywords if kw.arg is not None}
    raise _Unsupported(type(node).__name__)
