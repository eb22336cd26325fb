"""The security history in human words: audit rows grouped into login attempts.

The audit log is written for the server (one row per fact, dotted names); the person
reading their own history wants to know, per login attempt, what happened, from where,
and whether it needs a look. Wording and grouping live here so the page stays a template.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from push2fa.models import AuditEvent

PAGE_SIZE = 10
# A code typed or a login finished this long after the last step still belongs to the attempt.
ATTEMPT_GAP = timedelta(minutes=15)

_FACTOR = {
    "push": "approved on your phone",
    "recovery": "with a recovery code",
    "app": "with a code from the app",
    "totp": "with a code from the app",
    "trusted_browser": "from a trusted browser, without the phone",
}
_KIND = {"recovery": "recovery code", "app": "code from the app", "totp": "code from the app"}
_REFUSED = {
    "budget": "too many requests went unanswered",
    "reported": "a login was reported as not you",
    "locked": "two-factor login is locked",
}

# Why a flagged entry deserves a look, said to the account's owner.
FLAG_REASONS = {
    "push.denied": "A login got past your password but was denied on your phone. If you did "
    "not try to log in, someone knows your password: change it.",
    "push.reported": "You reported this login as not yours: every session was ended and "
    "push requests were paused.",
    "login.password_failed": "A wrong password was typed for your account. Nothing got in; "
    "if it was not you and it happens often, choose a stronger password.",
    "auth.failure": "A wrong code was typed at the second step, after your password was "
    "accepted. If it was not you, change your password.",
    "twofa.locked": "Too many wrong codes: two-factor login is locked until you reset "
    "your password by e-mail.",
    "twofa.disabled": "Two-factor login was turned off: a password alone now opens your account.",
    "recovery_code.used": "A recovery code was used instead of your phone. If it was not "
    "you, make new codes and change your password.",
    "push.refused": "A login passed your password but no request was sent to your phone.",
    "account.register_with_taken_email": "Someone tried to create an account with your "
    "e-mail address.",
}
FLAGGED = frozenset(FLAG_REASONS)


def _detail(event: AuditEvent, key: str) -> str:
    details: dict[str, Any] = event.details or {}
    value = details.get(key)
    return str(value) if value is not None else ""


def _purpose(event: AuditEvent) -> str:
    return {"disable": "Turning off two-factor login", "reauth": "Confirming it was you"}.get(
        _detail(event, "purpose"), "Login"
    )


def _decided(verb: str) -> Callable[[AuditEvent], str]:
    def words(event: AuditEvent) -> str:
        by = _detail(event, "by")
        if verb == "approved" and by in _FACTOR and by != "push":
            return f"Login approved {_FACTOR[by]}"
        if verb == "denied" and _detail(event, "reason") == "wrong_number":
            return "Login denied: the wrong number was picked on your phone"
        if verb == "denied":
            return "Login denied on your phone"
        if verb == "approved":
            return "Login approved on your phone"
        if verb == "expired":
            return "Login request expired without an answer"
        if verb == "cancelled":
            return "Login request cancelled"
        return "Approval used to log in"

    return words


def _login(event: AuditEvent) -> str:
    return {
        "push": "Login approved on your phone",
        "recovery": "Logged in with a recovery code",
        "app": "Logged in with a code from the app",
        "totp": "Logged in with a code from the app",
        "trusted_browser": "Logged in from a trusted browser, without the phone",
    }.get(_detail(event, "second_factor"), "Logged in with your password")


WORDS: dict[str, Callable[[AuditEvent], str]] = {
    "push.created": lambda e: f"{_purpose(e)} request sent to your phone",
    "push.approved": _decided("approved"),
    "push.denied": _decided("denied"),
    "push.expired": _decided("expired"),
    "push.cancelled": _decided("cancelled"),
    "push.consumed": _decided("consumed"),
    "push.reported": lambda e: "Login reported as not you",
    "push.refused": lambda e: (
        "No request sent to your phone: " + _REFUSED.get(_detail(e, "why"), "it was refused")
    ),
    "push.failed": lambda e: "The push service could not be reached",
    "login.succeeded": _login,
    "login.password_failed": lambda e: "Wrong password typed",
    "auth.failure": lambda e: f"Wrong {_KIND.get(_detail(e, 'kind'), 'code')} typed",
    "twofa.locked": lambda e: "Two-factor login locked after too many wrong codes",
    "twofa.enabled": lambda e: "Two-factor login turned on",
    "twofa.disabled": lambda e: "Two-factor login turned off",
    "twofa.disable_refused": lambda e: "Turning off two-factor login was refused",
    "twofa.delete_failed": lambda e: "The phone could not be removed from the push service",
    "twofa.enrollment_started": lambda e: "Phone enrolment started",
    "phone.added": lambda e: "New phone added",
    "phone.removed": lambda e: "Phone removed",
    "twofa.enrollment_expired": lambda e: "Phone enrolment expired before the code was scanned",
    "twofa.enrollment_cancelled": lambda e: "Phone enrolment cancelled",
    "recovery_code.used": lambda e: "Recovery code used",
    "recovery_codes.generated": lambda e: "Recovery codes made (any older ones stopped working)",
    "trusted_browser.added": lambda e: "Browser trusted: it will not ask your phone for a while",
    "trusted_browser.revoked": lambda e: "Trusted browsers removed",
    "password.changed": lambda e: "Password changed",
    "password.reset": lambda e: "Password reset by e-mail",
    "password.reset_requested": lambda e: "Password reset e-mail requested",
    "account.registered": lambda e: "Account created",
    "account.register_with_taken_email": lambda e: "Someone tried to register with your e-mail",
}

# Which step of an attempt best says how it ended, most telling first.
_OUTCOME_ORDER = (
    "login.succeeded",
    "push.reported",
    "twofa.locked",
    "push.denied",
    "push.expired",
    "push.cancelled",
    "push.approved",
    "auth.failure",
    "push.failed",
    "push.created",
)
# Steps that only continue an attempt already under way.
_FOLLOW_UPS = frozenset(
    {
        "login.succeeded",
        "auth.failure",
        "recovery_code.used",
        "trusted_browser.added",
        "twofa.locked",
        "twofa.disabled",
        "push.reported",
    }
)


def words(event: AuditEvent) -> str:
    """One audit row as a sentence; unknown names still read as words."""
    describe = WORDS.get(event.event)
    if describe is not None:
        return describe(event)
    return event.event.replace(".", " ").replace("_", " ").capitalize()


@dataclass
class Step:
    text: str
    at: datetime
    flagged: bool


@dataclass
class Attempt:
    """One login attempt (or one account change), newest step last."""

    events: list[AuditEvent] = field(default_factory=list)
    challenge: str = ""

    @property
    def outcome(self) -> AuditEvent:
        for name in _OUTCOME_ORDER:
            for event in reversed(self.events):
                if event.event == name:
                    return event
        return self.events[-1]

    @property
    def headline(self) -> str:
        return words(self.outcome)

    @property
    def at(self) -> datetime:
        return self.events[-1].created_at

    @property
    def ip(self) -> str:
        return next((e.ip for e in self.events if e.ip), "")

    @property
    def user_agent(self) -> str:
        return next((e.user_agent for e in self.events if e.user_agent), "")

    @property
    def flags(self) -> list[str]:
        """The explanations of what in this attempt deserves a look, each once."""
        seen: list[str] = []
        for event in self.events:
            reason = FLAG_REASONS.get(event.event)
            if reason and reason not in seen:
                seen.append(reason)
        return seen

    @property
    def steps(self) -> list[Step]:
        return [Step(words(e), e.created_at, e.event in FLAGGED) for e in self.events]


def group(events: Sequence[AuditEvent]) -> list[Attempt]:
    """Audit rows (any order) as attempts, newest attempt first."""
    attempts: list[Attempt] = []
    open_by_challenge: dict[str, Attempt] = {}
    for event in sorted(events, key=lambda e: (e.created_at, e.id)):
        challenge = _detail(event, "challenge")
        last = attempts[-1] if attempts else None
        if challenge and challenge in open_by_challenge:
            target = open_by_challenge[challenge]
        elif (
            not challenge
            and event.event in _FOLLOW_UPS
            and last is not None
            and last.challenge
            and event.created_at - last.at <= ATTEMPT_GAP
            and not any(e.event == "login.succeeded" for e in last.events)
        ):
            target = last
        else:
            target = Attempt(challenge=challenge)
            attempts.append(target)
            if challenge:
                open_by_challenge[challenge] = target
        target.events.append(event)
    attempts.reverse()
    return attempts


@dataclass
class Page:
    attempts: list[Attempt]
    number: int
    pages: int

    @property
    def newer(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def older(self) -> int | None:
        return self.number + 1 if self.number < self.pages else None


def page(attempts: list[Attempt], requested: int | None) -> Page:
    """One page of attempts; a page number out of range shows the nearest page."""
    pages = max(1, -(-len(attempts) // PAGE_SIZE))
    number = min(max(requested or 1, 1), pages)
    start = (number - 1) * PAGE_SIZE
    return Page(attempts[start : start + PAGE_SIZE], number, pages)
