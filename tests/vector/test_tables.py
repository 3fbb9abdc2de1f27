"""lookup() on both evaluators: any table, any key column, the same cells and nulls to the bit."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from policy_engine.language import expressions as ex
from policy_engine.portfolio.vector import Col, VectorEval

NUMBERS = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_subnormal=False)


def _py(v: Any) -> Any:
    """A numpy scalar as the Python value the row evaluator holds."""
    return v.item() if isinstance(v, np.generic) else v


def _check(table: ex.Table, keys: list[Col], key_types: list[str]) -> tuple[list[Any], list[Any]]:
    """The row form (the compiled expression) and the vector form of lookup(table, keys...) per row."""
    names = [f"k{i}" for i in range(len(keys))]
    table = ex.Table(table.name, tuple(names), table.type, table.cells, table.interpolate, table.xs, table.ys,
                     table.slopes)
    symbols = {n: ex.Symbol(n, "input", t, True) for n, t in zip(names, key_types, strict=True)}
    symbols["t"] = ex.Symbol("t", "param", ex.TABLE, False, table=table)
    checked = ex.check_expression(f"lookup(t, {', '.join(names)})", ex.Scope(symbols, "metric", ()))
    row = ex.compile_standalone(checked)
    n = len(keys[0].data)
    rows = [row({name: (_py(k.data[i]) if k.valid[i] else None) for name, k in zip(names, keys, strict=True)})
            for i in range(n)]
    ve = VectorEval(n, dict(zip(names, keys, strict=True)), ())
    col = ve.eval(checked)
    vector = [_py(col.data[i]) if col.valid[i] else None for i in range(n)]
    return rows, vector


@st.composite
def interpolated(draw: Any) -> ex.Table:
    xs = tuple(sorted(draw(st.sets(NUMBERS, min_size=2, max_size=8))))
    ys = tuple(draw(st.lists(NUMBERS, min_size=len(xs), max_size=len(xs))))
    slopes = tuple((ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j]) for j in range(len(xs) - 1))
    assume(all(np.isfinite(slopes)))  # validate refuses such a table (table-points-too-close)
    return ex.Table("t", ("k",), ex.NUMBER, dict(zip(xs, ys, strict=True)), True, xs, ys, slopes)


@settings(max_examples=150, deadline=None)
@given(interpolated(), st.lists(st.one_of(st.none(), NUMBERS), min_size=1, max_size=30), st.data())
def test_interpolation_agrees_on_both_paths(table: ex.Table, xs: list[float | None], data: st.DataObject) -> None:
    # the points themselves too: there the value is the cell as written
    xs = [*xs, data.draw(st.sampled_from(table.xs))]
    keys = Col(np.array([0.0 if x is None else x for x in xs]), np.array([x is not None for x in xs]))
    rows, vector = _check(table, [keys], [ex.NUMBER])
    assert rows == vector
    assert rows[-1] == table.cells[xs[-1]]
    for x, y in zip(xs, rows, strict=True):
        assert (y is None) == (x is None)
        if x is not None:
            assert min(table.ys) <= y <= max(table.ys) or np.isclose(y, min(table.ys)) or np.isclose(y, max(table.ys))


TEXT = st.sampled_from(["a", "b", "c", "d", ""])


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.tuples(TEXT, st.integers(1, 4)), st.one_of(NUMBERS, st.booleans(), TEXT), min_size=1),
       st.lists(st.tuples(st.one_of(st.none(), TEXT), st.one_of(st.none(), st.integers(0, 5))), min_size=1,
                max_size=30))
def test_two_key_cells_agree_on_both_paths(cells: dict[tuple[str, int], Any], rows_in: list[Any]) -> None:
    # Tables the checker would refuse (cells missing, mixed kinds cast to one) still agree: a missing cell is null.
    kind = ex.NUMBER if all(type(v) is float for v in cells.values()) else \
        ex.BOOL if all(type(v) is bool for v in cells.values()) else ex.STRING
    cells = {(a, float(b)): v if kind != ex.STRING else str(v) for (a, b), v in cells.items()}
    table = ex.Table("t", ("k0", "k1"), kind, cells)
    first = Col(np.array(["" if a is None else a for a, _ in rows_in], dtype=object),
                np.array([a is not None for a, _ in rows_in]))
    second = Col(np.array([0.0 if b is None else float(b) for _, b in rows_in]),
                 np.array([b is not None for _, b in rows_in]))
    rows, vector = _check(table, [first, second], [ex.STRING, ex.NUMBER])
    assert rows == vector
    for (a, b), got in zip(rows_in, rows, strict=True):
        assert got == (None if a is None or b is None else cells.get((a, float(b))))


def test_the_vector_form_reads_a_constant_key() -> None:
    # A key column that is one value for every row (a 0-d array, as a literal or a parameter is).
    table = ex.Table("t", ("k",), ex.NUMBER, {"x": 1.0, "y": 2.0})
    symbols = {"k": ex.Symbol("k", "input", ex.STRING, False),
               "t": ex.Symbol("t", "param", ex.TABLE, False, table=table)}
    checked = ex.check_expression("lookup(t, k)", ex.Scope(symbols, "metric", ()))
    col = VectorEval(3, {"k": Col(np.asarray("y", dtype=object), np.asarray(True))}, ()).eval(checked)
    assert col.data.tolist() == [2.0, 2.0, 2.0] and col.valid.tolist() == [True] * 3
