"""Weighted sums of the paper's losses, written as text: "0.98*align(alpha=2) + 0.96*uniform(t=2)".

    objective := term ("+" term)*
    term      := [weight "*"] name ["(" [param "=" value ("," param "=" value)*] ")"]

Terms: align(alpha=2), uniform(t=2), contrastive(tau=0.07); weights default to 1. The total is
sum_k weight_k * term_k(x, y); ``str(objective)`` parses back to an equal objective. A call checks
the batch once (`Objective.check`) for all its terms, then each term runs on the checked inputs.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NoReturn

import torch

from alignuniform.core.errors import InvalidTypeError, InvalidValueError
from alignuniform.core.formatting import parameter
from alignuniform.core.losses import (
    checked_align_loss,
    checked_contrastive_loss,
    checked_uniform_loss,
)
from alignuniform.core.validation import (
    check_embeddings,
    check_pair,
    check_positive,
    check_same_width,
    check_t_fits,
)

__all__ = ["Objective", "ObjectiveOutput", "Term"]

LossFn = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class _TermKind:
    defaults: dict[str, float]
    loss: LossFn  # loss(x, y, negatives, **params) on checked inputs


_KINDS: dict[str, _TermKind] = {
    "align": _TermKind(
        {"alpha": 2.0}, lambda x, y, negatives, alpha: checked_align_loss(x, y, alpha)
    ),
    "uniform": _TermKind({"t": 2.0}, lambda x, y, negatives, t: checked_uniform_loss(x, y, t)),
    "contrastive": _TermKind(
        {"tau": 0.07},
        lambda x, y, negatives, tau: checked_contrastive_loss(x, y, tau, negatives),
    ),
}


def _valid_terms() -> str:
    return ", ".join(Term.create(kind).name for kind in _KINDS)


@dataclass(frozen=True)
class Term:
    """One loss with its parameters, e.g. Term("uniform", (("t", 2.0),)); build with `create`."""

    kind: str
    params: tuple[tuple[str, float], ...]

    @classmethod
    def create(cls, kind: str, **params: float) -> Term:
        """The term ``kind`` with ``params`` over its defaults; ValueError names what is wrong."""
        if kind not in _KINDS:
            raise InvalidValueError(f"unknown term {kind!r}; valid terms: {_valid_terms()}")
        defaults = _KINDS[kind].defaults
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            raise InvalidValueError(
                f"{kind} has no parameter {unknown[0]!r}; its parameters: {', '.join(defaults)}"
            )
        values = {name: check_positive(params.get(name, d), name) for name, d in defaults.items()}
        return cls(kind, tuple(values.items()))

    @property
    def name(self) -> str:
        """Canonical text, e.g. "align(alpha=2)"; used as the key when logging the term."""
        args = ", ".join(f"{k}={parameter(v)}" for k, v in self.params)
        return f"{self.kind}({args})"

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, negatives: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The term on inputs checked already (by `Objective.check`)."""
        return _KINDS[self.kind].loss(x, y, negatives, **dict(self.params))


@dataclass(frozen=True)
class ObjectiveOutput:
    """``total`` = sum of weight * term; ``terms`` maps each term's name to its unweighted value."""

    total: torch.Tensor
    terms: dict[str, torch.Tensor]


