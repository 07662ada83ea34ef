"""The list of every controller setting, generated from the settings model.

`ivr serve --help` prints it, so what a deployer reads is the settings the
controller actually has: a setting added to `ivr.config.Settings` appears
here with its environment variable, its default and the first sentence of
its description, and one renamed or removed cannot linger in the help.
"""

from __future__ import annotations

import re
import textwrap
from typing import Literal, get_args, get_origin

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from ivr.config import CONFIG_ENV_VAR, Settings


def settings_help(settings_cls: type[BaseSettings] = Settings, width: int = 100) -> str:
    """Every setting: environment variable, default (and choices), one line of meaning."""
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    lines = textwrap.wrap("settings (environment variables; a TOML/YAML file named by "
                          f"{CONFIG_ENV_VAR} takes the same keys in lower case without {prefix}):", width)
    indent = " " * 6
    for name, field in settings_cls.model_fields.items():
        choices = get_args(field.annotation) if get_origin(field.annotation) is Literal else ()
        head = f"  {prefix}{name.upper()}  (default: {shown_default(field)}"
        lines.append(head + (f"; one of {', '.join(map(str, choices))})" if choices else ")"))
        lines.extend(textwrap.wrap(first_sentence(field.description or ""), width - len(indent),
                                   initial_indent=indent, subsequent_indent=indent))
    lines.append(f"  {CONFIG_ENV_VAR}  (default: none)")
    lines.append(f"{indent}A TOML or YAML file of these settings; the environment wins over it.")
    lines.append("full descriptions: ivr/config.py (Settings)")
    return "\n".join(lines) + "\n"


def shown_default(field: FieldInfo) -> str:
    """The default as a deployer would write it in the environment."""
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, dict)) and not value:
        return "empty"
    return str(value)


def first_sentence(text: str) -> str:
    """Up to the first full stop that ends a sentence ("e.g. http://..." does not)."""
    found = re.search(r"[.!?](?=\s+[A-Z`(]|\s*$)", text)
    return text[: found.end()] if found else text
