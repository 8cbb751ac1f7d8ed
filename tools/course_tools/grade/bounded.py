"""Bounded views of values a submission sent back: text of known length, sizes without expanding.

Values read from a kernel (``torch.load(weights_only=True)``) can be hostile without being large:
2 KB of pickle can hold a DAG of lists sharing each other 40 levels deep, whose ``str`` has 2^40
leaves. Nothing on the grader's side may call ``str``/``repr`` on such a value. Here:

- :func:`short_repr` describes any value in at most ``limit`` characters, doing work in
  proportion to ``limit`` (not to the value);
- :func:`short_text` is a string from a kernel cut to ``limit`` and made printable;
- :func:`expanded_size` counts the nodes a value has when every shared part is counted as often as
  it is reached (what ``str``, ``==`` or a judge's loop would walk), stopping at ``cap``.

Importing this module has no side effects.
"""

from __future__ import annotations

from typing import Any

from course_tools.grade.sanitize import safe_terminal_text

_CONTAINERS = (list, tuple, dict, set, frozenset)


def short_text(text: object, limit: int = 200) -> str:
    """A string from a kernel as one printable line of at most ``limit`` characters (str objects only)."""
    return safe_terminal_text(text if isinstance(text, str) else short_repr(text, limit), limit)


def describe_error(error: BaseException, limit: int = 300) -> str:
    """``Name: message`` of an exception, bounded: never ``str()`` of arguments that came from a submission."""
    args = error.args
    detail = args[0] if len(args) == 1 and isinstance(args[0], str) else short_repr(args, limit) if args else ""
    return short_text(f"{type(error).__name__}: {detail[: limit * 4]}" if detail else type(error).__name__, limit)


def _tensor(value: Any) -> str:
    shape = "×".join(str(int(n)) for n in value.shape) or "scalar"
    return f"tensor({shape}, {str(value.dtype).replace('torch.', '')})"


def _atom(value: Any, room: int) -> str:
    """A non-container's text, never longer than ``room`` (+1 for the ellipsis) and never costly to make."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return repr(value) if value.bit_length() <= 64 else f"<int of {value.bit_length()} bits>"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (str, bytes)):
        text = repr(value[: room + 2])
        return text if len(value) <= room + 2 else text[:room] + "…"
    try:
        import torch

        if isinstance(value, torch.Tensor):
            return _tensor(value)
    except ImportError:  # pragma: no cover - torch is always there where values are read
        pass
    return f"<{type(value).__name__}>"


def short_repr(value: Any, limit: int = 200) -> str:
    """A description of ``value`` in at most ``limit`` characters, in work proportional to ``limit``.

    Containers are walked breadth-limited: the walk stops as soon as the text is full, so a value
    whose full ``repr`` would be astronomically long costs no more than a short one.
    """
    out: list[str] = []
    used = 0
    # a stack of pending pieces: either text to emit or a value to describe
    stack: list[tuple[bool, Any]] = [(False, value)]
    while stack and used <= limit:
        is_text, item = stack.pop()
        if is_text:
            piece = item
        elif isinstance(item, _CONTAINERS):
            brackets = {list: "[]", tuple: "()", dict: "{}"}.get(type(item), "{}")
            if isinstance(item, dict):
                entries = []
                for count, (key, val) in enumerate(item.items()):
                    if count * 2 > limit:
                        entries.append((True, ", …"))
                        break
                    entries += [(True, ", ")] if count else []
                    entries += [(False, key), (True, ": "), (False, val)]
            else:
                entries = []
                for count, element in enumerate(item):
                    if count * 2 > limit:
                        entries.append((True, ", …"))
                        break
                    entries += [(True, ", ")] if count else []
                    entries.append((False, element))
            stack.append((True, brackets[1]))
            stack.extend(reversed(entries))
            piece = brackets[0]
        else:
            piece = _atom(item, max(limit - used, 8))
        out.append(piece)
        used += len(piece)
    text = "".join(out)
    if stack or len(text) > limit:
        return text[: max(limit - 1, 0)] + "…"
    return text


def expanded_size(value: Any, cap: int = 1_000_000) -> int:
    """How many nodes ``value`` has with shared parts counted each time they are reached; at most ``cap + 1``.

    Computed over the distinct objects only (each container's size is remembered), so a DAG whose
    expansion is 2^40 costs as much as its few dozen lists. A cycle counts as ``cap + 1``.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    keep_alive: list[Any] = []  # ids stay unique while the walk holds the objects
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        item, done = stack.pop()
        if not isinstance(item, _CONTAINERS):
            continue
        key = id(item)
        children = list(item.keys()) + list(item.values()) if isinstance(item, dict) else list(item)
        if done:
            on_path.discard(key)
            total = 1
            for child in children:
                total += sizes.get(id(child), 1) if isinstance(child, _CONTAINERS) else 1
                if total > cap:
                    break
            sizes[key] = min(total, cap + 1)
            continue
        if key in sizes:
            continue
        if key in on_path:
            return cap + 1
        on_path.add(key)
        keep_alive.append(item)
        stack.append((item, True))
        stack.extend((child, False) for child in children if isinstance(child, _CONTAINERS) and id(child) not in sizes)
    return sizes.get(id(value), 1) if isinstance(value, _CONTAINERS) else 1
