"""Settings declared once: a dataclass field carries its default, help and check; the rest is derived.

    @dataclass
    class ChunkConfig:
        max_chunk_tokens: int = setting(512, "largest chunk, in tokens", check=at_least(16))
        workers: int | None = setting(None, "stage 2 processes", role=RUN, pipeline="chunk_workers")

From those fields come the stage script's flags (`add_flags`), the one command's fields, flags
and YAML keys (`pipeline.config` takes each field by reference with `shared`), the checks
(`check_fields`, naming the flag) and the resume key (`key_settings`: every field but the
paths it reads and writes and the ones that change no output byte).

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class C:
    ...     size: int = setting(3, "how many", check=at_least(1))
    ...     out: str = setting("x.jsonl", "output file", role=PATH)
    >>> check_fields(C(size=0))
    Traceback (most recent call last):
    ...
    core.io.UserError: --size must be at least 1, got 0
    >>> key_settings(C())
    {'size': 3}
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, Callable

from core.io import UserError

SETTING, PATH, RUN = "setting", "path", "run"  # roles: in the resume key / a file it reads or writes / no output byte


def setting(default: Any = dataclasses.MISSING, help: str = "", *, check: Callable | None = None,
            flag: str | None = None, role: str = SETTING, pipeline: str | None = None, choices=None,
            factory: Callable | None = None, **flag_args) -> Any:
    """A dataclass field with its help, its check `check(value, flag)`, its flag (default `--name`,
    `--no-name` for a boolean that is on), its role, and its name in the one command (`pipeline`,
    default the same name); `flag_args` go to argparse as they are (`nargs`, `metavar`, `type`)."""
    meta = {"help": help, "check": check, "flag": flag, "role": role, "pipeline": pipeline, "choices": choices,
            "flag_args": flag_args}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def shared(cls: type, name: str, **changes) -> Any:
    """The field `name` of stage config `cls` again, for the one command: the same default, help and
    check (declared once, in the stage), with `changes` to its metadata (`flag`, `help`)."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    meta = {**f.metadata, **changes, "pipeline": None, "from": f"{cls.__name__}.{name}"}
    if f.default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=f.default_factory, metadata=meta)
    return dataclasses.field(default=f.default, metadata=meta)


def at_least(low: float, what: str = "") -> Callable:
    """A check: the value (when set) is at least `low`."""
    def check(value, flag: str) -> None:
        if value is not None and value < low:
            raise UserError(f"{flag} must be at least {low}{what}, got {value}")
    return check


def positive(value, flag: str) -> None:
    if value is not None and value < 1:
        raise UserError(f"{flag} must be positive, got {value}")


def flag_of(f: dataclasses.Field) -> str:
    """The flag of a field: `--max-chunk-tokens`, `--no-redact` for a boolean that is on by default."""
    if f.metadata.get("flag"):
        return f.metadata["flag"]
    dashed = f.name.replace("_", "-")
    return f"--no-{dashed}" if f.default is True else f"--{dashed}"


def settings_of(cls_or_obj, role: str | None = None) -> list[dataclasses.Field]:
    """The declared fields (those made by `setting` or `shared`), of one role if given."""
    return [f for f in dataclasses.fields(cls_or_obj) if "role" in f.metadata and role in (None, f.metadata["role"])]


def add_flags(parser: argparse.ArgumentParser, cls: type, names=None, unset_default: bool = False) -> None:
    """One flag per declared field of `cls` (or of `names`), help ending in its default.

    `unset_default`: every default is None, so that only the flags typed on the command line
    override a config file (the one command); the dataclass still holds the real default.
    """
    for f in settings_of(cls):
        if names is not None and f.name not in names or f.metadata["flag"] == "":
            continue  # flag "": a setting its script offers in another shape (the three ratio flags)
        meta, flag = f.metadata, flag_of(f)
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        help_ = meta["help"]
        if not isinstance(default, bool) and default not in (None, []) and "[" not in help_ \
                and not meta["flag_args"].get("required"):
            help_ += f" [{default}]"
        kw: dict = {"dest": f.name, "help": help_}
        if isinstance(default, bool):
            kw.update(action="store_const", const=not default, default=None if unset_default else default)
        else:
            kind = base_type(cls, f.name)
            if typing.get_origin(kind) is list:
                kw.update(action="append")
            elif kind in (int, float, str):
                kw.update(type=kind)
            kw.update(default=None if unset_default else default, choices=meta["choices"])
        kw.update(meta["flag_args"])
        parser.add_argument(flag, **kw)


def base_type(cls: type, name: str):
    """The field's type without `None`: `int | None` -> int."""
    hint = typing.get_type_hints(cls)[name]
    options = [t for t in _options(hint) if t is not type(None)]
    return options[0] if options else hint


def _options(hint) -> tuple:
    return typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)


def typed(cls: type, name: str, value, where: str):
    """`value` checked against the type of `cls.<name>` (an int is a fine float); a UserError naming `where`."""
    options = _options(typing.get_type_hints(cls)[name])
    if value is None and type(None) in options:
        return None
    for t in options:
        if t is bool and isinstance(value, bool):
            return value
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if t is str and isinstance(value, str):
            return value
        if typing.get_origin(t) is list and isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        if t not in (bool, int, float, str) and isinstance(t, type) and isinstance(value, t):
            return value
    names = " or ".join("null" if t is type(None) else "a list of strings" if typing.get_origin(t) is list
                        else {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(t, str(t))
                        for t in options)
    raise UserError(f"{where} must be {names}, got {value!r} ({type(value).__name__})")


def check_fields(cfg, flags: Callable[[dataclasses.Field], str] = flag_of) -> None:
    """Each declared field's check, on its value; the error names the field's flag."""
    for f in settings_of(cfg):
        if f.metadata["check"] is not None:
            f.metadata["check"](getattr(cfg, f.name), flags(f))


def key_settings(cfg) -> dict:
    """The settings part of a stage's resume key: every field whose role is SETTING, by name."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)
            if f.metadata.get("role", SETTING) == SETTING}


def load_yaml(path: str, known: set[str], what: str = "--config") -> dict:
    """A YAML mapping of settings; a file that cannot be read, is not UTF-8 or YAML, is not a mapping, or
    has a key that is not a name in `known` (dashes read as underscores) is a UserError naming it."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except OSError as e:
        raise UserError(f"{what} {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{what} {path}: not UTF-8 (byte {e.start}); save the file as UTF-8") from None
    except yaml.YAMLError as e:
        raise UserError(f"{what} {path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UserError(f"{what} {path}: expected a mapping of settings")
    for key in data:
        if not isinstance(key, str):
            raise UserError(f"{what} {path}: key {key!r} is not a setting name (known: {', '.join(sorted(known))})")
    data = {k.replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(f"{what} {path}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    return data


def from_args(cls: type, args: argparse.Namespace, **values):
    """`cls` from the parsed flags of `add_flags` (a flag left unset keeps the field's default) and `values`."""
    for f in settings_of(cls):
        value = getattr(args, f.name, None)
        if value is not None:
            values.setdefault(f.name, value)
    return cls(**values)
