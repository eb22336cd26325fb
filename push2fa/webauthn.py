"""WebAuthn ceremonies for the whole product: one place builds options and verifies.

py_webauthn does the cryptography; this module owns the policy around it. The relying
party id and the accepted origins come from settings (an allow-list), never from the Host
header of the request at hand, so a forged Host cannot move a ceremony to another origin.
User verification is required wherever the caller asks for it, and a sign count that goes
backwards or stands still (when the authenticator keeps one) is refused as a clone or replay.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

MAX_CREDENTIAL_JSON = 16 * 1024
TIMEOUT_MS = 120_000


class CeremonyRejected(ValueError):
    """The browser's answer does not prove what it must; the message is safe to show."""


@dataclass(frozen=True)
class RelyingParty:
    """Who the credentials are for: the rpId and the exact origins allowed to use them."""

    rp_id: str
    name: str
    origins: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.rp_id or _is_ip(self.rp_id):
            raise ValueError("the WebAuthn rpId must be a domain name, not an IP address")
        if not self.origins:
            raise ValueError("at least one WebAuthn origin is required")
        for origin in self.origins:
            parts = urlsplit(origin)
            host = parts.hostname or ""
            if parts.scheme not in ("https", "http") or parts.path not in ("", "/"):
                raise ValueError(f"not an origin: {origin!r}")
            if parts.scheme == "http" and host != "localhost":
                raise ValueError(f"WebAuthn needs https (or http://localhost): {origin!r}")
            if host != self.rp_id and not host.endswith("." + self.rp_id):
                raise ValueError(f"origin {origin!r} is not within rpId {self.rp_id!r}")

    @classmethod
    def for_public_url(cls, public_url: str, name: str) -> RelyingParty:
        """The relying party of a site served at ``public_url`` (its host, its origin)."""
        parts = urlsplit(public_url)
        origin = f"{parts.scheme}://{parts.netloc}"
        return cls(rp_id=parts.hostname or "", name=name, origins=(origin,))

    @classmethod
    def from_settings(
        cls, public_url: str, name: str, rp_id: str = "", origins: str = ""
    ) -> RelyingParty:
        """The site's relying party from its settings: an explicit rpId and origin
        allow-list when set; otherwise the public URL's, or ``localhost`` on the same port
        when the public URL is an IP address (which WebAuthn refuses)."""
        parts = urlsplit(public_url)
        host = parts.hostname or ""
        if _is_ip(host):
            port = f":{parts.port}" if parts.port else ""
            default_id, default_origin = "localhost", f"http://localhost{port}"
        else:
            default_id, default_origin = host, f"{parts.scheme}://{parts.netloc}"
        listed = tuple(o.strip().rstrip("/") for o in origins.split(",") if o.strip())
        return cls(
            rp_id=rp_id.strip() or default_id, name=name, origins=listed or (default_origin,)
        )


@dataclass(frozen=True)
class NewCredential:
    """A verified registration: what to store for later assertions."""

    credential_id: bytes
    public_key: bytes
    sign_count: int
    user_verified: bool
    device_type: str  # "single_device" or "multi_device" (a synced passkey)
    backed_up: bool
    aaguid: str


@dataclass(frozen=True)
class VerifiedAssertion:
    credential_id: bytes
    new_sign_count: int
    user_verified: bool
    backed_up: bool


def registration_options(
    rp: RelyingParty,
    *,
    challenge: bytes,
    user_handle: bytes,
    user_name: str,
    exclude: list[bytes] | None = None,
    require_user_verification: bool = True,
    attestation: str = "none",
) -> dict[str, Any]:
    """Options for ``navigator.credentials.create`` as JSON-ready data."""
    uv = (
        UserVerificationRequirement.REQUIRED
        if require_user_verification
        else UserVerificationRequirement.PREFERRED
    )
    options = generate_registration_options(
        rp_id=rp.rp_id,
        rp_name=rp.name,
        user_id=user_handle,
        user_name=user_name,
        challenge=challenge,
        timeout=TIMEOUT_MS,
        attestation=AttestationConveyancePreference(attestation),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED, user_verification=uv
        ),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=c) for c in exclude or []],
    )
    result: dict[str, Any] = json.loads(options_to_json(options))
    return result


