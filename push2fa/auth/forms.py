"""Forms of the account pages. Field rules live here; uniqueness is checked in the views."""

from __future__ import annotations

import re

from wtforms import BooleanField, EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Regexp, ValidationError

from push2fa.forms import Form
from push2fa.passwords import password_problem

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _new_password(form: Form, field: PasswordField) -> None:
    problem = password_problem(field.data or "")
    if problem:
        raise ValidationError(problem)


def _no_control_characters(form: Form, field: StringField) -> None:
    if field.data and any(ord(ch) < 0x20 and ch not in "\r\n\t" for ch in field.data):
        raise ValidationError("Contains characters that are not allowed.")


class RegisterForm(Form):
    username = StringField(
        "Username",
        validators=[
            DataRequired(),
            Length(min=3, max=32),
            Regexp(USERNAME_RE, message="Use letters, digits, dots, dashes and underscores."),
        ],
    )
    email = EmailField(
        "Email", validators=[DataRequired(), Length(max=254), Email(check_deliverability=False)]
    )
    password = PasswordField("Password", validators=[DataRequired(), _new_password])
    password2 = PasswordField(
        "Repeat password",
        validators=[DataRequired(), EqualTo("password", message="Passwords must match.")],
    )


class LoginForm(Form):
    login = StringField(
        "Username or email", validators=[DataRequired(), Length(max=254), _no_control_characters]
    )
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    remember = BooleanField("Remember me")
    next = HiddenField()


class ResetRequestForm(Form):
    email = EmailField(
        "Email", validators=[DataRequired(), Length(max=254), Email(check_deliverability=False)]
    )


class ResetPasswordForm(Form):
    password = PasswordField("New password", validators=[DataRequired(), _new_password])
    password2 = PasswordField(
        "Repeat password",
        validators=[DataRequired(), EqualTo("password", message="Passwords must match.")],
    )
