"""Finding an account by what a person types: the whole username or e-mail, whatever the
case or surrounding spaces, and never another account by a prefix or a pattern."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from push2fa.domain.users import find_by_login
from push2fa.models import User
from push2fa.services import Services


@pytest.fixture
async def svc(app) -> Services:
    services: Services = app.extensions["push2fa"]
    async with services.db.session() as db:
        db.add_all(
            [
                User(username="Alice", email="Alice@Example.com", password_hash="x"),
                User(username="alicia", email="alicia@example.org", password_hash="x"),
                User(username="bob_1", email="bob@example.com", password_hash="x"),
            ]
        )
        await db.commit()
    return services


async def found(svc: Services, typed: str) -> str | None:
    async with svc.db.session() as db:
        user = await find_by_login(db, typed)
        return None if user is None else user.username


@pytest.mark.parametrize("typed", ["Alice", "alice", "ALICE", "  alice\t", "aLiCe"])
async def test_a_username_is_found_whatever_its_case_and_spaces(svc, typed):
    assert await found(svc, typed) == "Alice"


@pytest.mark.parametrize("typed", ["alice@example.com", "ALICE@EXAMPLE.COM", " Alice@Example.com "])
async def test_an_email_is_found_whatever_its_case_and_spaces(svc, typed):
    assert await found(svc, typed) == "Alice"


@pytest.mark.parametrize(
    "typed",
    ["", "   ", "ali", "alic", "alicex", "%", "ali%", "alic_", "bob_", "bob%", "_ob_1", "*"],
)
async def test_a_prefix_or_pattern_finds_no_account(svc, typed):
    assert await found(svc, typed) is None


@pytest.mark.parametrize("typed", ["alice@", "@example.com", "%@example.com", "alice@example"])
async def test_a_partial_email_finds_no_account(svc, typed):
    assert await found(svc, typed) is None


async def test_an_email_shaped_login_is_never_matched_against_usernames(app):
    svc: Services = app.extensions["push2fa"]
    async with svc.db.session() as db:
        # Registration refuses an "@" in a username; a row made before that rule must still
        # not be reachable through the e-mail lookup of another person's address.
        db.add(User(username="carol@example.com", email="dave@example.com", password_hash="x"))
        await db.commit()
    assert await found(svc, "carol@example.com") is None
    assert await found(svc, "dave@example.com") == "carol@example.com"


async def test_a_username_is_never_matched_against_emails(svc):
    async with svc.db.session() as db:
        db.add(User(username="erin", email="frank", password_hash="x"))
        await db.commit()
    assert await found(svc, "frank") is None
    assert await found(svc, "erin") == "erin"


async def test_a_non_ascii_name_is_found_as_typed(svc):
    async with svc.db.session() as db:
        db.add(User(username="Émile", email="émile@exämple.com", password_hash="x"))
        await db.commit()
    assert await found(svc, " Émile ") == "Émile"
    assert await found(svc, "émile@exämple.com") == "Émile"


@pytest.mark.parametrize(
    ("username", "email"), [("ALICE", "new@example.com"), ("new", "ALICE@EXAMPLE.COM")]
)
async def test_no_second_account_can_take_a_login_in_another_case(svc, username, email):
    """The lookup's lower() is the unique index's: one typed login names one account."""
    async with svc.db.session() as db:
        db.add(User(username=username, email=email, password_hash="x"))
        with pytest.raises(IntegrityError):
            await db.commit()
    assert await found(svc, username if username != "new" else email) == "Alice"
