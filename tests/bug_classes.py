"""Plant each bug class of issue #10 by hand, run the test meant to catch it, revert.

Run from the repository root with a clean work tree: `.venv/bin/python -m tests.bug_classes`
(optionally with words from class names, to run only those). Each line says CAUGHT (the
test failed with the bug planted, as it must), MISSED, or SKIP (the code moved: update the
plant). The file is restored with `git checkout` after each run, so never run this with
uncommitted product changes. The table of classes and tests is in docs/mutation.md.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Plant:
    bug: str
    path: str
    old: str  # must occur exactly once in `path`
    new: str
    tests: tuple[str, ...]
    also: tuple[tuple[str, str], ...] = ()  # further (old, new) edits in the same file


LATEST_APPROVED = (
    "        from sqlalchemy import select\n"
    "        latest = (await db.execute(select(LoginChallenge).where(\n"
    "            LoginChallenge.user_id == challenge.user_id,\n"
    "            LoginChallenge.status == 'approved').order_by(LoginChallenge.id.desc())\n"
    "        )).scalars().first() or challenge\n"
)
ENTER_ROOMS = "        for room in rooms:\n            await self.server.enter_room(sid, room)"
CSRF_HOOK = "    form = await CSRFOnlyForm.from_request()\n"
COMPLETION = "tests/web/twofa/test_completion.py"
AUTH_VIEWS = "tests/web/auth/test_views.py"

PLANTS = [
    Plant(
        "trusted cookie of another account accepted",
        "push2fa/domain/trusted_browsers.py",
        "        or device.user_id != user.id\n",
        "",
        (
            "tests/domain/test_trusted_browsers.py::test_trusted_browser_cookie_of_another_account_is_refused",
        ),
    ),
    Plant(
        "recovery code of another account accepted",
        "push2fa/domain/recovery_codes.py",
        "                RecoveryCode.user_id == user_id,\n",
        "",
        ("tests/domain/test_recovery_codes.py::test_recovery_code_of_another_account_is_refused",),
    ),
    Plant(
        "webhook with an empty signature header accepted",
        "push2fa/web/webhooks.py",
        "    if not sig or not nonce:\n",
        "    if not nonce:\n",
        ("tests/web/test_webhook_attacks.py::test_empty_signature_header_refused",),
        also=(("    if not signature.verify(\n", "    if sig and not signature.verify(\n"),),
    ),
    Plant(
        "completion consumes the user's latest approved challenge",
        "push2fa/web/twofa/views.py",
        "        consumed = await challenges.consume(\n"
        "            db, svc.realtime, challenge.public_id, challenge.user_id\n",
        LATEST_APPROVED + "        consumed = await challenges.consume(\n"
        "            db, svc.realtime, latest.public_id, challenge.user_id\n",
        (
            "tests/web/twofa/test_completion.py::test_completion_uses_the_challenge_bound_to_this_session",
        ),
    ),
    Plant(
        "approved challenge consumable for ever",
        "push2fa/domain/challenges.py",
        '"completable": and_(_OWNED, or_(_T.expires_at > _NOW, _T.decided_at > _GRACE_SINCE)),',
        '"completable": _OWNED,',
        ("tests/domain/test_challenges.py::test_approved_challenge_is_not_consumable_for_ever",),
    ),
    Plant(
        "socket joins a room the client names",
        "push2fa/realtime/hub.py",
        ENTER_ROOMS,
        "        if isinstance(auth, dict) and isinstance(auth.get('room'), str):\n"
        "            rooms = [*rooms, auth['room']]\n" + ENTER_ROOMS,
        ("tests/realtime/test_access.py::test_a_socket_cannot_join_a_room_it_names",),
    ),
    Plant(
        "socket trusts an unsigned session cookie",
        "push2fa/realtime/access.py",
        "        data = serializer.loads(raw, max_age=max_age)",
        "        data = serializer.loads_unsafe(raw)[1]",
        (
            "tests/realtime/test_access.py::test_an_unsigned_session_cookie_joins_nothing",
            "tests/realtime/test_access.py::test_a_session_cookie_signed_with_another_key_joins_nothing",
        ),
    ),
    Plant(
        "'this wasn't me' leaves trusted browsers alive",
        "push2fa/domain/protection.py",
        '    await trusted_browsers.revoke(db, user_id)\n    audit.record(db, "push.reported"',
        '    audit.record(db, "push.reported"',
        ("tests/domain/test_protection.py",),
    ),
    Plant(
        "'this wasn't me' leaves other pushes alive",
        "push2fa/domain/protection.py",
        '    await end_pending_pushes(db, realtime, user_id, reason="reported")\n',
        "",
        ("tests/domain/test_protection.py",),
    ),
    *(
        Plant(
            f"CSRF check removed: {endpoint}",
            "push2fa/web/csrf.py",
            CSRF_HOOK,
            f"    if request.endpoint == {endpoint!r}:\n        return\n" + CSRF_HOOK,
            (test,),
        )
        for endpoint, test in (
            ("twofa.complete", f"{COMPLETION}::test_complete_without_csrf_token_does_not_log_in"),
            (
                "twofa.cancel",
                f"{COMPLETION}::test_cancel_without_csrf_token_leaves_the_push_pending",
            ),
            ("twofa.resend", f"{COMPLETION}::test_resend_without_csrf_token_sends_nothing"),
            (
                "auth.logout",
                f"{AUTH_VIEWS}::test_logout_without_valid_csrf_token_keeps_the_user_logged_in",
            ),
        )
    ),
    Plant(
        "recovery codes compared on a prefix",
        "push2fa/domain/recovery_codes.py",
        "if ch.isalnum())[:20]",
        "if ch.isalnum())[:5]",
        ("tests/domain/test_recovery_codes.py::test_recovery_code_compared_whole_not_prefix",),
    ),
    Plant(
        "future-dated nonce accepted",
        "push2fa/domain/webhook_nonces.py",
        "    return abs(now - stamp) <= WINDOW_SECONDS",
        "    return now - stamp <= WINDOW_SECONDS",
        ("tests/web/test_webhook_attacks.py::test_future_dated_nonce_refused",),
    ),
    Plant(
        "case-changed login escapes the per-account limit",
        "push2fa/web/limit_keys.py",
        '            key = f"account:{user.id}"',
        "            key = f\"account:{form.get('login')}\"",
        ("tests/web/test_limits.py::test_case_changed_logins_share_the_per_account_limit",),
    ),
]


def _run(plant: Plant) -> str:
    path = Path(plant.path)
    planted = path.read_text()
    for old, new in ((plant.old, plant.new), *plant.also):
        if planted.count(old) != 1:
            return "SKIP  "
        planted = planted.replace(old, new)
    path.write_text(planted)
    try:
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x"]
        result = subprocess.run([*command, *plant.tests], capture_output=True, timeout=600)
    finally:
        subprocess.run(["git", "checkout", "--", plant.path], check=True)
    return {0: "MISSED", 1: "CAUGHT"}.get(result.returncode, f"rc={result.returncode}")


def main(words: list[str]) -> int:
    missed = 0
    for plant in PLANTS:
        if words and not any(word in plant.bug for word in words):
            continue
        verdict = _run(plant)
        missed += verdict != "CAUGHT"
        print(f"{verdict}  {plant.bug}  ->  {' '.join(plant.tests)}", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
