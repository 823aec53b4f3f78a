"""Every option of every part, each declared once: one :class:`Option` row drives Locust's parser
(command line, ``LOCUST_*`` variable, config file, web UI form), the check of its value and the
generated reference table (``docs/options.md``). A part declares its options as a :class:`Group`
and registers it; :func:`parse` turns Locust's parsed options into each group's checked, typed
settings (built once per test and kept on the TestRun), or raises :class:`~smload.usage.UsageError`
naming the first bad option.

Import-light (no Locust, no botocore): the master checks options with it before anything is spawned.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .usage import MissingOption, UsageError

Parser = Callable[[Any], Any]  # a raw value (str, or what argparse made of it) -> typed; ValueError: why not


@dataclass(frozen=True)
class Option:
    flag: str  # "--target-variant"
    help: str
    parse: Parser | None = None  # None: the stripped text
    default: Any = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    switch: bool = False  # a flag without a value (store_true)
    repeat: bool = False  # may be given several times (a list)
    web_ui: bool = True  # a custom parameter of Locust's web UI form
    required: bool = False
    extra: Mapping[str, Any] = field(
        default_factory=dict
    )  # what the declaring part needs besides (e.g. a header)

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def env(self) -> str:
        return "LOCUST_" + self.dest.upper()

    def read(self, options: Any) -> Any:
        """This option's checked value in ``options`` (argparse's namespace, or a web UI form applied
        to a copy of it); None when not given. Web UI fields arrive as text: an empty one is 'not given'."""
        value = getattr(options, self.dest, None)
        if self.switch:
            return (
                value if isinstance(value, bool) else str(value).strip().lower() in ("true", "1", "yes", "on")
            )
        if self.repeat:
            values = value if isinstance(value, list | tuple) else ([] if value is None else [value])
            return [v for v in (str(v).strip() for v in values) if v]
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            if self.required:
                raise MissingOption(self.flag, f"is required: {self.help}")
            return self.default
        if self.choices and value not in self.choices:
            raise UsageError(self.flag, f"{value!r} is not one of {', '.join(self.choices)}")
        if self.parse is None:
            return value
        try:
            return self.parse(value)
        except ValueError as err:
            raise UsageError(self.flag, str(err)) from None


Values = dict[str, Any]  # dest -> checked value


@dataclass(frozen=True)
class Group:
    """The options of one part. ``build`` turns their checked values into the part's settings object
    (cross-option rules go there); without it the settings are the values themselves."""

    key: str  # where parse() puts the settings: "endpoint", "checks", "calibration", ...
    title: str  # Locust's --help section
    description: str
    options: tuple[Option, ...]
    build: Callable[[Values], Any] | None = None
    rank: int = 50  # where it stands in --help and the docs: what to invoke first, plugins last

    def parse(self, options: Any) -> Any:
        values = {option.dest: option.read(options) for option in self.options}
        return self.build(values) if self.build else values


_groups: dict[str, Group] = {}  # declarations, in registration order (static: not per test)


def register(group: Group) -> Group:
    _groups[group.key] = group
    return group


def groups() -> list[Group]:
    """In their declared order (rank, then key): the same whatever order the parts were imported in."""
    return sorted(_groups.values(), key=lambda g: (g.rank, g.key))


def add_arguments(parser: Any) -> None:
    """Add every registered group to Locust's parser (``init_command_line_parser``)."""
    for group in groups():
        section = parser.add_argument_group(group.title, group.description)
        for option in group.options:
            kwargs: dict[str, Any] = {"help": option.help.replace("%", "%%"), "env_var": option.env}
            if option.switch:
                kwargs.update(action="store_true", default=False)
            else:
                kwargs.update(default=option.default, metavar=option.metavar)
                if option.repeat:
                    kwargs["action"] = "append"
                if option.choices:
                    kwargs["choices"] = option.choices
            action = section.add_argument(option.flag, **kwargs)
            # what LocustArgumentParser.add_argument sets and an argument group's add_argument does not:
            # without it an option is not among the web UI's custom parameters
            action.include_in_web_ui = option.web_ui
            action.is_secret = False
            action.is_required = option.required and option.web_ui
            action.is_multiple = False


