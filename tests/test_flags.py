"""eqrobot.flags: argparse flags generated from a typed dataclass."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from eqrobot.flags import add_dataclass_flags, dataclass_from_flags, field_docstrings, parse_assignment


@dataclass
class Base:
    name: str = "a"
    """The name, with 100% of its % signs."""


@dataclass
class Example(Base):
    count: int = 3
    """How many."""
    scale: float | None = None
    """Optional scale."""
    mode: Literal["fast", "slow"] = "fast"
    """Speed."""
    flavour: str = field(default="x", metadata={"choices": ("x", "y"), "flag": "--taste"})
    """Renamed flag with choices."""
    enabled: bool = True
    """On by default."""
    maybe: bool | None = None
    """Three states."""
    angles: list[float] | None = None
    """Several numbers."""
    options: dict[str, Any] = field(default_factory=dict, metadata={"flag": "--opt"})
    """KEY=VALUE pairs."""
    progress_bar: bool = field(default=True, metadata={"flag": "--progress"})
    """Show a bar."""
    hidden: int = 7


def parse(argv, skip=()):
    parser = argparse.ArgumentParser(prog="t", exit_on_error=False)
    add_dataclass_flags(parser, Example, skip=skip)
    return parser, parser.parse_args(argv)


def test_defaults_round_trip():
    _, ns = parse([])
    assert dataclass_from_flags(Example, ns) == Example()


def test_every_kind_of_flag():
    _, ns = parse(
        "--name b --count 5 --scale 0.5 --mode slow --taste y --no-enabled --maybe "
        "--angles 0 90 --opt a=1 --opt b=abc --opt c=[1,2] --opt a=2 --no-progress".split()
    )
    got = dataclass_from_flags(Example, ns)
    assert got == Example(
        name="b",
        count=5,
        scale=0.5,
        mode="slow",
        flavour="y",
        enabled=False,
        maybe=True,
        angles=[0.0, 90.0],
        options={"a": 2, "b": "abc", "c": [1, 2]},  # JSON where it parses; last repeat wins
        progress_bar=False,
    )
    assert type(got.count) is int and type(got.scale) is float


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--count", "2.5"], "invalid int value"),
        (["--scale", "abc"], "invalid float value"),
        (["--mode", "medium"], "invalid choice"),
        (["--taste", "z"], "invalid choice"),
        (["--opt", "novalue"], "expected KEY=VALUE"),
        (["--opt", "=1"], "expected KEY=VALUE"),
        (["--flavour", "x"], "unrecognized"),  # renamed: the field name is not a flag
    ],
)
def test_bad_values_are_argparse_errors(argv, message, capsys):
    parser = argparse.ArgumentParser(prog="t")
    add_dataclass_flags(parser, Example)
    with pytest.raises(SystemExit) as e:
        parser.parse_args(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_help_comes_from_docstrings_and_inherited_fields():
    parser, _ = parse([])
    text = parser.format_help()
    assert "How many. (default: 3)" in text
    assert "100% of its % signs" in text  # % survives argparse's formatting
    assert "--taste {x,y}" in text and "--no-progress" in text and "--opt KEY=VALUE" in text
    assert field_docstrings(Example)["count"] == "How many."
    assert "hidden" not in field_docstrings(Example)


def test_skip_and_explicit_values():
    parser, ns = parse(["--count", "1"], skip=("hidden", "name"))
    assert "--hidden" not in parser.format_help() and "--name" not in parser.format_help()
    assert dataclass_from_flags(Example, ns, name="z") == Example(count=1, name="z")


def test_parse_assignment():
    assert parse_assignment("k=1.5") == ("k", 1.5)
    assert parse_assignment("k=a=b") == ("k", "a=b")
    assert parse_assignment(" k =null") == ("k", None)


def test_unsupported_annotation_is_named():
    @dataclass
    class Bad:
        pair: tuple[int, int] = (1, 2)

    with pytest.raises(TypeError, match="Bad.pair"):
        add_dataclass_flags(argparse.ArgumentParser(), Bad)
