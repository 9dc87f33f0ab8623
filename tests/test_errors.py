"""The exception tree drawn in ``offload_core.errors`` is the tree the code defines."""

from __future__ import annotations

import re

import offload_core.errors as errors


def _drawn_tree() -> dict[str, str | None]:
    """Parent of each class as drawn in the module docstring (None for the root)."""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in (errors.__doc__ or "").splitlines():
        match = re.match(r"^[\s│├└─]*([A-Z]\w+Error)\b", line)
        if not match:
            continue
        name = match.group(1)
        depth = match.start(1) // 4
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[name] = stack[-1][1] if stack else None
        stack.append((depth, name))
    return parents


def test_every_public_error_is_drawn_under_its_real_parent() -> None:
    drawn = _drawn_tree()
    assert set(drawn) == set(errors.__all__)
    for name, parent in drawn.items():
        cls = getattr(errors, name)
        if parent is None:
            assert cls.__bases__ == (Exception,)
        else:
            assert getattr(errors, parent) in cls.__bases__, f"{name} is not drawn under its base"


def test_only_transient_errors_are_retryable() -> None:
    retryable = {n for n in errors.__all__ if getattr(errors, n).retryable}
    assert retryable == {"TransientStorageError"}


def test_errors_carry_their_data() -> None:
    exc = errors.DigestMismatchError(
        algorithm="sha256", expected="aa", actual="bb", location="s3://b/k"
    )
    assert (exc.check, exc.expected, exc.actual, exc.location) == ("digest", "aa", "bb", "s3://b/k")
    too_big = errors.MessageTooLargeError(size=300_000, limit=262_144)
    assert (too_big.size, too_big.limit) == (300_000, 262_144)
    assert "262144" in str(too_big)
    missing = errors.MissingDependencyError("backend 's3'", module="s3fs", extra="s3")
    assert "pip install 'offload[s3]'" in str(missing)
