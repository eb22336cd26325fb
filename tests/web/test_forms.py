"""Forms (push2fa/web/forms.py): text fields refuse control characters, and a form body
that is not UTF-8 is refused whole, with a page that says why."""

from __future__ import annotations

import pytest
from quart import Quart
from werkzeug.datastructures import MultiDict
from wtforms import Form, StringField

from push2fa.web.forms import NOT_UTF8_ERROR, no_control_characters
from tests.conftest import get_csrf
from tests.web.auth.rows import all_users


class _NameForm(Form):
    name = StringField(validators=[no_control_characters])


def _errors_for(text: str) -> list[str]:
    form = _NameForm(formdata=MultiDict({"name": text}))
    form.validate()
    return list(form.errors.get("name", []))


@pytest.mark.parametrize("text", ["nul \x00", "escape \x1b[31m", "delete \x7f", "\x1f"])
def test_control_characters_are_refused_with_a_plain_message(text: str):
    assert _errors_for(text) == ["Contains characters that are not allowed."]


@pytest.mark.parametrize("text", ["two\r\nlines", "tab\tseparated", "zoë ✓", " ", "~"])
def test_line_breaks_tabs_and_printable_text_are_accepted(text: str):
    assert _errors_for(text) == []


@pytest.mark.parametrize(
    "field",
    [b"username=al%FFice", b"username=alice\xff", b"username=al%C3ice", b"user%FFname=alice"],
    ids=["percent-escape", "raw-byte", "cut-sequence", "in-a-name"],
)
async def test_a_form_that_is_not_utf8_is_refused_with_a_page_that_says_so(
    app: Quart, client, field: bytes
):
    token = await get_csrf(client, "/auth/register")
    body = b"&".join(
        [
            b"csrf_token=" + token.encode(),
            field,
            b"email=alice%40example.com",
            b"password=abcdefghij",
            b"password2=abcdefghij",
        ]
    )

    response = await client.post(
        "/auth/register",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 400
    assert NOT_UTF8_ERROR in await response.get_data(as_text=True)
    assert await all_users(app) == []


async def test_a_utf8_form_with_plus_signs_and_escapes_is_taken(app: Quart, client):
    token = await get_csrf(client, "/auth/register")
    body = (
        f"csrf_token={token}&username=zoe&email=zoe%2Btag%40example.com"
        "&password=corr%C3%ABct+horse&password2=corr%C3%ABct+horse"
    ).encode()

    response = await client.post(
        "/auth/register",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code in {302, 303}, await response.get_data(as_text=True)
    assert [user.email for user in await all_users(app)] == ["zoe+tag@example.com"]
