"""Typed configs: YAML files with `_base_` inheritance, dotted overrides, strict validation.

A config is a tree of dataclasses. YAML is read with `yaml.safe_load`; a file may name one or more
`_base_` files (paths relative to itself) that it extends: mappings merge key by key, everything
else (lists included) is replaced. Command-line overrides use dotted keys whose values are parsed
as YAML scalars::

    cfg = load_config(StarGANConfig, "configs/stargan/market.yaml", ["gan.lambda_rec=5"])

Unknown keys and type mismatches raise `ConfigError` naming the key and listing the valid ones,
so a typo never silently falls back to a default.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
BASE_KEY = "_base_"


class ConfigError(ValueError):
    """A config file or override that does not fit the config's dataclasses."""


# ----------------------------------------------------------------------------- YAML + inheritance
def load_yaml_tree(path: str | os.PathLike, _seen: tuple[Path, ...] = ()) -> dict:
    """Read `path` and everything it inherits through `_base_`, merged into one plain dict."""
    path = Path(path).resolve()
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise ConfigError(f"_base_ cycle: {chain}")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    bases = data.pop(BASE_KEY, [])
    bases = [bases] if isinstance(bases, str) else list(bases)
    merged: dict = {}
    for base in bases:
        merged = deep_merge(merged, load_yaml_tree(path.parent / base, (*_seen, path)))
    return deep_merge(merged, data)


def deep_merge(base: dict, child: dict) -> dict:
    """`child` over `base`: nested mappings merge, other values are replaced."""
    out = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def apply_overrides(data: dict, overrides: typing.Iterable[str]) -> dict:
    """Apply `a.b.c=value` strings (value parsed as YAML) to a plain dict, in order."""
    data = dict(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like key.subkey=value")
        dotted, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw.strip() else ""
        node = data
        parts = dotted.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            node[part] = dict(child) if isinstance(child, dict) else {}  # a copy: `data`'s subtrees stay as given
            node = node[part]
        node[parts[-1]] = value
    return data


# ----------------------------------------------------------------------------- moved keys
# Keys that moved to another section, old -> new. Saved runs, config files and commands that use the
# old name keep working: the value is read under the new name (an old key given wins, since nothing
# writes it any more but a person).
MOVED_KEYS = {"augment.celeba_num_test": "data.celeba_num_test"}


def move_keys(tree: dict) -> dict:
    """`tree` with every key of MOVED_KEYS that it holds under the key's new name (a copy if any)."""
    for old, new in MOVED_KEYS.items():
        (section, key), (new_section, new_key) = old.split("."), new.split(".")
        if isinstance(tree.get(section), dict) and key in tree[section]:
            moved = dict(tree[section])
            target = dict(tree[new_section]) if isinstance(tree.get(new_section), dict) else {}
            target[new_key] = moved.pop(key)
            tree = {**tree, section: moved, new_section: target}
    return tree


def moved_flat_key(key: str) -> str:
    """A flat dotted key (`stage:section.key` in pipeline records) under its new name."""
    stage, colon, bare = key.rpartition(":")
    return stage + colon + MOVED_KEYS.get(bare, bare)


# ----------------------------------------------------------------------------- dict -> dataclasses
def from_dict(cls: type[T], data: dict, prefix: str = "") -> T:
    """Build dataclass `cls` from `data`, checking every key and type; missing keys keep defaults."""
    if not isinstance(data, dict):
        raise ConfigError(f"'{prefix or '<root>'}' must be a mapping, got {type(data).__name__}")
    if not prefix:
        data = move_keys(data)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    if unknown := sorted(set(data) - set(fields)):
        where = f" in '{prefix}'" if prefix else ""
        raise ConfigError(
            f"unknown config key '{_join(prefix, unknown[0])}'{where}; valid keys: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {name: _coerce(hints[name], value, _join(prefix, name)) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{prefix or cls.__name__}: {exc}") from exc


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


_SCALARS = {bool: "true/false", int: "an int", str: "a string"}  # type -> what its error message asks for


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(option, value, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"'{key}': {value!r} fits none of {tp}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"'{key}' must be one of {list(args)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"'{key}' must be a list, got {type(value).__name__} {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"'{key}' must have {len(args)} items, got {len(value)}")
            return tuple(_coerce(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item_tp = args[0] if args else Any
        items = [_coerce(item_tp, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"'{key}' must be a mapping, got {type(value).__name__}")
        val_tp = args[1] if len(args) == 2 else Any
        return {k: _coerce(val_tp, v, f"{key}.{k}") for k, v in value.items()}
    if tp in _SCALARS:
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):  # bool is an int subclass
            raise ConfigError(f"'{key}' must be {_SCALARS[tp]}, got {type(value).__name__} {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):
            # YAML 1.1 reads "3e-4" (no dot) as a string; take it as the number it obviously is.
            with contextlib.suppress(ValueError):
                return float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"'{key}' must be a number, got {type(value).__name__} {value!r}")
        return float(value)
    raise ConfigError(f"'{key}': unsupported config type {tp}")


# ----------------------------------------------------------------------------- public entry points
def load_config(cls: type[T], path: str | os.PathLike | None = None,
                overrides: typing.Iterable[str] = ()) -> T:
    """Load `path` (with its `_base_` chain), apply dotted overrides, return a validated `cls`."""
    data = load_yaml_tree(path) if path is not None else {}
    return from_dict(cls, apply_overrides(data, overrides))


def config_to_dict(cfg: Any) -> Any:
    """Plain nested dict (tuples as lists) of a config, ready for YAML/JSON; leaves come back as they are."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: config_to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [config_to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: config_to_dict(v) for k, v in cfg.items()}
    return cfg


def dump_config_yaml(cfg: Any) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=None)


def replace_config(cfg: T, overrides: typing.Iterable[str]) -> T:
    """A validated copy of `cfg` with dotted overrides applied."""
    return from_dict(type(cfg), apply_overrides(config_to_dict(cfg), overrides))


def add_config_args(parser: argparse.ArgumentParser, config_required: bool = True,
                    example: str = "gan.lambda_rec=5") -> None:
    """The flags the config-driven tools share: --config, --set k=v ..., --dry-run (`example`: a key
    the tool's own config has, for its --help)."""
    parser.add_argument("--config", required=config_required, help="YAML config file")
    parser.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[],
                        metavar="KEY=VALUE", help=f"dotted overrides, e.g. --set {example}")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")


def config_from_args(cls: type[T], args: argparse.Namespace) -> T:
    return load_config(cls, args.config, args.overrides)
