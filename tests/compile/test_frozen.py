"""The value classes of the compiled form behave as the frozen dataclasses they replace."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

from policy_engine.frozen import Frozen, field


class Point(Frozen):
    x: float
    y: float = 0.0
    tags: list[str] = field(default_factory=list)
    note: str = field(default="", repr=False, compare=False)


class Tagged(Point):
    label: str = "?"


class Handle(Frozen, eq=False):
    name: str


class Pair(Frozen):
    a: int
    b: str = field(default="", compare=False)


class Box(Frozen, frozen=False):
    items: list[int] = field(default_factory=list)


@pytest.mark.parametrize(("args", "kwargs", "expected"), [
    ((1.0,), {}, {"x": 1.0, "y": 0.0, "tags": [], "note": ""}),
    ((1.0, 2.0), {"note": "n"}, {"x": 1.0, "y": 2.0, "tags": [], "note": "n"}),
    ((), {"y": 3.0, "x": 4.0, "tags": ["a"]}, {"x": 4.0, "y": 3.0, "tags": ["a"], "note": ""}),
])
def test_construction_by_position_keyword_and_default(args: tuple[Any, ...], kwargs: dict[str, Any],
                                                      expected: dict[str, Any]) -> None:
    assert Point(*args, **kwargs).as_dict() == expected


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    ((), {}, "missing required argument 'x'"),
    ((1.0, 2.0, [], "", "extra"), {}, "takes 4 arguments but 5 were given"),
    ((1.0,), {"x": 2.0}, "unexpected or repeated argument 'x'"),
    ((1.0,), {"z": 2.0}, "unexpected or repeated argument 'z'"),
])
def test_bad_construction_is_a_type_error(args: tuple[Any, ...], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        Point(*args, **kwargs)


def test_default_factories_give_each_instance_its_own_value() -> None:
    a, b = Point(1.0), Point(1.0)
    a.tags.append("x")
    assert b.tags == []


def test_frozen_equality_hash_and_repr_follow_the_compared_fields() -> None:
    p = Point(1.0, 2.0, note="left out")
    assert p == Point(1.0, 2.0, note="other")  # note is not compared
    with pytest.raises(TypeError):
        hash(p)  # a list among the compared fields, as with a dataclass
    assert hash(Pair(1, "x")) == hash(Pair(1, "y")) and Pair(1, "x") == Pair(1, "y") and Pair(1) != Pair(2)
    assert p != Point(1.0, 3.0) and p != Tagged(1.0, 2.0)
    assert repr(p) == "Point(x=1.0, y=2.0, tags=[])"
    with pytest.raises(AttributeError, match="frozen Point"):
        p.x = 5.0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del p.y  # type: ignore[misc]


def test_subclasses_extend_the_fields() -> None:
    t = Tagged(1.0, label="t")
    assert t.as_dict() == {"x": 1.0, "y": 0.0, "tags": [], "note": "", "label": "t"}
    assert repr(t) == "Tagged(x=1.0, y=0.0, tags=[], label='t')"


def test_eq_false_compares_by_identity_and_frozen_false_allows_assignment() -> None:
    h = Handle("a")
    assert h != Handle("a") and h == h and hash(h) == object.__hash__(h)
    box = Box()
    box.items = [1]
    assert box == Box([1])
    with pytest.raises(TypeError):
        hash(box)


def test_pickle_and_copy_round_trip() -> None:
    p = Tagged(1.0, 2.0, ["a"], "n", "t")
    for twin in (pickle.loads(pickle.dumps(p)), copy.copy(p), copy.deepcopy(p)):
        assert twin == p and twin.note == "n" and type(twin) is Tagged
