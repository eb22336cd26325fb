"""Timers that survive their worker: expiry and the status-poll safety net run from the
database in every process, so a challenge whose creator was killed still expires, and an
answer whose callback never came is still found, by the other process."""

from __future__ import annotations

import signal

import pytest

from tests.scaleout.cluster import listener, url_of

pytestmark = pytest.mark.slow


@pytest.fixture
async def no_callbacks(cluster_factory):
    """Two processes whose push service never manages to call back (its callback URL is
    a closed port), with the safety-net poll due half a second after each push."""
    closed = listener()  # bound, never listening: connections are refused
    try:
        yield await cluster_factory(
            callback_url=f"{url_of(closed)}/webhooks/authy",
            settings={"PUSH2FA_STATUS_POLL_DELAY": "0.5"},
        )
    finally:
        closed.close()


async def test_challenge_of_a_killed_process_is_expired_by_the_other(no_callbacks, browsers):
    cluster = no_callbacks
    [(username, _)] = (await cluster.seed_users(1)).items()
    a, b = cluster.apps["A"], cluster.apps["B"]
    browser = browsers(a.url)
    await browser.login(username)  # A creates the challenge
    await browser.connect(b.url)  # the page listens on B
    await browser.wait_status("pending")

    a.send(signal.SIGKILL)
    await a.exited(10)
    challenge = await cluster.latest_challenge(username)
    await cluster.expire_now(challenge.public_id)
    await browser.wait_status("expired")

    assert (await cluster.latest_challenge(username)).decided_by == "sweep"


async def test_answer_without_callback_is_found_by_the_other_process_poll(no_callbacks, browsers):
    cluster = no_callbacks
    [(username, authy_id)] = (await cluster.seed_users(1)).items()
    a, b = cluster.apps["A"], cluster.apps["B"]
    browser = browsers(a.url)
    await browser.login(username)
    await browser.connect(b.url)
    await browser.wait_status("pending")

    a.send(signal.SIGKILL)
    await a.exited(10)
    request = await cluster.pending_request(authy_id)
    assert await cluster.decide(request["uuid"]) is None  # the callback went nowhere
    await browser.wait_status("approved")
    resp = await browser.complete(b.url)

    assert (await cluster.latest_challenge(username)).decided_by == "poll"
    assert resp.url.path != "/auth/2fa/wait", browser.last_html[:300]
    assert await cluster.count("login.succeeded") == 1
