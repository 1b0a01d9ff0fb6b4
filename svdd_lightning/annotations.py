"""What a declared option accepts: an annotation (``int``, ``Literal[...]``, ``Annotated[int, Range(ge=1)]``, unions)
read as words for a message and as a check of one value. The config checker (svdd_lightning/options.py) and the
decoders' constructors (Decoder.keep_options) read the same declarations."""

from __future__ import annotations

import inspect
import math
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from svdd_lightning.ranges import Range


def describe(annotation: Any) -> str:
    """What an annotation accepts, in words (for the error message)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        inner, ranges = args[0], [a for a in args[1:] if isinstance(a, Range)]
        text = describe(inner)
        return f"{text} {ranges[0].describe()}".strip() if ranges and ranges[0].describe() else text
    if origin in (Union, types.UnionType):
        words = [describe(a) if a is not type(None) else "null" for a in args]
        return " or ".join(dict.fromkeys(words))
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "a whole number"
    if annotation is float:
        return "a number"
    if annotation in (str, Path):
        return "a string"
    if origin in (list, tuple, Sequence) or annotation in (list, tuple):
        return "a list" + (f" of {describe(args[0])}s" if args and args[0] is not Ellipsis and describe(args[0]) else "")
    if origin in (dict, Mapping) or annotation is dict:
        return "a mapping"
    return getattr(annotation, "__name__", str(annotation))


def conforms(value: Any, annotation: Any) -> bool:
    """Whether a config value fits a declared annotation (types and ranges; unknown classes accept only nodes)."""
    if annotation is Any or annotation is inspect.Parameter.empty:
        return True
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        if not conforms(value, args[0]):
            return False
        return all(r.holds(value) for r in args[1:] if isinstance(r, Range) and not isinstance(value, (list, dict)))
    if origin in (Union, types.UnionType):
        return any(conforms(value, a) for a in args)
    if annotation is type(None) or annotation is None:
        return value is None
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if annotation in (str, Path) or annotation is typing.LiteralString:
        return isinstance(value, str)
    if origin in (list, tuple, Sequence) or annotation in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        inner = args[0] if args and args[-1] is not Ellipsis or len(args) == 2 else Any
        return not args or all(conforms(v, inner) for v in value)
    if origin in (dict, Mapping) or annotation in (dict, Mapping):
        return isinstance(value, dict)
    if isinstance(annotation, typing.TypeVar):
        return True
    # A class of its own (an nn.Module, a Domain, a Lightning Callback): a config can give it only as a node.
    return isinstance(value, dict)


def scalar_kind(annotation: Any) -> set[str]:
    """The scalar kinds an annotation admits (int, float, bool, str, literal): what the option test tries."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return scalar_kind(args[0])
    if origin in (Union, types.UnionType):
        return set().union(*(scalar_kind(a) for a in args))
    if origin is Literal:
        return {"literal"}
    return {{bool: "bool", int: "int", float: "float", str: "str", Path: "str"}.get(annotation, "other")}


def ranges_of(annotation: Any) -> list[tuple[Range, bool]]:
    """The ranges declared in an annotation, each with whether its number is whole."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return [(r, args[0] is int) for r in args[1:] if isinstance(r, Range) and r.describe()]
    if origin in (Union, types.UnionType):
        return [r for a in args for r in ranges_of(a)]
    return []
