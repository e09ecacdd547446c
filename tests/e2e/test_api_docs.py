"""The API documentation works in a browser on a closed network."""

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.django_db(transaction=True)


def test_api_docs_render_from_local_files_only(page, live_server):
    outside = []
    page.on(
        "request",
        lambda request: (
            outside.append(request.url) if not request.url.startswith(live_server.url) else None
        ),
    )
    # Ready when the page has fetched the schema (generated once per process, so fast);
    # then Swagger UI draws it.
    with page.expect_response(lambda response: "/api/schema/" in response.url) as schema:
        page.goto(f"{live_server.url}/api/docs/")
    assert schema.value.ok
    expect(page.locator(".opblock").first).to_be_visible()
    expect(page.get_by_text("/api/v1/incidents/{reference}/transition/")).to_be_visible()
    assert outside == []
