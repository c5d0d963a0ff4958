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
import re
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


GCS_PATH = r"^gs://[^\n\r]+$"  # a template parameter that names a file or folder
REMOTE = r"^(gs://|https://)[^\n\r]+$"  # ... or weights that may come from the web
SHA256 = r"^[0-9a-f]{64}$"


def option(default: Any, help: str, *, choices: tuple | None = None, aliases: tuple[str, ...] = (),
           template: bool | str = False, required: bool = False, nargs: str | None = None,
           metavar: str | None = None) -> Any:
    """A flag-backed field: ``--<field name>`` with this default, help and choices. ``template``
    makes it a Flex Template parameter (templates/dataflow/metadata.json is generated from these
    fields: pipeline/flex_template.py), checked by the regular expression its type implies or by
    the one given; ``required`` parameters are not optional there (the group's ``check`` refuses
    a missing one). ``nargs`` ("+" or "*") takes several values: a ``tuple[str, ...]`` field."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "aliases": aliases,
                                                         "template": template, "required": required,
                                                         "nargs": nargs, "metavar": metavar})


def _pattern(kind: type, choices: tuple | None) -> str:
    """The value pattern a template parameter's type implies."""
    if choices:
        return "^(" + "|".join(re.escape(str(c)) for c in choices) + ")$"
    if kind is bool:
        return "^(true|false)$"
    if kind is int:
        return "^[0-9]+$"
    if kind is float:
        return r"^[0-9]+(\.[0-9]+)?$"
    return GCS_PATH


def template_parameter(f: dataclasses.Field, kind: type) -> dict:
    """One Flex Template parameter (Dataflow's ParameterMetadata) from a flag's declaration."""
    mark = f.metadata["template"]
    default = "" if f.default in (None, "", False) else f" (default: {str(f.default).lower() if kind is bool else f.default})"
    out = {"name": f.name, "label": f.name.replace("_", " ").capitalize(), "helpText": f.metadata["help"] + default}
    if not f.metadata["required"]:
        out["isOptional"] = True
    out["regexes"] = [mark if isinstance(mark, str) else _pattern(kind, f.metadata["choices"])]
    return out


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
    def template_parameters(cls) -> list[dict]:
        """The group's Flex Template parameters, in declaration order."""
        kinds = _value_types(cls)
        return [template_parameter(f, kinds[f.name]) for f in cls.flag_fields() if f.metadata["template"]]

    @classmethod
    def add_flags(cls, parser: argparse.ArgumentParser, title: str | None = None,
                  without: tuple[str, ...] = ()) -> None:
        """The group's flags on ``parser``, but the fields named in ``without`` (a job that never
        reads them)."""
        group = parser.add_argument_group(title or cls.GROUP or cls.__name__)
        kinds = _value_types(cls)
        for f in cls.flag_fields():
            if f.name in without:
                continue
            names = (f"--{f.name}", *f.metadata["aliases"])
            kwargs: dict[str, Any] = {"dest": f.name, "default": f.default, "help": f.metadata["help"]}
            if kinds[f.name] is bool:  # --name, --name=true, --name false
                kwargs.update(type=flag, nargs="?", const=True)
            elif f.metadata.get("nargs"):  # tuple[str, ...]: several values
                kwargs.update(type=typing.get_args(kinds[f.name])[0], nargs=f.metadata["nargs"])
            else:
                kwargs["type"] = kinds[f.name]
            if f.metadata.get("metavar"):
                kwargs["metavar"] = f.metadata["metavar"]
            if f.metadata["choices"]:
                kwargs["choices"] = f.metadata["choices"]
            group.add_argument(*names, **kwargs)

    @classmethod
    def from_options(cls: type[T], o: Any) -> T:
        """This group's values from a parsed namespace (Beam's or argparse's), typed."""
        return cls(**{f.name: tuple(getattr(o, f.name)) if f.metadata.get("nargs") and getattr(o, f.name) is not None
                      else getattr(o, f.name) for f in cls.flag_fields()})

    def check(self) -> None:
        """Launch checks of this group's values: raise transforms.core.launch.LaunchError."""
