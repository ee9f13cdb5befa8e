"""Frozen dataclass configs filled from YAML presets and ``key=value`` overrides.

Every method describes its settings as a frozen dataclass (possibly nested). ``load_config`` starts from the
dataclass defaults, applies a YAML file (a mapping, nested for nested dataclasses) and then ``key=value`` strings
(dotted keys for nested fields, values parsed as YAML scalars). An unknown key or a value of the wrong type raises
``ConfigError`` naming it, so a typo never silently trains the wrong model.
"""
from __future__ import annotations

import dataclasses
import os
import typing
from typing import Any, Iterable, Mapping, TypeVar

import yaml

from .errors import ConfigError, InputError

C = TypeVar("C")


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin is typing.Union or (origin is not None and str(origin) == "types.UnionType"):
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError:
                continue
        raise ConfigError(f"config key '{key}': cannot use {value!r} as {annotation}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}': expected a list, got {value!r}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], key) for v in value)
        if origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(f"config key '{key}': expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, key) for v, a in zip(value, args))
        inner = args[0] if args else Any
        return origin(_coerce(v, inner, key) for v in value)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key '{key}': expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(annotation):
        if isinstance(annotation, type) and isinstance(value, annotation):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key '{key}': expected a mapping, got {value!r}")
        return replace(annotation(), value, prefix=key + ".")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key '{key}': expected true/false, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"config key '{key}': expected a number, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"config key '{key}': expected an integer, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"config key '{key}': expected a string, got {value!r}")
    return value


def replace(config: C, changes: Mapping[str, Any], prefix: str = "") -> C:
    """Return a copy of the frozen dataclass ``config`` with nested ``changes`` applied (type-checked)."""
    hints = typing.get_type_hints(type(config))
    names = {f.name for f in dataclasses.fields(config)}
    updates: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in names:
            known = ", ".join(sorted(names))
            raise ConfigError(f"unknown config key '{prefix}{key}' (known: {known})")
        current = getattr(config, key)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            updates[key] = replace(current, value, prefix=f"{prefix}{key}.")
        else:
            updates[key] = _coerce(value, hints[key], prefix + key)
    return dataclasses.replace(config, **updates)


def parse_overrides(overrides: Iterable[str]) -> dict[str, Any]:
    """Turn ``["train.lr=0.1", "covariates=[I, G]"]`` into a nested mapping (values parsed as YAML)."""
    nested: dict[str, Any] = {}
    for text in overrides:
        if "=" not in text:
            raise ConfigError(f"override '{text}' is not of the form key=value")
        key, raw = text.split("=", 1)
        value = yaml.safe_load(raw) if raw != "" else ""
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def load_config(cls: type[C], file: str | os.PathLike | None = None, overrides: Iterable[str] = (),
                base: C | None = None) -> C:
    """Build a ``cls`` config: defaults (or ``base``), then the YAML ``file``, then ``key=value`` overrides."""
    config = base if base is not None else cls()
    if file is not None:
        if not os.path.isfile(file):
            raise InputError(file, "config file not found")
        try:
            with open(file, encoding="utf-8") as f:
                data = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise InputError(file, f"not valid YAML ({e.__class__.__name__})") from None
        if not isinstance(data, Mapping):
            raise InputError(file, "a config file must hold a mapping of keys to values")
        config = replace(config, data)
    return replace(config, parse_overrides(overrides))


def to_dict(config: Any) -> dict[str, Any]:
    """A plain, JSON-serialisable dict of a (nested) dataclass config."""
    return dataclasses.asdict(config)


def defaults_dict(config: Any) -> dict[str, Any]:
    """``to_dict`` of the config class's defaults: what a run recorded before a field existed ran with, since
    new fields are added switched off (``Run.create(defaults=...)``)."""
    return to_dict(type(config)())


def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
    """Rebuild a config saved with ``to_dict`` (e.g. from a checkpoint)."""
    return replace(cls(), data)
