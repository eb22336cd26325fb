"""Tests of push2fa.web: pages, forms, policies and the webhook endpoint."""
