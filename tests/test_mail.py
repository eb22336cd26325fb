"""Outgoing mail (push2fa/mail.py): SMTP when configured, the development outbox otherwise."""

from __future__ import annotations

import logging
import stat
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from push2fa.config import Settings, load_settings
from push2fa.mail import send_mail
from tests.conftest import TEST_SECRET
from tests.web.auth.mailbox import body_of, free_port, outbox_messages, smtp_server


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    return load_settings(
        environ={},
        overrides={"secret_key": TEST_SECRET, "instance_path": str(tmp_path), **overrides},
    )


async def test_mail_without_smtp_goes_to_a_private_outbox_file(tmp_path: Path):
    await send_mail(settings_for(tmp_path), "alice@example.com", "Hello", "Body text\n")

    [path] = (tmp_path / "outbox").glob("*.eml")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    [message] = outbox_messages(tmp_path)
    assert message["To"] == "alice@example.com"
    assert message["From"] == "push2fa <no-reply@localhost>"
    assert message["Subject"] == "Hello"
    assert body_of(message) == "Body text\n"


async def test_outbox_lists_mails_in_the_order_they_were_sent(tmp_path: Path):
    settings = settings_for(tmp_path)
    for number in range(5):
        await send_mail(settings, "alice@example.com", f"mail {number}", "x\n")

    subjects = [m["Subject"] for m in outbox_messages(tmp_path)]
    assert subjects == [f"mail {number}" for number in range(5)]


async def test_development_outbox_mail_is_also_logged(tmp_path: Path, caplog):
    caplog.set_level(logging.INFO, logger="push2fa.mail")

    await send_mail(settings_for(tmp_path), "alice@example.com", "Hello", "the body\n")

    assert "the body" in caplog.text


async def test_production_outbox_mail_body_is_not_logged(tmp_path: Path, caplog):
    caplog.set_level(logging.INFO, logger="push2fa.mail")
    settings = settings_for(tmp_path, env="production", public_url="https://push.example.org")

    await send_mail(settings, "alice@example.com", "Hello", "secret link\n")

    assert "secret link" not in caplog.text
    assert "no SMTP configured" in caplog.text
    assert len(outbox_messages(tmp_path)) == 1


async def test_mail_is_delivered_over_smtp_when_configured(tmp_path: Path):
    async with smtp_server() as (port, recorder):
        settings = settings_for(
            tmp_path, smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False
        )
        await send_mail(settings, "bob@example.com", "Über", "Grüße\n")
        recipients, message = await recorder.next_message()

    assert recipients == ["bob@example.com"]
    assert message["Subject"] == "Über"
    assert body_of(message).splitlines() == ["Grüße"]  # SMTP sends CRLF line ends
    assert outbox_messages(tmp_path) == []


async def test_smtp_login_uses_the_configured_credentials(tmp_path: Path):
    seen: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        seen.append((auth_data.login, auth_data.password))
        return AuthResult(success=True)

    async with smtp_server(authenticator=authenticator, auth_require_tls=False) as (port, rec):
        settings = settings_for(
            tmp_path,
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_starttls=False,
            smtp_username="mailer",
            smtp_password="mail password",
        )
        await send_mail(settings, "bob@example.com", "Hi", "x\n")
        await rec.next_message()

    assert seen == [(b"mailer", b"mail password")]


async def test_unreachable_smtp_server_is_logged_not_raised(tmp_path: Path, caplog):
    settings = settings_for(tmp_path, smtp_host="127.0.0.1", smtp_port=free_port())

    await send_mail(settings, "bob@example.com", "Hi", "x\n")

    assert "mail delivery failed" in caplog.text
    assert outbox_messages(tmp_path) == []


async def test_starttls_against_a_server_without_tls_is_logged_not_raised(tmp_path: Path, caplog):
    async with smtp_server() as (port, recorder):
        settings = settings_for(tmp_path, smtp_host="127.0.0.1", smtp_port=port)
        await send_mail(settings, "bob@example.com", "Hi", "x\n")

    assert "mail delivery failed" in caplog.text
    assert recorder.received.empty()


@pytest.mark.parametrize(
    ("to", "subject"),
    [("bob@example.com\nBcc: eve@example.com", "Hi"), ("bob@example.com", "Hi\r\nBcc: eve")],
    ids=["newline-in-address", "newline-in-subject"],
)
async def test_header_injection_is_refused_and_logged_not_raised(
    tmp_path: Path, caplog, to: str, subject: str
):
    await send_mail(settings_for(tmp_path), to, subject, "x\n")

    assert "mail delivery failed" in caplog.text
    assert outbox_messages(tmp_path) == []


async def test_smtp_failure_during_reset_request_still_answers_normally(
    overrides: dict[str, Any], caplog
):
    from push2fa.web.app import create_app
    from tests.conftest import get_csrf, register
    from tests.web.auth.mailbox import background_done

    overrides.update(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_starttls=False)
    app = create_app(overrides)
    async with app.test_app():
        client = app.test_client()
        await register(client, "alice", email="alice@example.com")
        token = await get_csrf(client, "/auth/reset")

        response = await client.post(
            "/auth/reset", form={"csrf_token": token, "email": "alice@example.com"}
        )
        await background_done(app)

    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login"
    assert "mail delivery failed" in caplog.text
