"""The closed-choice base every engine enum of user-facing options uses."""
from __future__ import annotations

import enum
from typing import Any

from engine.errors import ConfigError


class Choice(str, enum.Enum):
    """A closed choice whose ``from_str`` error lists the valid values."""

    @classmethod
    def from_str(cls, value: str | enum.Enum, field_name: str = "") -> Any:
        if isinstance(value, cls):
            return value
        text = str(value.value if isinstance(value, enum.Enum) else value).strip().lower()
        for member in cls:
            if member.value == text:
                return member
        valid = ", ".join(member.value for member in cls)
        name = field_name or cls.__name__
        raise ConfigError(f"{name} must be one of {valid}; got {value!r}.")
