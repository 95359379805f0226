"""One JSON codec for every settings dataclass: how settings travel as TFX exec properties, custom_config and
subprocess arguments (never pickle), so that MLMD shows them and TFX's cache keys on them.

`encode_settings` writes what `json.dumps(dataclasses.asdict(settings), sort_keys=True)` wrote before this
codec, byte for byte. `decode_settings` is strict where a hand-written `Settings(**json.loads(text))` was
not: an unknown key, a missing required one and a value of the wrong type each fail with a message naming
the setting as `Class.field`, the form pipeline/flag_names.py rewrites to the flag a user types. Missing
optional keys take their defaults, so settings stored before a field was added still decode.

Types understood: nested dataclasses, `tuple[X, ...]` and `tuple[X, Y]`, `list[X]`, `dict[str, X]`,
`X | None`, int, float (an int is a float too: JSON does not tell 1 from 1.0), bool, str, and `typing.Any`.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def settings_to_value(settings: Any) -> Any:
    """Plain JSON values: a dataclass becomes an object of its fields, a tuple a list."""
    if dataclasses.is_dataclass(settings) and not isinstance(settings, type):
        return {f.name: settings_to_value(getattr(settings, f.name)) for f in dataclasses.fields(settings)}
    if isinstance(settings, (list, tuple)):
        return [settings_to_value(value) for value in settings]
    if isinstance(settings, dict):
        return {str(key): settings_to_value(value) for key, value in settings.items()}
    return settings


def encode_settings(settings: Any) -> str:
    """JSON text of a settings dataclass (or a dict of them), keys sorted: the same settings always give the
    same text, which is what TFX's cache compares."""
    return json.dumps(settings_to_value(settings), sort_keys=True)


def decode_settings(cls: type[T], text: str | None, where: str) -> T:
    """Inverse of `encode_settings`. `where` names what is decoded for the error messages (an exec property,
    a file); empty or absent text is `{}`, every setting at its default."""
    return settings_from_value(cls, parse_json_object(text, where), where)


def parse_json_object(text: str | None, where: str) -> dict:
    """`text` as a JSON object; empty or absent text is `{}`."""
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as error:
        raise ValueError(f"{where}: not valid JSON ({error}); got {text[:200]!r}") from error
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a JSON object of settings; got {text[:200]!r}")
    return value


def settings_from_value(cls: type[T], value: Any, where: str) -> T:
    """A settings dataclass from plain JSON values (an object of its fields), checked key by key."""
    if not isinstance(value, dict):
        raise ValueError(f"{where}: {cls.__name__} must be a JSON object; got {_shown(value)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise ValueError(
            f"{where}: unknown setting{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(f'{cls.__name__}.{name}' for name in unknown)} (known: {', '.join(sorted(fields))})"
        )
    hints = typing.get_type_hints(cls)
    missing = [
        name
        for name, f in fields.items()
        if name not in value and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
    ]
    if missing:
        raise ValueError(
            f"{where}: missing setting{'s' if len(missing) > 1 else ''} "
            f"{', '.join(f'{cls.__name__}.{name}' for name in missing)}"
        )
    decoded = {
        name: _decode(hints[name], item, f"{cls.__name__}.{name}", where) for name, item in value.items()
    }
    return cls(**decoded)


def _decode(hint: Any, value: Any, name: str, where: str) -> Any:
    """`value` as type `hint`, or a ValueError naming the setting `name` (`Class.field`, or inside one)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [arg for arg in args if arg is not type(None)]
        if len(options) == 1:
            return _decode(options[0], value, name, where)
        for option in options:  # the first type the value fits
            try:
                return _decode(option, value, name, where)
            except ValueError:
                continue
        raise _wrong(hint, value, name, where)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise _wrong(hint, value, name, where)
        return settings_from_value(hint, value, where)
    if origin in (tuple, list):
        if not isinstance(value, list):
            raise _wrong(hint, value, name, where)
        if origin is list or (len(args) == 2 and args[1] is Ellipsis):
            item_type = args[0] if args else Any
            items = [_decode(item_type, item, f"{name}[{i}]", where) for i, item in enumerate(value)]
        else:
            if len(value) != len(args):
                raise _wrong(hint, value, name, where)
            items = [
                _decode(t, item, f"{name}[{i}]", where)
                for i, (t, item) in enumerate(zip(args, value, strict=True))
            ]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise _wrong(hint, value, name, where)
        item_type = args[1] if args else Any
        return {key: _decode(item_type, item, f"{name}[{key!r}]", where) for key, item in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise _wrong(hint, value, name, where)
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong(hint, value, name, where)
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _wrong(hint, value, name, where)
        return value
    if hint is str:
        if not isinstance(value, str):
            raise _wrong(hint, value, name, where)
        return value
    raise TypeError(f"{where}: the settings codec cannot decode {name} of type {hint!r}")


def _type_name(hint: Any) -> str:
    if isinstance(hint, type) and typing.get_origin(hint) is None:
        return hint.__name__
    return str(hint).replace("typing.", "")


def _shown(value: Any) -> str:
    return json.dumps(value)[:200] if value is not None else "null"


def _wrong(hint: Any, value: Any, name: str, where: str) -> ValueError:
    return ValueError(f"{where}: setting {name} must be {_type_name(hint)}, got {_shown(value)}")
