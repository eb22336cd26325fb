"""Forms of the account pages. Field rules live here; uniqueness is checked in the views."""

from __future__ import annotations

import re

from wtforms import BooleanField, EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Regexp, ValidationError

from push2fa.domain.passwords import password_problem
from push2fa.web.forms import Form, no_control_characters

USERNAME_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]*\Z")


def new_password(form: Form, field: PasswordField) -> None:
    problem = password_problem(field.data or "")
    if problem:
        raise ValidationError(problem)


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
    password = PasswordField("Password", validators=[DataRequired(), new_password])
    password2 = PasswordField(
        "Repeat password",
        validators=[DataRequired(), EqualTo("password", message="Passwords must match.")],
    )


class LoginForm(Form):
    login = StringField(
        "Username or email", validators=[DataRequired(), Length(max=254), no_control_characters]
    )
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    remember = BooleanField("Remember me")
    next = HiddenField()


class ResetRequestForm(Form):
    email = EmailField(
        "Email", validators=[DataRequired(), Length(max=254), Email(check_deliverability=False)]
    )


class ResetPasswordForm(Form):
    password = PasswordField("New password", validators=[DataRequired(), new_password])
    password2 = PasswordField(
        "Repeat password",
        validators=[DataRequired(), EqualTo("password", message="Passwords must match.")],
    )


class ChangePasswordForm(Form):
    current = PasswordField("Current password", validators=[DataRequired(), Length(max=1024)])
    password = PasswordField("New password", validators=[DataRequired(), new_password])
    password2 = PasswordField(
        "Repeat new password",
        validators=[DataRequired(), EqualTo("password", message="Passwords must match.")],
    )
