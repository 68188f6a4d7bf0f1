"""The small part of Argo's expression language the local runner understands.

Three things: ``{{ var }}`` substitution in strings, the ``when:`` conditions of tasks/steps
(govaluate-style comparisons joined by ``&&``/``||``), and the ``depends:`` expressions of DAG
tasks (``A && (B.Succeeded || C.Failed)``). Anything outside that subset raises
:class:`ExpressionError` naming the expression, so an unsupported pipeline fails loudly instead
of being run with different semantics than Argo would give it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_VAR = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")


class ExpressionError(ValueError):
    """An expression the runner cannot evaluate (unknown variable or unsupported syntax)."""


def substitute(text: str, scope: Mapping[str, str]) -> str:
    """Replace every ``{{name}}`` in ``text`` with ``scope[name]``.

    Raises ExpressionError for a name missing from ``scope``.
    """

    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in scope:
            raise ExpressionError(f"unknown variable {{{{{name}}}}} in {text!r}")
        return scope[name]

    return _VAR.sub(repl, text)


def variables_in(text: str) -> list[str]:
    """Names referenced as ``{{name}}`` in ``text``, in order."""
    return _VAR.findall(text)


# --- when: conditions -------------------------------------------------------------------------

_WHEN_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"[^"]*"|'[^']*')
      | (?P<op>==|!=|<=|>=|<|>|&&|\|\||!|\(|\))
      | (?P<word>[^\s()!=<>&|"']+)
    )""",
    re.VERBOSE,
)


def _when_tokens(expr: str) -> list[tuple[str, str]]:
    pos, out = 0, []
    expr = expr.strip()
    while pos < len(expr):
        m = _WHEN_TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise ExpressionError(f"cannot parse condition {expr!r} at offset {pos}")
        pos = m.end()
        kind = m.lastgroup or ""
        val = m.group(kind)
        if kind == "str":
            val = val[1:-1]
        out.append((kind, val))
    return out


def _coerce(a: str, b: str) -> tuple[object, object]:
    """Compare as numbers when both sides are numeric, else as strings (govaluate's rule)."""
    try:
        return float(a), float(b)
    except ValueError:
        return a, b


class _WhenParser:
    """Recursive-descent evaluator: or := and ('||' and)*; and := not ('&&' not)*;
    not := '!' not | atom; atom := '(' or ')' | value (cmp value)?"""

    def __init__(self, tokens: list[tuple[str, str]], expr: str) -> None:
        self.t, self.i, self.expr = tokens, 0, expr

    def peek(self) -> tuple[str, str] | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise ExpressionError(f"unexpected end of condition {self.expr!r}")
        self.i += 1
        return tok

    def parse(self) -> bool:
        val = self.or_()
        if self.peek() is not None:
            raise ExpressionError(f"trailing tokens in condition {self.expr!r}")
        return val

    def or_(self) -> bool:
        val = self.and_()
        while self.peek() == ("op", "||"):
            self.take()
            rhs = self.and_()
            val = val or rhs
        return val

    def and_(self) -> bool:
        val = self.not_()
        while self.peek() == ("op", "&&"):
            self.take()
            rhs = self.not_()
            val = val and rhs
        return val

    def not_(self) -> bool:
        if self.peek() == ("op", "!"):
            self.take()
            return not self.not_()
        return self.atom()

    def atom(self) -> bool:
        if self.peek() == ("op", "("):
            self.take()
            val = self.or_()
            if self.take() != ("op", ")"):
                raise ExpressionError(f"missing ')' in condition {self.expr!r}")
            return val
        kind, left = self.take()
        if kind == "op":
            raise ExpressionError(f"unexpected {left!r} in condition {self.expr!r}")
        nxt = self.peek()
        if nxt and nxt[0] == "op" and nxt[1] in {"==", "!=", "<", ">", "<=", ">="}:
            op = self.take()[1]
            rkind, right = self.take()
            if rkind == "op":
                raise ExpressionError(f"missing right operand in condition {self.expr!r}")
            a, b = _coerce(left, right)
            if op in {"==", "!="}:
                return (a == b) == (op == "==")
            if type(a) is not type(b):
                raise ExpressionError(f"ordering of non-numbers in condition {self.expr!r}")
            return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]  # type: ignore[operator]
        if left.lower() in {"true", "false"}:
            return left.lower() == "true"
        raise ExpressionError(f"{left!r} is not a boolean in condition {self.expr!r}")


def evaluate_when(expr: str) -> bool:
    """Evaluate an already-substituted ``when`` condition."""
    return _WhenParser(_when_tokens(expr), expr).parse()


# --- depends: expressions ---------------------------------------------------------------------

_DEPENDS_TOKEN = re.compile(
    r"\s*(?:(?P<op>&&|\|\||!|\(|\))|(?P<ref>[A-Za-z0-9_-]+(?:\.[A-Za-z]+)?))"
)
# Node phases as Argo names them; a task can be Succeeded, Failed, Errored, Skipped or Omitted.
_RESULTS = {"Succeeded", "Failed", "Errored", "Skipped", "Omitted", "Daemoned"}


def depends_targets(expr: str) -> list[str]:
    """Task names an Argo ``depends`` expression refers to."""
    return sorted(
        {ref.split(".")[0] for ref in re.findall(r"[A-Za-z0-9_-]+(?:\.[A-Za-z]+)?", expr)}
    )


def evaluate_depends(expr: str, phases: Mapping[str, str]) -> bool:
    """Evaluate ``depends`` given the final phase of each referenced task.

    A bare ``A`` means ``A.Succeeded || A.Skipped || A.Daemoned`` (Argo's definition);
    ``A.AnySucceeded``/``A.AllFailed`` apply to fanned-out tasks, whose phase here is the
    aggregate, so they reduce to Succeeded/Failed.
    """
    out: list[str] = []
    pos = 0
    expr_s = expr.strip()
    while pos < len(expr_s):
        m = _DEPENDS_TOKEN.match(expr_s, pos)
        if not m or m.end() == pos:
            raise ExpressionError(f"cannot parse depends {expr!r} at offset {pos}")
        pos = m.end()
        if m.group("op"):
            out.append(
                {"&&": " and ", "||": " or ", "!": " not "}.get(m.group("op"), m.group("op"))
            )
            continue
        name, _, result = m.group("ref").partition(".")
        if name not in phases:
            raise ExpressionError(f"depends {expr!r} names unknown task {name!r}")
        phase = phases[name]
        if not result:
            ok = phase in {"Succeeded", "Skipped", "Daemoned"}
        elif result == "AnySucceeded":
            ok = phase == "Succeeded"
        elif result == "AllFailed":
            ok = phase == "Failed"
        elif result == "Completed":
            ok = phase in {"Succeeded", "Failed"}
        elif result in _RESULTS:
            ok = phase == result
        else:
            raise ExpressionError(f"unknown task result .{result} in depends {expr!r}")
        out.append(" True " if ok else " False ")
    try:
        return bool(eval("".join(out), {"__builtins__": {}}, {}))  # only True/False/and/or/not
    except SyntaxError as exc:
        raise ExpressionError(f"cannot evaluate depends {expr!r}") from exc
