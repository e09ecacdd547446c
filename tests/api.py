"""Helpers for API tests: an authenticated client and the error shape."""

from rest_framework.test import APIClient

from incidents import services


def client_for(user, **kwargs) -> APIClient:
    """Return an API client authenticated with a new key of `user`."""
    _, plaintext = services.api_key_create(user=user, name="tests")
    client = APIClient(**kwargs)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


def errors(response) -> list[tuple]:
    """Return the (attr, code) pairs of an error response, checking its shape."""
    body = response.json()
    assert set(body) == {"type", "errors"}
    assert body["type"] in {"validation_error", "client_error"}
    for error in body["errors"]:
        assert set(error) == {"code", "detail", "attr"}
    return [(error["attr"], error["code"]) for error in body["errors"]]
