"""Personal data written outside the process: sealed (encrypted) or named by a keyed hash.

Redis, call records and the policy book's audit trail outlive a call and are
read by more people than the call's controller: an operator with redis-cli,
a backup, a support ticket. So nothing there may identify a policyholder in
clear (dates of birth, ID digits, one-time codes, phone and policy numbers):

- values a controller must read back (a call's state after a restart, an
  audit trail's old and new numbers) are *sealed*: Fernet (AES-128-CBC with
  an HMAC-SHA256 tag, from the `cryptography` library) under the data keys;
- values only ever compared (a caller number as a history key, a one-time
  code, a policy's failed verifications) are *digested*: HMAC-SHA256 under
  the hash key, so Redis alone cannot be searched by trying every number,
  which a plain hash allowed.

Keys come from settings (`IVR_DATA_KEYS`, `IVR_HASH_KEY`); without them a
key file is made once (`IVR_KEY_FILE`, mode 0600) so that a single host's
restarts keep reading what they wrote. Rotation: put a new data key first in
`IVR_DATA_KEYS`, keep the old ones after it (they still open), run
`ivr keys rotate` to reseal Redis under the new key, then drop the old ones.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

SEALED = "sealed:"  # what a sealed value starts with: `ivr privacy scan` and readers tell it from clear text


class SealError(ValueError):
    """A sealed value no configured key opens (a dropped key, or tampering)."""


class Sealer:
    """Seals and opens values under the data keys, digests them under the hash key."""

    def __init__(self, data_keys: Sequence[bytes], hash_key: bytes) -> None:
        if not data_keys:
            raise ValueError("at least one data key is needed")
        if len(hash_key) < 32:
            raise ValueError("the hash key needs at least 32 bytes")
        self._fernet = MultiFernet([Fernet(key) for key in data_keys])
        self._hash_key = hash_key

    @classmethod
    def generate(cls) -> Sealer:
        """Fresh keys, for tests and for a private Redis that dies with the process."""
        return cls([Fernet.generate_key()], os.urandom(32))

    def seal(self, text: str) -> str:
        return SEALED + self._fernet.encrypt(text.encode()).decode()

    def open(self, value: str | bytes) -> str:
        """The clear text of a sealed value; a value written before sealing existed is returned as is."""
        text = value.decode() if isinstance(value, bytes) else value
        if not text.startswith(SEALED):
            return text
        try:
            return self._fernet.decrypt(text[len(SEALED):].encode()).decode()
        except InvalidToken:
            raise SealError("a sealed value that no configured data key opens") from None

    def reseal(self, value: str | bytes) -> str:
        """The value sealed under the newest data key (key rotation); clear text is sealed."""
        text = value.decode() if isinstance(value, bytes) else value
        if not text.startswith(SEALED):
            return self.seal(text)
        try:
            return SEALED + self._fernet.rotate(text[len(SEALED):].encode()).decode()
        except InvalidToken:
            raise SealError("a sealed value that no configured data key opens") from None

    def digest(self, purpose: str, value: str, size: int = 24) -> str:
        """A keyed hash of `value` for one purpose (two purposes never share digests)."""
        mac = hmac.new(self._hash_key, f"{purpose}\0{value}".encode(), hashlib.sha256)
        return mac.hexdigest()[:size]


def new_data_key() -> str:
    return Fernet.generate_key().decode()


def new_hash_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def from_settings(data_keys: Sequence[str], hash_key: str | None, key_file: Path) -> Sealer:
    """The sealer the settings name; keys missing there come from `key_file`, made on first use."""
    if data_keys and hash_key:
        return _build(data_keys, hash_key, "IVR_DATA_KEYS/IVR_HASH_KEY")
    stored_data, stored_hash = _key_file(key_file)
    return _build(list(data_keys) or stored_data, hash_key or stored_hash, str(key_file))


def _build(data_keys: Sequence[str], hash_key: str, where: str) -> Sealer:
    try:
        return Sealer([key.encode() for key in data_keys], base64.urlsafe_b64decode(hash_key.encode()))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"keys in {where} are not usable: {exc} (make new ones with `ivr keys new`)") from None


def _key_file(path: Path) -> tuple[list[str], str]:
    """Read the key file, or create it (0600, never overwritten: two processes starting at once agree)."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fresh = json.dumps({"data_keys": [new_data_key()], "hash_key": new_hash_key()})
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
        # a new file of ours, never one planted there or a link to elsewhere
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(fresh)
        try:
            os.link(temporary, path)  # whole or not at all; the first process to get there wins
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    shown = path.lstat()
    if path.is_symlink() or shown.st_mode & 0o077 or shown.st_uid != os.getuid():
        raise ValueError(f"key file {path} must be a file of this user that no one else can read (chmod 600)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [str(k) for k in data["data_keys"]], str(data["hash_key"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"key file {path} is not usable: {exc}") from None


_cache: dict[tuple, Sealer] = {}


def for_settings(settings) -> Sealer:
    """One sealer per distinct key set in this process (the store, history and codes share it)."""
    data = tuple(key.get_secret_value() for key in settings.data_keys)
    hashed = settings.hash_key.get_secret_value() if settings.hash_key else None
    key = (data, hashed, str(settings.key_file))
    if key not in _cache:
        _cache[key] = from_settings(data, hashed, Path(settings.key_file))
    return _cache[key]
