"""A software WebAuthn authenticator for tests that call the domain directly: a P-256 key
that answers the server's options the way a security key and browser do (clientDataJSON,
authenticator data, "none" attestation, an ES256 signature). The answers are checked by
the product's real verifier (push2fa.webauthn over py_webauthn), so a test can make a key
that is cloned, synced, without user verification, or on another origin, without Chromium.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import bytes_to_base64url

ORIGIN = "http://localhost:5000"  # the default public URL's origin
USER_PRESENT, USER_VERIFIED, BACKUP_ELIGIBLE, BACKED_UP, ATTESTED = 0x01, 0x04, 0x08, 0x10, 0x40


def b64(data: bytes) -> str:
    return bytes_to_base64url(data)


class SoftKey:
    """One credential. `counting` keys raise their sign count on every use (security keys);
    others always report 0 (synced passkeys). `synced` sets the backup flags."""

    def __init__(self, *, counting: bool = True, synced: bool = False, verifies: bool = True):
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = secrets.token_bytes(32)
        self.counting, self.synced, self.verifies = counting, synced, verifies
        self.sign_count = 0
        self.user_handle: bytes | None = None

    @property
    def id(self) -> str:
        return b64(self.credential_id)

    def _cose_public_key(self) -> bytes:
        numbers = self.private_key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,  # kty: EC2
                3: -7,  # alg: ES256
                -1: 1,  # crv: P-256
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    def _authenticator_data(self, rp_id: str, *, attested: bool) -> bytes:
        if self.counting:
            self.sign_count += 1
        flags = USER_PRESENT | (USER_VERIFIED if self.verifies else 0)
        flags |= (BACKUP_ELIGIBLE | BACKED_UP) if self.synced else 0
        data = hashlib.sha256(rp_id.encode()).digest()
        data += bytes([flags | (ATTESTED if attested else 0)])
        data += self.sign_count.to_bytes(4, "big")
        if attested:
            data += bytes(16)  # aaguid: none given
            data += len(self.credential_id).to_bytes(2, "big") + self.credential_id
            data += self._cose_public_key()
        return data

    @staticmethod
    def _client_data(kind: str, challenge: str, origin: str) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}
        ).encode()

    def create(self, options: dict[str, Any], *, origin: str = ORIGIN) -> dict[str, Any]:
        """The answer to ``navigator.credentials.create(options)``."""
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        auth_data = self._authenticator_data(options["rp"]["id"], attested=True)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": self.id,
            "rawId": self.id,
            "type": "public-key",
            "response": {"clientDataJSON": b64(client_data), "attestationObject": b64(attestation)},
            "clientExtensionResults": {},
        }

    def get(self, options: dict[str, Any], *, origin: str = ORIGIN) -> dict[str, Any]:
        """The answer to ``navigator.credentials.get(options)``, signed by this key."""
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        auth_data = self._authenticator_data(options["rpId"], attested=False)
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = self.private_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return {
            "id": self.id,
            "rawId": self.id,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(client_data),
                "authenticatorData": b64(auth_data),
                "signature": b64(signature),
                "userHandle": b64(self.user_handle) if self.user_handle else None,
            },
            "clientExtensionResults": {},
        }
