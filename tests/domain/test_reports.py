"""The "this wasn't me" link: genuine, young enough, and one single-use id per link."""

from __future__ import annotations

import pytest

from push2fa.domain import reports
from tests.conftest import TEST_SECRET


def test_a_genuine_link_names_its_user():
    link = reports.read_token(TEST_SECRET, reports.make_token(TEST_SECRET, 7))
    assert link is not None and link.user_id == 7


def test_two_links_have_different_single_use_ids():
    first = reports.read_token(TEST_SECRET, reports.make_token(TEST_SECRET, 7))
    second = reports.read_token(TEST_SECRET, reports.make_token(TEST_SECRET, 7))
    assert first is not None and second is not None and first.token_id != second.token_id


@pytest.mark.parametrize("token", ["", "x", "a.b.c", "ab" * 300])
def test_garbage_is_no_link(token: str):
    assert reports.read_token(TEST_SECRET, token) is None


def test_a_link_signed_with_another_key_is_no_link():
    assert reports.read_token(TEST_SECRET, reports.make_token("another key " * 3, 7)) is None


def test_another_spelling_of_the_same_link_has_the_same_single_use_id():
    """base64 has several spellings of one signature: the single-use id must not depend on
    which one arrives, or a link could be used once per spelling."""
    token = reports.make_token(TEST_SECRET, 7)
    original = reports.read_token(TEST_SECRET, token)
    assert original is not None
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for char in alphabet:
        variant = token[:-1] + char
        if variant == token:
            continue
        link = reports.read_token(TEST_SECRET, variant)
        assert link is None or link.token_id == original.token_id
