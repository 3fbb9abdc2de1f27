"""Immutable value classes declared like dataclasses, without generating code per class.

Python 3.11's ``dataclasses`` execs four to six generated methods for every class, about 3M
instructions each: some 60M, a tenth of a ``policy-engine decide`` process, for the twenty-odd
classes on its path. A :class:`Frozen` subclass gets shared methods driven by its annotations
instead: keyword or positional construction with defaults, no assignment after it, and
``__eq__``/``__hash__``/``__repr__`` over the fields (``eq=False`` keeps identity;
``frozen=False`` allows assignment). Static checkers read it as a dataclass (PEP 681).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, ClassVar, dataclass_transform

_MISSING: Any = object()


class _Field:
    __slots__ = ("compare", "default", "factory", "repr")

    def __init__(self, default: Any, factory: Callable[[], Any] | None, repr: bool, compare: bool):
        self.default, self.factory, self.repr, self.compare = default, factory, repr, compare


def field(*, default: Any = _MISSING, default_factory: Callable[[], Any] | None = None, repr: bool = True,
          compare: bool = True) -> Any:
    """A field's default (or a factory for one), and whether repr and equality include it."""
    return _Field(default, default_factory, repr, compare)


@dataclass_transform(frozen_default=True, eq_default=True, field_specifiers=(field,))
class Frozen:
    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[dict[str, _Field]] = {}  # set per class by __init_subclass__, read only
    _compared: ClassVar[tuple[str, ...]] = ()
    _shown: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, eq: bool = True, frozen: bool = True, **kw: Any):
        super().__init_subclass__(**kw)
        own = [n for n in inspect.get_annotations(cls) if not n.startswith("_")]
        defaults = dict(cls._defaults)
        specs: dict[str, _Field] = {}
        for name in own:
            value = cls.__dict__.get(name, _MISSING)
            spec = value if isinstance(value, _Field) else _Field(value, None, True, True)
            specs[name] = spec
            if spec.default is not _MISSING or spec.factory is not None:
                defaults[name] = spec
            if value is not _MISSING:
                delattr(cls, name)  # the instance holds the value
        inherited = [n for n in cls._fields if n not in specs]
        cls._fields = (*inherited, *own)
        cls._defaults = defaults
        shown = set(cls._shown) | {n for n, s in specs.items() if s.repr}
        compared = set(cls._compared) | {n for n, s in specs.items() if s.compare}
        cls._shown = tuple(n for n in cls._fields if n in shown)
        cls._compared = tuple(n for n in cls._fields if n in compared)
        if not eq:
            cls.__eq__ = object.__eq__  # type: ignore[method-assign]
            cls.__hash__ = object.__hash__  # type: ignore[method-assign]
        if not frozen:  # a plain mutable record, unhashable when compared by value (as a dataclass)
            cls.__setattr__ = object.__setattr__  # type: ignore[method-assign]
            cls.__delattr__ = object.__delattr__  # type: ignore[method-assign]
            if eq:
                cls.__hash__ = None  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any):
        fields = self._fields
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__}() takes {len(fields)} arguments but {len(args)} were given")
        values = dict(zip(fields, args, strict=False))
        for name, value in kwargs.items():
            if name not in fields or name in values:
                raise TypeError(f"{type(self).__name__}() got an unexpected or repeated argument {name!r}")
            values[name] = value
        if len(values) < len(fields):
            for name in fields:
                if name not in values:
                    spec = self._defaults.get(name)
                    if spec is None:
                        raise TypeError(f"{type(self).__name__}() missing required argument {name!r}")
                    values[name] = spec.factory() if spec.factory is not None else spec.default
        self.__dict__.update(values)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of a frozen {type(self).__name__}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of a frozen {type(self).__name__}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        d, o = self.__dict__, other.__dict__
        return all(d[n] == o[n] for n in self._compared)

    def __hash__(self) -> int:
        d = self.__dict__
        return hash(tuple(d[n] for n in self._compared))

    def __repr__(self) -> str:
        d = self.__dict__
        return f"{type(self).__name__}({', '.join(f'{n}={d[n]!r}' for n in self._shown)})"

    def as_dict(self) -> dict[str, Any]:
        """The fields and their values (not copied)."""
        d = self.__dict__
        return {n: d[n] for n in self._fields}
