"""The names the browser and the server share: events, and the rooms they go to.

Only the server puts a socket in a room (push2fa.realtime.access decides which).
"""

from __future__ import annotations

CHALLENGE_EVENT = "challenge"
ENROLLMENT_EVENT = "enrollment"


def challenge_room(public_id: str) -> str:
    return f"challenge:{public_id}"


def user_room(user_id: int) -> str:
    return f"user:{user_id}"
