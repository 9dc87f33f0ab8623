"""Signed pointers: a MAC over what a pointer claims, so that a consumer can refuse forged ones.

The publisher computes a MAC over :func:`canonical_bytes` of the pointer (location, sizes, codec,
checksum, digest, content type, expiry) with a key named by a key id; the native format carries
both (``kid``, ``mac``). A consumer checks them before it does anything with the location.

Keys are found by key id in three places:

- ``OFFLOAD_SIGNING_KEYS``: comma-separated ``key-id:base64-secret`` pairs (HMAC-SHA256, secrets
  of at least 32 bytes). ``OFFLOAD_SIGNING_KEY_ID`` names the key new pointers are signed with,
  which may also be a key that a plugin supplies.
- Plugins, through the ``offload_register_signers`` hook (keys held in KMS, for example).
- :class:`Signer` objects passed to the :class:`~offload_core.offloader.Offloader`.

To rotate, add the new key to every consumer, then sign with it; remove the old key once the
pointers signed with it have expired.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timezone
from functools import partial
from typing import Protocol, runtime_checkable

from .errors import ConfigurationError, PluginConflictError, SignatureError
from .formats.native import MAX_MAC_BYTES, MIN_MAC_BYTES, format_time
from .pointer import KEY_ID, Pointer, Signature
from .registry import Registry

__all__ = [
    "CANONICAL_PREFIX",
    "KEYS_VARIABLE",
    "KEY_ID_VARIABLE",
    "MIN_SECRET_BYTES",
    "HmacSigner",
    "Signer",
    "Signing",
    "canonical_bytes",
    "known_signers",
    "sign_pointer",
    "signers_from_env",
]

log = logging.getLogger(__name__)

KEYS_VARIABLE = "OFFLOAD_SIGNING_KEYS"
KEY_ID_VARIABLE = "OFFLOAD_SIGNING_KEY_ID"
MIN_SECRET_BYTES = 32
#: Starts every MAC input: names the encoding and its version, so these bytes mean nothing else.
CANONICAL_PREFIX = b"offload-pointer-signature:1\n"


@runtime_checkable
class Signer(Protocol):
    """Makes and checks MACs with one key. Plugins register factories ``() -> Signer`` with
    ``offload_register_signers``, under the signer's ``key_id``."""

    #: Travels in signed pointers (``kid``); matches :data:`offload_core.pointer.KEY_ID`.
    key_id: str

    def sign(self, data: bytes) -> bytes:
        """The MAC of ``data`` (16 to 64 bytes)."""
        ...

    def verify(self, data: bytes, mac: bytes) -> bool:
        """Whether ``mac`` is the MAC of ``data``, compared in constant time."""
        ...


class HmacSigner:
    """HMAC-SHA256 with a secret of at least :data:`MIN_SECRET_BYTES` bytes."""

    def __init__(self, key_id: str, secret: bytes) -> None:
        _check_key_id(key_id)
        if len(secret) < MIN_SECRET_BYTES:
            raise ConfigurationError(
                f"signing key {key_id!r} has {len(secret)} bytes; HMAC-SHA256 keys need at least "
                f"{MIN_SECRET_BYTES} random bytes"
            )
        self.key_id = key_id
        self._secret = bytes(secret)

    def __repr__(self) -> str:
        return f"HmacSigner(key_id={self.key_id!r})"

    def sign(self, data: bytes) -> bytes:
        return hmac.digest(self._secret, data, "sha256")

    def verify(self, data: bytes, mac: bytes) -> bool:
        return hmac.compare_digest(self.sign(data), mac)


def _check_key_id(key_id: object) -> None:
    if not isinstance(key_id, str) or not KEY_ID.match(key_id):
        raise ConfigurationError(
            f"signing key id {key_id!r} is not valid: up to 256 ASCII letters, digits and "
            "'._:/+=@-', starting with a letter or digit"
        )


