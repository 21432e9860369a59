"""Command-line flags generated from a typed config dataclass (CleanRL style), so defaults live once.

    @dataclass
    class Config:
        env_id: str = field(default="eqrobot/Reach-v0", metadata={"flag": "--env"})
        \"\"\"Gymnasium id of the env.\"\"\"
        steps: int | None = None
        \"\"\"Total env steps (None: the preset's).\"\"\"

    add_dataclass_flags(parser, Config)           # --env, --steps; help from the docstrings
    config = dataclass_from_flags(Config, parser.parse_args())

One flag per field: ``--field-name`` (underscores become dashes), the type from the annotation, the
default from the field, the help from the attribute docstring under the field. Annotations understood:
``int``, ``float``, ``str``, ``bool`` (``--x/--no-x``), ``X | None``, ``Literal[...]`` (choices),
``list[X]`` (several values after one flag) and ``dict[str, ...]`` (a repeatable ``KEY=VALUE`` flag,
VALUE read as JSON where it parses, else kept as a string).

Per-field options go in ``dataclasses.field(metadata=...)``: ``flag`` (the flag name, e.g. ``"--env"``;
a bool's ``--no-...`` twin follows it), ``choices``, ``metavar``, ``help`` (replaces the docstring).
Values that parse but are out of range are the dataclass's own business (validate where it is used).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import textwrap
import types
import typing
from typing import Any


def field_docstrings(cls: type) -> dict[str, str]:
    """Attribute docstrings (the string literal right under a field) of ``cls`` and its bases."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):  # built-ins, classes made at run time: no source, no help
            continue
        tree = ast.parse(source)
        body = next((n.body for n in ast.walk(tree) if isinstance(n, ast.ClassDef)), [])
        for node, nxt in zip(body, body[1:], strict=False):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[node.target.id] = inspect.cleandoc(nxt.value.value)
    return docs


def flag_name(f: dataclasses.Field) -> str:
    """The flag of a field: its ``metadata["flag"]`` or ``--`` + the name with dashes."""
    return f.metadata.get("flag", "--" + f.name.replace("_", "-"))


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    """``X | None`` -> ``(X, True)``; anything else -> ``(tp, False)``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
        raise TypeError(f"flags: cannot make a flag for the union {tp}")
    return tp, False


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"KEY=VALUE"`` -> ``(KEY, VALUE)``, VALUE parsed as JSON where it parses (``"abc"`` stays a str)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(
            f"expected KEY=VALUE (VALUE parsed as JSON when possible), got {text!r}"
        )
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return key.strip(), parsed


def add_dataclass_flags(parser: argparse.ArgumentParser, cls: type, *, skip=()) -> None:
    """Add one flag per field of the dataclass ``cls`` to ``parser`` (fields in ``skip`` left out).

    Every flag's ``dest`` is the field name, so :func:`dataclass_from_flags` can read them back."""
    hints = typing.get_type_hints(cls)
    docs = field_docstrings(cls)
    skip = set(skip)
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        tp, optional = _strip_optional(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else None
        # docstrings are reST: ``code`` reads as plain code on a terminal; argparse formats with %
        help_text = f.metadata.get("help", docs.get(f.name, "")).replace("``", "").replace("%", "%%")
        flag = flag_name(f)
        kw: dict[str, Any] = {"dest": f.name, "metavar": flag.lstrip("-").replace("-", "_").upper()}
        origin = typing.get_origin(tp)
        if tp is bool:
            del kw["metavar"]
            kw.update(action=argparse.BooleanOptionalAction, default=default)
        elif origin is dict or tp is dict:
            kw.update(action="append", type=parse_assignment, default=None, metavar="KEY=VALUE")
            help_text += " (repeatable)"
        elif origin is list or tp is list:
            (item,) = typing.get_args(tp) or (str,)
            kw.update(nargs="*", type=item, default=None)
        elif origin is typing.Literal:
            choices = typing.get_args(tp)
            kw.update(type=type(choices[0]), choices=choices, default=default)
            del kw["metavar"]
        elif tp in (int, float, str):
            kw.update(type=tp, default=default)
        else:
            raise TypeError(f"flags: no flag type for {cls.__name__}.{f.name}: {hints[f.name]}")
        if "choices" in f.metadata:
            kw["choices"] = f.metadata["choices"]
            kw.pop("metavar", None)  # argparse shows {a,b,c}
        if "metavar" in f.metadata:
            kw["metavar"] = f.metadata["metavar"]
        if kw.get("default") is not None and kw.get("action") != "append":
            help_text += " (default: %(default)s)"
        elif optional and kw.get("default") is None and "default" not in help_text.lower():
            help_text += " (default: None)"
        parser.add_argument(flag, help=help_text, **kw)


def dataclass_from_flags(cls: type, namespace: argparse.Namespace, **values: Any):
    """``cls(...)`` from the flags :func:`add_dataclass_flags` added; ``values`` set skipped fields.

    ``KEY=VALUE`` flags become dicts (a repeated key: the last one wins); unset list/dict flags take
    the field's default."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init or f.name in values or not hasattr(namespace, f.name):
            continue
        value = getattr(namespace, f.name)
        tp, _ = _strip_optional(hints[f.name])
        if value is None and (typing.get_origin(tp) in (dict, list) or tp in (dict, list)):
            continue  # not given: the field's default (factory)
        if typing.get_origin(tp) is dict or tp is dict:
            value = dict(value)
        kwargs[f.name] = value
    return cls(**kwargs, **values)
