"""Tests of the user's own security pages."""