def canonical_bytes(pointer: Pointer) -> bytes:
    """What a signature covers: :data:`CANONICAL_PREFIX`, then compact ASCII JSON with sorted
    keys of exactly ``location``, ``size``, ``stored_size``, ``codec``, ``checksum``,
    ``digest``, ``content_type`` and ``expires`` (``null`` when unset; the expiry in the native
    format's spelling). The pointer's dialect and existing signature are not covered."""
    claims = {
        "location": pointer.location,
        "size": pointer.size,
        "stored_size": pointer.stored_size,
        "codec": pointer.codec,
        "checksum": pointer.checksum,
        "digest": pointer.digest,
        "content_type": pointer.content_type,
        "expires": None if pointer.expires is None else format_time(pointer.expires),
    }
    text = json.dumps(claims, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return CANONICAL_PREFIX + text.encode("ascii")


def sign_pointer(pointer: Pointer, signer: Signer) -> Pointer:
    """``pointer`` signed by ``signer`` (any signature it had is replaced)."""
    mac = bytes(signer.sign(canonical_bytes(pointer)))
    if not MIN_MAC_BYTES <= len(mac) <= MAX_MAC_BYTES:
        raise ConfigurationError(
            f"signer {signer.key_id!r} made a MAC of {len(mac)} bytes; pointers carry "
            f"{MIN_MAC_BYTES} to {MAX_MAC_BYTES}"
        )
    return replace(pointer, signature=Signature(signer.key_id, mac))


def _decode_secret(text: str) -> bytes | None:
    """Standard or URL-safe base64, padding optional; ``None`` if it is not base64."""
    text = text.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def signers_from_env(env: Mapping[str, str]) -> dict[str, HmacSigner]:
    """The HMAC keys in ``OFFLOAD_SIGNING_KEYS`` (``kid1:base64,kid2:base64``), by key id.

    A malformed value is a :class:`~offload_core.errors.ConfigurationError` that names the entry
    by position and key id, never by its secret."""
    signers: dict[str, HmacSigner] = {}
    for number, entry in enumerate(env.get(KEYS_VARIABLE, "").split(","), 1):
        if not entry.strip():
            continue
        key_id, colon, encoded = (part.strip() for part in entry.rpartition(":"))
        where = f"{KEYS_VARIABLE} entry {number}"
        if not colon or not key_id:
            raise ConfigurationError(f"{where} must be 'key-id:base64-secret'")
        if not KEY_ID.match(key_id):
            raise ConfigurationError(
                f"{where} has an invalid key id: use ASCII letters, digits and '._:/+=@-'"
            )
        if key_id in signers:
            raise ConfigurationError(f"{where}: key id {key_id!r} appears more than once")
        secret = _decode_secret(encoded)
        if secret is None:
            raise ConfigurationError(f"{where} (key {key_id!r}): the secret is not base64")
        signers[key_id] = HmacSigner(key_id, secret)
    return signers


def _itself(signer: Signer) -> Signer:
    return signer


def _registered(registry: Registry, key_id: str) -> Signer:
    factory: Callable[[], Signer] = registry.get("signer", key_id).load()
    return factory()


def known_signers(registry: Registry, env: Mapping[str, str]) -> dict[str, Callable[[], Signer]]:
    """Factories of every signer that plugins register or ``OFFLOAD_SIGNING_KEYS`` holds, by
    key id; nothing is created yet. One key id from both places is a conflict."""
    known: dict[str, Callable[[], Signer]] = {
        name: partial(_registered, registry, name) for name in registry.names("signer")
    }
    for key_id, signer in signers_from_env(env).items():
        if key_id in known:
            plugins = [e.plugin for e in registry.entries("signer") if e.name == key_id]
            raise PluginConflictError("signer", key_id, [KEYS_VARIABLE, *plugins])
        known[key_id] = partial(_itself, signer)
    return known


class Signing:
    """How one offloader signs the pointers it makes and checks the ones it receives.

    :param known: signer factories by key id (see :func:`known_signers`); a signer is created
        when first needed, so a consumer never builds one (a KMS client, say) for nothing.
    :param sign_with: the key id or :class:`Signer` that signs new pointers; ``None``: unsigned.
    :param verify_with: the key ids or signers trusted to verify; ``None``: every one known.
        Signers given here or as ``sign_with`` take precedence over known ones of their key id.
    :param require: refuse unsigned pointers and pointers signed with keys not trusted.
    """

    def __init__(
        self,
        known: Mapping[str, Callable[[], Signer]],
        *,
        sign_with: str | Signer | None = None,
        verify_with: Iterable[str | Signer] | None = None,
        require: bool = False,
    ) -> None:
        self.require = require
        self._factories = dict(known)
        self._signers: dict[str, Signer] = {}
        self._lock = threading.Lock()
        given = list(verify_with) if verify_with is not None else None
        for item in [sign_with, *(given or ())]:
            if item is not None and not isinstance(item, str):
                _check_key_id(item.key_id)
                self._factories[item.key_id] = partial(_itself, item)
                self._signers[item.key_id] = item
        trusted = (
            set(self._factories)
            if given is None
            else {item if isinstance(item, str) else item.key_id for item in given}
        )
        self._check_known(trusted, "verify_with")
        self.trusted = frozenset(trusted)
        if require and not self.trusted:
            raise ConfigurationError(
                "require_signatures needs a key to verify with: set OFFLOAD_SIGNING_KEYS, "
                "install a signer plugin or pass verify_with"
            )
        self.signer: Signer | None = None
        if sign_with is not None:
            key_id = sign_with if isinstance(sign_with, str) else sign_with.key_id
            self._check_known({key_id}, "sign_with")
            self.signer = self._load(key_id)

    @classmethod
    def configure(
        cls,
        registry: Registry,
        env: Mapping[str, str],
        *,
        sign_with: str | Signer | None = None,
        verify_with: Iterable[str | Signer] | None = None,
        require: bool = False,
    ) -> Signing:
        """Signing with the registered and ``OFFLOAD_SIGNING_KEYS`` signers; without
        ``sign_with``, new pointers are signed with ``OFFLOAD_SIGNING_KEY_ID`` if set."""
        if sign_with is None:
            sign_with = env.get(KEY_ID_VARIABLE, "").strip() or None
        return cls(
            known_signers(registry, env),
            sign_with=sign_with,
            verify_with=verify_with,
            require=require,
        )

    def _check_known(self, key_ids: Iterable[str], option: str) -> None:
        unknown = sorted(set(key_ids).difference(self._factories))
        if unknown:
            known = ", ".join(sorted(self._factories)) or "none"
            raise ConfigurationError(
                f"{option} names unknown signing key(s) {', '.join(map(repr, unknown))}; known: "
                f"{known}. Add them to {KEYS_VARIABLE} or install the plugin that provides them"
            )

    def _load(self, key_id: str) -> Signer:
        with self._lock:
            signer = self._signers.get(key_id)
            if signer is None:
                _check_key_id(key_id)
                signer = self._factories[key_id]()
                if signer.key_id != key_id:
                    raise ConfigurationError(
                        f"the signer registered as {key_id!r} has key id {signer.key_id!r}"
                    )
                self._signers[key_id] = signer
            return signer

    def sign(self, pointer: Pointer) -> Pointer:
        """``pointer`` signed with ``sign_with``; unchanged when not signing."""
        return pointer if self.signer is None else sign_pointer(pointer, self.signer)

    def check(self, pointer: Pointer, *, now: datetime | None = None) -> None:
        """Raise :class:`~offload_core.errors.SignatureError` unless ``pointer`` may be used.

        A signature with a trusted key is always verified, expiry included; without one the
        pointer passes only when signatures are not required. Never touches the location."""
        signature = pointer.signature
        refuse = partial(SignatureError, location=pointer.location, dialect=pointer.dialect)
        if signature is None:
            if self.require:
                raise refuse("unsigned")
            return
        key_id = signature.key_id
        if key_id not in self.trusted:
            if self.require:
                raise refuse("unknown-key", key_id=key_id)
            log.debug("pointer signed with untrusted key %r; accepted as unsigned", key_id)
            return
        if not self._load(key_id).verify(canonical_bytes(pointer), signature.mac):
            raise refuse("bad-signature", key_id=key_id)
        if pointer.expires is not None and pointer.expires <= (now or datetime.now(timezone.utc)):
            raise refuse("expired", key_id=key_id)
