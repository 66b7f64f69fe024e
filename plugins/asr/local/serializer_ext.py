"""Cheaper answers to large Describe calls: moto's attribute-name lookups, remembered.

moto 5.2 builds each answer from its model objects. For every attribute of every object
it asks six alias providers which names to try (the member's name, its snake_case form,
the name without the shape's or the class's prefix, ...), then scans the service's
response transformers for one whose path ends the attribute's path. Profiled, that was
more than half of the stand-in's CPU for a DescribeInstances of 80 instances, and such
reads took a third of its CPU in a sweep. The names depend only on the picker's class,
the object's class (and its ``Meta``), the key, and the member shape with its parent; the
transformer only on the path: both are now remembered. Which name an object has, and its
value, are still read from the object every time, so each answer is the one moto gives.
"""

from __future__ import annotations

from typing import Any

from moto.core import serialize
from moto.core.utils import MISSING, get_value

_stock_call = serialize.AttributePicker.__call__
# Bounds for a process that lives for days: shapes and classes are few, but a cache
# that cannot grow without end is cheaper to trust than to argue about.
_MOST_REMEMBERED = 200_000
_names: dict[tuple[Any, ...], tuple[str, ...]] = {}
# id(transformers) -> (that dict, its size when seen, {attribute path: matching path or None})
_transform_paths: dict[int, tuple[dict[str, Any], int, dict[str, str | None]]] = {}


def _names_to_try(
    picker: serialize.AttributePicker, context: serialize.AttributePickerContext
) -> tuple[str, ...]:
    obj, shape = context.obj, context.shape
    try:
        key = (
            type(picker),
            type(obj),
            getattr(obj, "Meta", None),
            context.key,
            shape,
            getattr(shape, "parent", None),
        )
        names = _names.get(key)
    except TypeError:  # an unhashable Meta: ask moto every time
        return tuple(picker.get_possible_keys(context))
    if names is None:
        if len(_names) >= _MOST_REMEMBERED:
            _names.clear()
        names = _names[key] = tuple(picker.get_possible_keys(context))
    return names


def _transform_path(transformers: dict[str, Any], key_path: str) -> str | None:
    """The first transformer path that ends ``key_path``, as moto's scan finds it. A
    transformer moto adds while serving (CreateVpcPeeringConnection does) changes the
    dict's size, which starts its memory afresh; one it replaces is looked up by path below."""
    held = _transform_paths.get(id(transformers))
    if held is None or held[0] is not transformers or held[1] != len(transformers):
        held = _transform_paths[id(transformers)] = (transformers, len(transformers), {})
    known = held[2]
    if key_path not in known:
        if len(known) >= _MOST_REMEMBERED:
            known.clear()
        known[key_path] = next((path for path in transformers if key_path.endswith(path)), None)
    return known[key_path]


def picked_value(self: serialize.AttributePicker, context: serialize.AttributePickerContext) -> Any:
    """moto's ``AttributePicker.__call__``, with the names and the transformer remembered."""
    obj = context.obj
    for name in _names_to_try(self, context):
        value = get_value(obj, name, MISSING)
        if value is not MISSING:
            break
    else:
        value = None
    transformers = self.response_transformers
    if transformers:
        path = _transform_path(transformers, f"{context.key_path}.{context.key}")
        if path is not None:
            value = transformers[path](value)
    return value


def install() -> None:
    serialize.AttributePicker.__call__ = picked_value  # type: ignore[method-assign]
