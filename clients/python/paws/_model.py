"""The base of the generated dataclasses: their JSON form in the API's camelCase."""
from __future__ import annotations

from typing import Any, ClassVar, Mapping


class Model:
    # Set by each generated class: python attribute -> JSON name, and which attributes the API requires.
    _json_names: ClassVar[dict[str, str]] = {}
    _required: ClassVar[frozenset[str]] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        """The JSON object the API expects; optional attributes left at None are omitted."""
        out: dict[str, Any] = {}
        for attribute, name in self._json_names.items():
            value = getattr(self, attribute)
            if value is None and attribute not in self._required:
                continue
            out[name] = to_json(value)
        return out


def to_json(value: Any) -> Any:
    """Models become their dicts, recursively through lists and mappings (which may mix models and dicts)."""
    if isinstance(value, Model):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {key: to_json(item) for key, item in value.items() if item is not None}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    return value
