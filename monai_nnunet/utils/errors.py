"""One readable message for an error: its own text and the causes it wraps, without MONAI's config-parser lines."""

from __future__ import annotations

import re

__all__ = ["describe_error"]

_CONFIG_WRAPPERS = ("Failed to instantiate component", "Failed to evaluate ConfigExpression")
_COMPONENT = re.compile(r"Failed to instantiate component '([^']+)'")


def describe_error(error: BaseException) -> str:
    """The error's message and the causes it wraps. MONAI's config parser wraps an error raised while it builds a
    bundle component in lines of its own; those are left out, and the component is named instead.

    Args:
        error: the exception.

    Returns:
        the message; causes follow on indented lines (``caused by TYPE: message``).
    """
    chain, seen = [], set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        # ``raise ... from None`` means the message is complete: its context is not a cause to report
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    components = [m.group(1) for e in chain for m in [_COMPONENT.search(str(e))] if m]
    lines: list[str] = []
    for e in chain:
        message = str(e).strip()
        if not message or message.startswith(_CONFIG_WRAPPERS) or (lines and message in lines[-1]):
            continue
        lines.append(message if not lines else f"caused by {type(e).__name__}: {message}")
    if not lines:
        lines = [str(error)]
    if components:
        lines[0] += f" (building the bundle component {components[-1]})"
    return "\n  ".join(lines)