@dataclass(frozen=True)
class Objective:
    """sum_k w_k * term_k(x, y[, negatives]); negatives (a queue) reach contrastive terms only."""

    terms: tuple[tuple[float, Term], ...]

    def __init__(self, terms: Iterable[tuple[float, Term]]) -> None:
        terms = tuple((check_positive(w, "weight"), term) for w, term in terms)
        if not terms:
            raise InvalidValueError(
                f"an objective needs at least one term; valid terms: {_valid_terms()}"
            )
        names = [term.name for _, term in terms]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise InvalidValueError(
                f"{repeated[0]} appears more than once; add the weights instead"
            )
        object.__setattr__(self, "terms", terms)

    @classmethod
    def parse(cls, expression: str) -> Objective:
        """Read an objective such as "0.98*align(alpha=2) + 0.96*uniform(t=2)" (no eval)."""
        if not isinstance(expression, str):
            raise InvalidTypeError(
                f"expression must be a str such as 'align + uniform', "
                f"got {type(expression).__name__}"
            )
        return cls(_Parser(expression).objective())

    @property
    def family(self) -> str:
        """ "contrastive", "align_uniform" or "mixed" (contrastive plus align/uniform terms)."""
        kinds = {term.kind for _, term in self.terms}
        if kinds == {"contrastive"}:
            return "contrastive"
        return "mixed" if "contrastive" in kinds else "align_uniform"

    def __str__(self) -> str:
        return " + ".join(
            term.name if weight == 1 else f"{parameter(weight)}*{term.name}"
            for weight, term in self.terms
        )

    def min_rows(self, negatives: bool = False) -> int:
        """Rows each view needs: 2 for a uniform term or a contrastive one without negatives."""
        pairs = {"uniform"} if negatives else {"uniform", "contrastive"}
        return 2 if any(term.kind in pairs for _, term in self.terms) else 1

    def check(
        self,
        x: object,
        y: object,
        negatives: object = None,
        *,
        names: tuple[str, str] = ("x", "y"),
        normalize: bool = False,
        min_rows: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The inputs of every term, checked once: x and y unit rows [N, d] of one shape (or
        L2-normalised with ``normalize``), N >= ``min_rows`` (default: `min_rows`), negatives
        (used by contrastive terms only) of their width, and each t within the dtype."""
        kinds = {term.kind for _, term in self.terms}
        if min_rows is None:
            min_rows = self.min_rows(negatives is not None)
        x, y = check_pair(x, y, names, normalize=normalize, min_rows=min_rows)
        if negatives is not None and "contrastive" in kinds:
            negatives = check_embeddings(negatives, "negatives", normalize=normalize)
            check_same_width(x, negatives, (names[0], "negatives"))
        for _, term in self.terms:
            if term.kind == "uniform":
                check_t_fits(dict(term.params)["t"], x.dtype)
        return x, y, negatives

    def checked(
        self, x: torch.Tensor, y: torch.Tensor, negatives: torch.Tensor | None = None
    ) -> ObjectiveOutput:
        """The objective on inputs that passed `check`."""
        values = {term.name: term(x, y, negatives) for _, term in self.terms}
        total = sum(weight * values[term.name] for weight, term in self.terms)
        return ObjectiveOutput(total=total, terms=values)

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, negatives: torch.Tensor | None = None
    ) -> ObjectiveOutput:
        return self.checked(*self.check(x, y, negatives))


_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_]\w*)|(?P<op>[*+(),=]))"
)


class _Parser:
    """Recursive-descent parser over (kind, text, position) tokens; errors point at the column."""

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while expression[pos:].strip():
            match = _TOKEN.match(expression, pos)
            if match is None:
                start = len(expression) - len(expression[pos:].lstrip())
                hint = " (weights and parameters must be > 0)" if expression[start] == "-" else ""
                self._fail(start, f"unexpected character {expression[start]!r}{hint}")
            kind = match.lastgroup
            self.tokens.append((kind, match.group(kind), match.start(kind)))
            pos = match.end()
        self.index = 0

    def _fail(self, pos: int, message: str) -> NoReturn:
        raise InvalidValueError(
            f"cannot parse objective: {message}\n  {self.expression}\n  {' ' * pos}^\n"
            f"valid terms: {_valid_terms()}; "
            f"example: '0.98*align(alpha=2) + 0.96*uniform(t=2) + 0.5*contrastive(tau=0.5)'"
        )

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _take(self, kind: str, text: str | None = None, expected: str = "") -> tuple[str, int]:
        token = self._peek()
        if token is None or token[0] != kind or (text is not None and token[1] != text):
            found = "the end" if token is None else repr(token[1])
            pos = len(self.expression) if token is None else token[2]
            self._fail(pos, f"expected {expected or repr(text)}, found {found}")
        self.index += 1
        return token[1], token[2]

    def _number(self, what: str) -> tuple[float, int]:
        text, pos = self._take("number", expected=f"a number ({what})")
        value = float(text)
        if not math.isfinite(value) or value <= 0:
            self._fail(pos, f"{what} must be a finite number > 0, got {text}")
        return value, pos

    def objective(self) -> list[tuple[float, Term]]:
        if not self.tokens:
            self._fail(0, "the expression is empty")
        terms = [self._term()]
        while self._peek() is not None:
            self._take("op", "+", expected="'+' between terms")
            start = self._peek()
            terms.append(self._term())
            if any(term.name == terms[-1][1].name for _, term in terms[:-1]):
                self._fail(start[2], f"{terms[-1][1].name} appears twice; add the weights instead")
        return terms

    def _term(self) -> tuple[float, Term]:
        weight = 1.0
        token = self._peek()
        if token is not None and token[0] == "number":
            weight, _ = self._number("weight")
            self._take("op", "*", expected="'*' after the weight")
        kind, kind_pos = self._take("name", expected="a term name")
        if kind not in _KINDS:
            close = difflib.get_close_matches(kind, list(_KINDS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self._fail(kind_pos, f"unknown term {kind!r}{hint}")
        params: dict[str, float] = {}
        token = self._peek()
        if token is not None and token[1] == "(":
            self.index += 1
            token = self._peek()
            while token is None or token[1] != ")":
                if params:
                    self._take("op", ",", expected="',' or ')'")
                name, pos = self._take("name", expected=f"a parameter of {kind}")
                if name not in _KINDS[kind].defaults:
                    valid = ", ".join(_KINDS[kind].defaults)
                    self._fail(pos, f"{kind} has no parameter {name!r}; its parameters: {valid}")
                if name in params:
                    self._fail(pos, f"parameter {name!r} is given twice")
                self._take("op", "=", expected=f"'=' after {name}")
                params[name], _ = self._number(name)
                token = self._peek()
            self.index += 1
        return weight, Term.create(kind, **params)