def verify_registration(
    rp: RelyingParty,
    credential: Any,
    *,
    challenge: bytes,
    require_user_verification: bool = True,
) -> NewCredential:
    """Check a ``credentials.create`` answer against the challenge this server issued."""
    try:
        verified = verify_registration_response(
            credential=_credential_json(credential),
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=list(rp.origins),
            require_user_verification=require_user_verification,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise CeremonyRejected("the new passkey could not be verified") from exc
    return NewCredential(
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        user_verified=verified.user_verified,
        device_type=str(getattr(verified.credential_device_type, "value", "single_device")),
        backed_up=verified.credential_backed_up,
        aaguid=verified.aaguid,
    )


def authentication_options(
    rp: RelyingParty,
    *,
    challenge: bytes,
    allow: list[bytes],
    require_user_verification: bool = True,
) -> dict[str, Any]:
    """Options for ``navigator.credentials.get``, limited to the given credentials."""
    options = generate_authentication_options(
        rp_id=rp.rp_id,
        challenge=challenge,
        timeout=TIMEOUT_MS,
        allow_credentials=[PublicKeyCredentialDescriptor(id=c) for c in allow],
        user_verification=(
            UserVerificationRequirement.REQUIRED
            if require_user_verification
            else UserVerificationRequirement.PREFERRED
        ),
    )
    result: dict[str, Any] = json.loads(options_to_json(options))
    return result


def verify_assertion(
    rp: RelyingParty,
    credential: Any,
    *,
    challenge: bytes,
    credential_id: bytes,
    public_key: bytes,
    sign_count: int,
    require_user_verification: bool = True,
) -> VerifiedAssertion:
    """Check a ``credentials.get`` answer made by the stored credential over ``challenge``.

    The caller recomputes ``challenge`` from its own records; nothing in the answer is
    trusted to say what was signed.
    """
    data = _credential_json(credential)
    if credential_id_of(data) != credential_id:
        raise CeremonyRejected("the signature is from another passkey")
    try:
        verified = verify_authentication_response(
            credential=data,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=list(rp.origins),
            credential_public_key=public_key,
            credential_current_sign_count=sign_count,
            require_user_verification=require_user_verification,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise CeremonyRejected("the signature could not be verified") from exc
    return VerifiedAssertion(
        credential_id=verified.credential_id,
        new_sign_count=verified.new_sign_count,
        user_verified=bool(getattr(verified, "user_verified", require_user_verification)),
        backed_up=verified.credential_backed_up,
    )


def credential_id_of(credential: Any) -> bytes:
    """The raw id a browser's credential JSON names (not yet proof of anything)."""
    data = _credential_json(credential)
    raw = data.get("rawId") or data.get("id")
    if not isinstance(raw, str) or not raw:
        raise CeremonyRejected("the answer names no passkey")
    try:
        return base64url_to_bytes(raw)
    except (ValueError, TypeError) as exc:
        raise CeremonyRejected("the answer names no passkey") from exc


def b64url(data: bytes) -> str:
    return bytes_to_base64url(data)


def from_b64url(text: str) -> bytes:
    return base64url_to_bytes(text)


def _credential_json(credential: Any) -> dict[str, Any]:
    """The credential as a dict, bounded in size, whatever form it came in."""
    if isinstance(credential, str | bytes):
        if len(credential) > MAX_CREDENTIAL_JSON:
            raise CeremonyRejected("the answer is too large")
        try:
            credential = json.loads(credential)
        except ValueError as exc:
            raise CeremonyRejected("the answer is not JSON") from exc
    if not isinstance(credential, dict):
        raise CeremonyRejected("the answer is not a credential")
    if len(json.dumps(credential)) > MAX_CREDENTIAL_JSON:
        raise CeremonyRejected("the answer is too large")
    return credential


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
