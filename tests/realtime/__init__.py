"""Tests of push2fa.realtime.hub: socket access, rooms and delivery."""
