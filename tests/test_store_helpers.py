"""The helpers offload_core.store gives every store author: keys refused or accepted exactly as
the conformance suite expects, locations that never decode, and errors that keep their cause."""

from __future__ import annotations

import errno

import pytest

from offload_core.errors import (
    AccessDeniedError,
    PayloadNotFoundError,
    TransientStorageError,
    UnsafeKeyError,
)
from offload_core.store import key_under, translate_os_error, translating, validate_key
from offload_core.testing.backends import ODD_KEYS, UNSAFE_KEYS


@pytest.mark.parametrize("key", [k for _, k in UNSAFE_KEYS], ids=[n for n, _ in UNSAFE_KEYS])
def test_every_unsafe_key_of_the_suite_is_refused(key: str) -> None:
    with pytest.raises(UnsafeKeyError):
        validate_key(key)
    assert key_under(f"s3://b/root/{key}", "s3://b/root") is None


@pytest.mark.parametrize("key", ODD_KEYS)
def test_odd_but_safe_keys_pass_unchanged(key: str) -> None:
    assert validate_key(key) == key
    assert key_under(f"s3://b/root/{key}", "s3://b/root/") == key


def test_locations_are_never_decoded() -> None:
    assert key_under("s3://b/root/%2e%2e/x", "s3://b/root") == "%2e%2e/x"
    assert key_under("s3://b/rooted/x", "s3://b/root") is None
    assert key_under("simplecache::s3://b/root/x", "s3://b/root") is None


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (FileNotFoundError(errno.ENOENT, "gone"), PayloadNotFoundError),
        (PermissionError(errno.EACCES, "no"), AccessDeniedError),
        (TimeoutError("slow"), TransientStorageError),
        (OSError(errno.ELOOP, "loop"), UnsafeKeyError),
    ],
)
def test_os_errors_become_storage_errors_with_their_cause(
    error: OSError, expected: type[Exception]
) -> None:
    with pytest.raises(expected) as info, translating(translate_os_error, "file:///srv/p/k"):
        raise error
    assert info.value.__cause__ is error
