"""Every route states its access policy, and "login" routes really turn anonymous users away.

The walk runs on the app as tests build it and on the Quart app found inside the full ASGI
stack that Hypercorn serves (Socket.IO wrapper, emulator dispatcher, proxy middleware).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from quart import Quart
from quart_rate_limiter import (
    QUART_RATE_LIMITER_EXEMPT_ATTRIBUTE,
    QUART_RATE_LIMITER_LIMITS_ATTRIBUTE,
)
from werkzeug.routing import FloatConverter, IntegerConverter, Rule

from push2fa.web import csrf
from push2fa.web.app import create_app
from push2fa.web.forms import CSRF_ERROR
from push2fa.web.policy import policy_of, public
from push2fa.web.stack import build_asgi
from tests.conftest import get_csrf, login, register
from tests.snapshots import changed_tables, snapshot

POLICIES = {"public", "login"}
STACK_MODULES = {"push2fa", "socketio", "engineio", "hypercorn"}


def routes_without_policy(app: Quart) -> list[str]:
    offenders = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        if policy_of(view) not in POLICIES:
            offenders.append(f"{rule.rule} ({rule.endpoint}): {policy_of(view)!r}")
    return sorted(offenders)


def quart_apps_in(stack: Any) -> list[Quart]:
    """Every Quart app reachable through the wrapping layers of an ASGI stack.

    Layers are whatever objects of the ASGI libraries and of push2fa wrap each other
    (Socket.IO's ASGIApp, the emulator dispatcher, proxy middleware, ...), whatever the
    attribute they keep the inner app in.
    """
    found: list[Quart] = []
    seen: set[int] = set()
    pending: list[Any] = [stack]
    while pending:
        layer = pending.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if isinstance(layer, Quart):
            found.append(layer)
        elif isinstance(layer, dict):
            pending.extend(layer.values())
        elif isinstance(layer, list | tuple | set):
            pending.extend(layer)
        elif type(layer).__module__.split(".")[0] in STACK_MODULES:
            pending.extend(vars(layer).values() if hasattr(layer, "__dict__") else ())
    return found


def placeholder(rule: Rule, argument: str) -> object:
    """A value the argument's converter accepts, so the URL reaches the view's decorators."""
    converter = rule._converters[argument]
    return 1 if isinstance(converter, (IntegerConverter, FloatConverter)) else "placeholder"


def login_routes(app: Quart) -> list[tuple[str, str]]:
    """(method, concrete URL) for every login-required route, with placeholder arguments."""
    adapter = app.url_map.bind("localhost")
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or policy_of(app.view_functions[rule.endpoint]) != "login":
            continue
        url = adapter.build(rule.endpoint, {arg: placeholder(rule, arg) for arg in rule.arguments})
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, url))
    return found


def test_every_route_states_its_policy(app: Quart):
    assert routes_without_policy(app) == []


def test_the_walk_sees_the_routes_that_matter(app: Quart):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}

    assert {"auth.login", "auth.logout", "main.profile", "main.edit_profile", "ops.healthz"} <= (
        endpoints
    )
    assert policy_of(app.view_functions["main.profile"]) == "login"
    assert policy_of(app.view_functions["auth.login"]) == "public"


def test_a_route_without_policy_is_reported(overrides: dict[str, Any]):
    app = create_app(overrides)

    @app.get("/test-only/forgotten")
    async def forgotten() -> str:
        return "no policy stated"

    @app.get("/test-only/stated")
    @public
    async def stated() -> str:
        return "public"

    assert routes_without_policy(app) == ["/test-only/forgotten (forgotten): None"]


@pytest.mark.parametrize("trusted_proxies", [0, 1], ids=["direct", "behind-proxy"])
def test_every_route_of_the_served_asgi_stack_states_its_policy(
    overrides: dict[str, Any], trusted_proxies: int
):
    overrides["trusted_proxies"] = trusted_proxies
    stack = build_asgi(create_app(overrides))

    apps = [app for app in quart_apps_in(stack) if "push2fa" in app.extensions]

    assert len(apps) == 1, "the served stack should contain the push2fa app exactly once"
    assert len(apps[0].url_map._rules) > 5
    assert routes_without_policy(apps[0]) == []


async def test_login_routes_send_anonymous_visitors_to_the_login_page(app: Quart, client):
    routes = login_routes(app)
    assert ("GET", "/profile/edit") in routes

    for method, url in routes:
        response = await client.open(url, method=method)
        assert response.status_code == 302, (method, url, response.status_code)
        assert urlsplit(response.headers["Location"]).path == "/auth/login", (method, url)


def routes_without_rate_policy(app: Quart) -> list[str]:
    """Routes that state neither a rate limit nor an explicit exemption."""
    offenders = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        limited = getattr(view, QUART_RATE_LIMITER_LIMITS_ATTRIBUTE, None)
        exempt = getattr(view, QUART_RATE_LIMITER_EXEMPT_ATTRIBUTE, False)
        if not limited and not exempt:
            offenders.append(f"{rule.rule} ({rule.endpoint})")
    return sorted(offenders)


def test_every_route_states_a_rate_limit_or_an_exemption(app: Quart):
    assert routes_without_rate_policy(app) == []


def test_a_route_without_rate_limit_is_reported(overrides: dict[str, Any]):
    app = create_app(overrides)

    @app.get("/test-only/unlimited")
    @public
    async def unlimited() -> str:
        return "no limit stated"

    assert routes_without_rate_policy(app) == ["/test-only/unlimited (unlimited)"]


# --- CSRF: one hook for every state-changing route ------------------------------------------

# Reviewed exemptions: each has a reason on the route and something else that protects it.
CSRF_EXEMPT = {"webhooks.authy_callback"}


def state_changing_routes(app: Quart) -> list[tuple[str, str, str]]:
    """(endpoint, method, concrete URL) for every POST/PUT/PATCH/DELETE route."""
    adapter = app.url_map.bind("localhost")
    found: list[tuple[str, str, str]] = []
    for rule in app.url_map.iter_rules():
        methods = (rule.methods or set()) & csrf.STATE_CHANGING
        if rule.endpoint == "static" or not methods:
            continue
        url = adapter.build(rule.endpoint, {arg: placeholder(rule, arg) for arg in rule.arguments})
        found.extend((rule.endpoint, method, url) for method in sorted(methods))
    return sorted(found)


def csrf_exemptions(app: Quart) -> dict[str, str | None]:
    return {
        rule.endpoint: csrf.exemption_of(app.view_functions[rule.endpoint])
        for rule in app.url_map.iter_rules()
        if getattr(app.view_functions[rule.endpoint], csrf.EXEMPT_ATTR, None) is not None
    }


async def routes_without_csrf(app: Quart, client: Any) -> list[str]:
    """State-changing routes that accept a request without a CSRF token from `client`
    (logged in, so that no login redirect answers first) and are not exempt with a reason."""
    exempt = csrf_exemptions(app)
    offenders = []
    for endpoint, method, url in state_changing_routes(app):
        if endpoint in exempt and exempt[endpoint]:
            continue
        response = await client.open(url, method=method, form={"about_me": "x"})
        body = await response.get_data(as_text=True)
        if response.status_code != 400 or CSRF_ERROR not in body:
            offenders.append(f"{method} {url} ({endpoint}): {response.status_code}")
    return offenders


@pytest.fixture
async def alice_client(app: Quart) -> Any:
    client = app.test_client()
    await register(client, "alice")
    response = await login(client, "alice")
    assert response.status_code == 302
    return client


async def test_every_state_changing_route_checks_csrf(app: Quart, alice_client: Any):
    assert len(state_changing_routes(app)) > 10
    assert await routes_without_csrf(app, alice_client) == []


def test_csrf_exemptions_are_the_reviewed_ones_and_say_why(app: Quart):
    exemptions = csrf_exemptions(app)

    assert set(exemptions) == CSRF_EXEMPT
    assert all(reason and reason.strip() for reason in exemptions.values())


async def test_a_route_without_the_csrf_hook_is_reported(overrides: dict[str, Any]):
    app = create_app(overrides)
    app.before_request_funcs[None].remove(csrf.check_request)
    async with app.test_app():
        client = app.test_client()
        await register(client, "alice")
        await login(client, "alice")

        offenders = await routes_without_csrf(app, client)

    assert "POST /profile/edit (main.edit_profile): 302" in offenders


def test_an_exemption_without_a_reason_is_refused():
    with pytest.raises(ValueError, match="reason"):
        csrf.csrf_exempt(" ")


def test_a_new_exemption_is_reported(overrides: dict[str, Any]):
    app = create_app(overrides)

    @app.post("/test-only/unchecked")
    @public
    @csrf.csrf_exempt("a test route")
    async def unchecked() -> str:
        return "changed"

    assert set(csrf_exemptions(app)) - CSRF_EXEMPT == {"unchecked"}


@pytest.mark.parametrize("token", ["missing", "forged", "another session's"])
async def test_posting_every_form_without_this_sessions_token_is_refused_and_changes_nothing(
    app: Quart, alice_client: Any, token: str
):
    """The attack: a page on another site makes alice's browser post to every form, with
    no token, a made-up one, or a real token of the attacker's own session."""
    attacker = app.test_client()
    await register(attacker, "mallory")
    await login(attacker, "mallory")
    tokens = {
        "missing": None,
        "forged": "IjAxMjM0NTY3ODkwMTIzNDU2Nzg5MDEyMzQ1Njc4OSI.forged",
        "another session's": await get_csrf(attacker, "/profile/edit"),
    }
    engine = app.extensions["push2fa"].db.engine
    before = await snapshot(engine, skip=frozenset({"users.last_seen"}))

    refused = []
    for endpoint, method, url in state_changing_routes(app):
        if endpoint in CSRF_EXEMPT:
            continue
        form = {"about_me": "pwned", "password": "x" * 12, "action": "push", "code": "123456"}
        csrf_token = tokens[token]
        if csrf_token is not None:
            form["csrf_token"] = csrf_token
        response = await alice_client.open(url, method=method, form=form)
        refused.append((endpoint, method, response.status_code))

    assert all(status == 400 for _, _, status in refused), refused
    after = await snapshot(engine, skip=frozenset({"users.last_seen"}))
    assert changed_tables(before, after) == []
    assert "Hello, alice!" in await (await alice_client.get("/")).get_data(as_text=True)


async def test_a_blank_exemption_set_by_hand_exempts_nothing(overrides: dict[str, Any]):
    """Only `csrf_exempt(reason)` exempts a route; an exemption attribute set around it
    with no reason leaves the route checked."""
    app = create_app(overrides)

    @app.post("/test-only/blank-exemption")
    @public
    async def blank() -> str:
        return "changed"

    setattr(blank, csrf.EXEMPT_ATTR, "  ")
    async with app.test_app():
        response = await app.test_client().post("/test-only/blank-exemption", form={})

    assert response.status_code == 400
    assert CSRF_ERROR in await response.get_data(as_text=True)
