"""Options declared once: each field of a ``Flags`` dataclass is the flag of the same name, with
its default, type, choices and help beside it. The argparse flags (``add_flags``), the typed
read-back from a parsed namespace (``from_options``) and each group's launch checks (``check``)
derive from that one declaration, so no default or flag name is ever written twice.

Beam parses every option into one untyped namespace; code never reads it directly but through
the typed group it needs (``DetectorFlags.from_options(o).detector_size``). Hand-written because
argparse has no dataclass front end and Beam's option classes are argparse hooks.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, ClassVar, TypeVar

T = TypeVar("T", bound="Flags")


def flag(value: str) -> bool:
    """A boolean option that also takes a value (Flex Templates pass --name=true)."""
    lowered = str(value).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def option(default: Any, help: str, *, choices: tuple | None = None, aliases: tuple[str, ...] = ()) -> Any:
    """A flag-backed field: ``--<field name>`` with this default, help and choices."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "aliases": aliases})


def _value_types(cls: type) -> dict[str, type]:
    """Each field's argparse type: its annotation, unwrapped from ``X | None``."""
    out = {}
    for name, hint in typing.get_type_hints(cls).items():
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        out[name] = hint
    return out


@dataclasses.dataclass(frozen=True)
class Flags:
    """A group of flags: subclasses are frozen dataclasses whose fields are made by ``option``."""

    GROUP: ClassVar[str] = ""  # the --help section they are listed under

    @classmethod
    def flag_fields(cls) -> tuple[dataclasses.Field, ...]:
        return tuple(f for f in dataclasses.fields(cls) if "help" in f.metadata)

    @classmethod
    def add_flags(cls, parser: argparse.ArgumentParser, title: str | None = None) -> None:
        group = parser.add_argument_group(title or cls.GROUP or cls.__name__)
        kinds = _value_types(cls)
        for f in cls.flag_fields():
            names = (f"--{f.name}", *f.metadata["aliases"])
            kwargs: dict[str, Any] = {"dest": f.name, "default": f.default, "help": f.metadata["help"]}
            if kinds[f.name] is bool:  # --name, --name=true, --name false
                kwargs.update(type=flag, nargs="?", const=True)
            else:
                kwargs["type"] = kinds[f.name]
            if f.metadata["choices"]:
                kwargs["choices"] = f.metadata["choices"]
            group.add_argument(*names, **kwargs)

    @classmethod
    def from_options(cls: type[T], o: Any) -> T:
        """This group's values from a parsed namespace (Beam's or argparse's), typed."""
        return cls(**{f.name: getattr(o, f.name) for f in cls.flag_fields()})

    def check(self) -> None:
        """Launch checks of this group's values: raise transforms.core.launch.LaunchError."""
