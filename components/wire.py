"""Arguments as they arrive from another language's program.

Pulumi's wire format has one number type, so an integer reaches a component hosted by the
component provider as a float (30 -> 30.0); pulumi 3.272's provider converts top-level integers
and then keeps the float it had (`map_input_properties`), and never converts inside lists or
nested types. A float where an int is declared would end up in names ("signing-key-1.0"), in the
viewer function's grammar ("w=160.0") and in the state machine's ASL. The package's provider
(components/package.py) passes every component's mapped inputs through `integers`, in the one place
another language's values become args; Python programs never take that path.
"""

import typing
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def _unwrap(hint: Any) -> Any:
    """NotRequired[X] / Required[X] -> X."""
    while typing.get_origin(hint) in (typing.NotRequired, typing.Required):
        hint = typing.get_args(hint)[0]
    return hint


def _declares_int(hint: Any) -> bool:
    if hint is int:
        return True
    return typing.get_origin(hint) is typing.Union and int in typing.get_args(hint)


def _item_hint(hint: Any) -> Any:
    """The element type of a Sequence[...] (or of an Input[Sequence[...]]), else None."""
    for candidate in (hint, *typing.get_args(hint)):
        origin = typing.get_origin(candidate)
        if origin is not None and isinstance(origin, type) and issubclass(origin, Sequence) and origin is not str:
            args = typing.get_args(candidate)
            return args[0] if args else None
    return None


def _convert(value: Any, hint: Any) -> Any:
    hint = _unwrap(hint)
    if isinstance(value, float) and value.is_integer() and _declares_int(hint):
        return int(value)
    if typing.is_typeddict(hint) and isinstance(value, Mapping):
        return integers(dict(value), hint)
    item = _item_hint(hint)
    if item is not None and isinstance(value, list | tuple):
        return [_convert(v, item) for v in value]
    return value


def integers(args: T, kind: type[Any]) -> T:
    """`args` (a dict of the TypedDict `kind`) with every integral float where an int is declared made an int."""
    # The annotations themselves, not get_type_hints: pulumi.Input holds a forward reference
    # ("Output[T]") that only resolves inside pulumi.
    hints: dict[str, Any] = {}
    for cls in reversed(kind.__mro__):
        hints.update(getattr(cls, "__annotations__", {}))
    converted = {k: _convert(v, hints[k]) if k in hints else v for k, v in dict(args).items()}  # type: ignore[call-overload]
    return converted  # type: ignore[return-value]