def parse(options: Any, only: Iterable[str] | None = None) -> dict[str, Any]:
    """Each registered group's settings (``{group.key: settings}``); the first bad option raises."""
    wanted = set(only) if only is not None else None
    return {g.key: g.parse(options) for g in groups() if wanted is None or g.key in wanted}


def markdown(keys: Iterable[str] | None = None) -> str:
    """The reference tables of docs/options.md: one per group, one row per option, from the
    declarations alone (a stable text: ``scripts/docs_options.py --check`` compares it)."""
    out = []
    for group in groups():
        if keys is not None and group.key not in keys:
            continue
        out += [
            f"### {group.title}",
            "",
            _cell(group.description),
            "",
            "| option | environment variable | default | web UI | what |",
            "|---|---|---|---|---|",
        ]
        for o in group.options:
            default = "" if o.default is None or o.switch else f"`{o.default}`"
            value = o.metavar or ("{" + ",".join(o.choices) + "}" if o.choices else o.dest.upper())
            flag = f"`{o.flag}`" + ("" if o.switch else f" `{value}`")
            out.append(f"| {flag} | `{o.env}` | {default} | {'yes' if o.web_ui else ''} | {_cell(o.help)} |")
        out.append("")
    return "\n".join(out)


def _cell(text: str) -> str:
    """Help text as Markdown table text: a '|' would end the cell, and '<region>' would be taken for an
    HTML tag and vanish ('p95<300ms' is safe: a tag starts with a letter)."""
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", text.replace("|", "\\|"))


# --- value parsers: raise ValueError with the reason, the Option adds its flag ----------------------


def matching(pattern: str, what: str, max_len: int) -> Parser:
    compiled = re.compile(pattern)

    def parse(value: Any) -> str:
        text = str(value)
        if len(text) > max_len or not compiled.fullmatch(text):
            raise ValueError(f"{text!r} is not a valid {what} (at most {max_len} characters)")
        return text

    return parse


def number(
    minimum: float = -math.inf, maximum: float = math.inf, integer: bool = False, unit: str = ""
) -> Parser:
    def parse(value: Any) -> float | int:
        kind = "an integer" if integer else "a number"
        try:
            parsed = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{value!r} is not {kind}{f' of {unit}' if unit else ''}") from None
        if not math.isfinite(parsed) or (integer and parsed != int(parsed)):
            raise ValueError(f"{value!r} is not {kind}")
        if not minimum <= parsed <= maximum:
            bound = f"between {minimum:g} and {maximum:g}" if maximum < math.inf else f"at least {minimum:g}"
            raise ValueError(f"{value} must be {bound}{f' {unit}' if unit else ''}")
        return int(parsed) if integer else parsed

    return parse


def positive_seconds(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"must be a positive number of seconds, not {value!r}")
    return seconds


def percentage(value: Any) -> float:
    """``1%`` -> 0.01."""
    text = str(value).strip()
    if not text.endswith("%"):
        raise ValueError(f"{text!r}: give a percentage, e.g. 1%")
    try:
        percent = float(text[:-1])
    except ValueError:
        raise ValueError(f"{text!r} is not a percentage, e.g. 1%") from None
    if not 0 <= percent <= 100:
        raise ValueError(f"{text!r} must be between 0% and 100%")
    return percent / 100


def writable_directory(value: Any) -> str:
    """A directory a report can be written to: existing and writable, or creatable."""
    path = str(value)
    target = os.path.abspath(path)
    if os.path.exists(target) and not os.path.isdir(target):
        raise ValueError(f"{path!r} is a file: give a directory")
    probe = target
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe) or not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write to {probe!r}: choose a writable directory")
    return path
