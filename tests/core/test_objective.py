"""Objective: parsing, evaluation, round-tripping through str, and error messages."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from alignuniform import Objective, align_loss, contrastive_loss, uniform_loss
from alignuniform.core.objective import Term


def views(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = F.normalize(torch.randn(16, 8, generator=g, dtype=torch.float64), dim=1)
    y = F.normalize(x + 0.3 * torch.randn(16, 8, generator=g, dtype=torch.float64), dim=1)
    return x, y


def test_parse_reads_weights_parameters_and_defaults():
    text = "0.98*align(alpha=2) + 0.96*uniform(t=2) + 0.5*contrastive(tau=0.5)"
    objective = Objective.parse(text)
    assert objective.terms == (
        (0.98, Term("align", (("alpha", 2.0),))),
        (0.96, Term("uniform", (("t", 2.0),))),
        (0.5, Term("contrastive", (("tau", 0.5),))),
    )
    plain = Objective.parse("align + uniform()  +contrastive")
    assert [(w, term.name) for w, term in plain.terms] == [
        (1.0, "align(alpha=2)"),
        (1.0, "uniform(t=2)"),
        (1.0, "contrastive(tau=0.07)"),
    ]
    assert Objective.parse("1e-3 * uniform( t = 1.5e0 )").terms == (
        (0.001, Term("uniform", (("t", 1.5),))),
    )


def test_call_returns_the_weighted_total_and_each_unweighted_term():
    x, y = views()
    out = Objective.parse("0.98*align(alpha=1) + 0.96*uniform(t=3) + 0.5*contrastive(tau=0.2)")(
        x, y
    )
    expected = {
        "align(alpha=1)": align_loss(x, y, 1.0),
        "uniform(t=3)": uniform_loss(x, y, 3.0),
        "contrastive(tau=0.2)": contrastive_loss(x, y, 0.2),
    }
    assert list(out.terms) == list(expected)
    for name, value in expected.items():
        assert torch.equal(out.terms[name], value)
    total = 0.98 * expected["align(alpha=1)"] + 0.96 * expected["uniform(t=3)"]
    total = total + 0.5 * expected["contrastive(tau=0.2)"]
    assert math.isclose(out.total.item(), total.item(), rel_tol=1e-12)


def test_total_is_differentiable():
    x, y = views(1)
    x.requires_grad_()
    Objective.parse("align + uniform")(x, y).total.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_negatives_reach_the_contrastive_term():
    x, y = views(2)
    queue, _ = views(3)
    out = Objective.parse("contrastive(tau=0.2) + align")(x, y, negatives=queue)
    expected = contrastive_loss(x, y, 0.2, negatives=queue)
    assert torch.equal(out.terms["contrastive(tau=0.2)"], expected)


def test_a_call_checks_the_batch_once_for_every_term():
    x, y = views(4)
    align_only = Objective.parse("align")
    assert align_only.min_rows() == 1 and Objective.parse("uniform").min_rows() == 2
    assert Objective.parse("contrastive").min_rows(negatives=True) == 1
    assert torch.equal(align_only(x[:1], y[:1]).total, align_loss(x[:1], y[:1]))
    with pytest.raises(ValueError, match="x needs at least 2 rows"):
        Objective.parse("align + uniform")(x[:1], y[:1])
    with pytest.raises(ValueError, match="unit-norm"):
        Objective.parse("align + uniform")(2 * x, y)
    with pytest.raises(ValueError, match="x and negatives must have the same embedding width"):
        Objective.parse("contrastive")(x, y, negatives=F.normalize(x[:, :3], dim=1))
    with pytest.raises(ValueError, match=r"t=1e\+38 is too large for torch.float32"):
        Objective.parse("align + uniform(t=1e38)")(x.float(), y.float())
    checked = Objective.parse("uniform").check(3 * x, 3 * y, names=("z_a", "z_b"), normalize=True)
    assert torch.allclose(checked[0].norm(dim=1), torch.ones(16, dtype=torch.float64))
    assert checked[2] is None


@pytest.mark.parametrize(
    ("expression", "family"),
    [
        ("contrastive(tau=0.19)", "contrastive"),
        ("0.5*contrastive + 0.5*contrastive(tau=0.1)", "contrastive"),
        ("0.98*align + 0.96*uniform", "align_uniform"),
        ("uniform(t=3)", "align_uniform"),
        ("contrastive(tau=0.5) + uniform(t=2)", "mixed"),
    ],
)
def test_family_groups_objectives_like_the_paper(expression, family):
    assert Objective.parse(expression).family == family


def test_str_writes_the_canonical_form():
    objective = Objective.parse("0.98*align + 1*uniform(t=2.0)")
    assert str(objective) == "0.98*align(alpha=2) + uniform(t=2)"


positive_numbers = st.floats(min_value=1e-8, max_value=1e8, allow_nan=False, allow_infinity=False)
PARAMETER = {"align": "alpha", "uniform": "t", "contrastive": "tau"}
terms = st.builds(
    lambda kind, value: Term.create(kind, **{PARAMETER[kind]: value}),
    st.sampled_from(list(PARAMETER)),
    positive_numbers,
)
objectives = st.lists(
    st.tuples(positive_numbers | st.just(1.0), terms),
    min_size=1,
    max_size=6,
    unique_by=lambda weighted: weighted[1].name,
).map(Objective)


@settings(max_examples=200, deadline=None)
@given(objective=objectives)
def test_str_round_trips_through_parse(objective):
    parsed = Objective.parse(str(objective))
    assert parsed == objective
    assert str(parsed) == str(objective)


@pytest.mark.parametrize(
    ("expression", "problem", "column"),
    [
        ("", "the expression is empty", 0),
        ("alig(alpha=2)", "unknown term 'alig' (did you mean 'align'?)", 0),
        ("align + unifrom", "unknown term 'unifrom' (did you mean 'uniform'?)", 8),
        ("0.5*align(beta=2)", "align has no parameter 'beta'; its parameters: alpha", 10),
        ("uniform(t=2, t=3)", "parameter 't' is given twice", 13),
        ("align(alpha=0)", "alpha must be a finite number > 0, got 0", 12),
        ("align(alpha=-1)", "unexpected character '-' (weights and parameters must be > 0)", 12),
        ("0*align", "weight must be a finite number > 0", 0),
        ("1e999*align", "weight must be a finite number > 0", 0),
        ("0.5 align", "expected '*' after the weight, found 'align'", 4),
        ("align uniform", "expected '+' between terms, found 'uniform'", 6),
        ("align +", "expected a term name, found the end", 7),
        ("align(alpha=2", "expected ',' or ')', found the end", 13),
        ("align(alpha 2)", "expected '=' after alpha, found '2'", 12),
        ("align(alpha=)", "expected a number (alpha), found ')'", 12),
        ("align $ uniform", "unexpected character '$'", 6),
        ("align + 2*align(alpha=2)", "align(alpha=2) appears twice; add the weights instead", 8),
    ],
)
def test_parse_errors_show_the_expression_point_at_the_problem_and_list_valid_terms(
    expression, problem, column
):
    with pytest.raises(ValueError) as caught:
        Objective.parse(expression)
    message = str(caught.value)
    lines = message.splitlines()
    assert problem in lines[0]
    assert lines[1] == f"  {expression}"
    assert lines[2] == " " * (2 + column) + "^"
    assert "valid terms: align(alpha=2), uniform(t=2), contrastive(tau=0.07)" in message


def test_parse_refuses_non_strings():
    with pytest.raises(TypeError, match="expression must be a str"):
        Objective.parse(None)


def test_building_terms_and_objectives_directly_checks_them():
    with pytest.raises(ValueError, match="unknown term 'hinge'; valid terms: align"):
        Term.create("hinge")
    with pytest.raises(ValueError, match="uniform has no parameter 'tau'; its parameters: t"):
        Term.create("uniform", tau=0.1)
    with pytest.raises(ValueError, match="t must be > 0"):
        Term.create("uniform", t=0)
    with pytest.raises(ValueError, match="at least one term"):
        Objective([])
    with pytest.raises(ValueError, match="weight must be > 0"):
        Objective([(-1.0, Term.create("align"))])
    with pytest.raises(ValueError, match="appears more than once"):
        Objective([(1.0, Term.create("align")), (2.0, Term.create("align", alpha=2))])
