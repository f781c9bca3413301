"""Accounts in a real Chromium (``ML4PALEO_AUTH=accounts``): the sign-in page, a change made from
a page (its CSRF token sent by the page's own script), the account page's API tokens, sign-out.

The other browser tests run with accounts off, as a one-person install does.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from test_pages import CHROMIUM, assert_no_console_errors, shot

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))  # the API tests' real-server helper
from apiserver import start_server, stop_server  # noqa: E402

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (make test installs it)"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> str:
    srv = start_server(tmp_path_factory.mktemp("accounts-e2e"), runners="none", env={"ML4PALEO_AUTH": "accounts"})
    try:
        for name in ("ada", "bea"):
            added = subprocess.run([sys.executable, "-m", "ml4paleo.cli", "user", "add", name, "--data", str(srv.data)],
                                   input=f"{name}-password\n", capture_output=True, text=True, env=srv.env, timeout=60)
            assert added.returncode == 0, added.stderr
        yield srv.url
    finally:
        stop_server(srv)


def test_sign_in_change_and_share_a_job_make_a_token_and_sign_out(page, browser, server):
    page.goto("/")
    page.wait_for_url(re.compile(r"/login\?next=/$"))
    page.fill("#login-name", "ada")
    page.fill("#login-password", "not her password")
    page.click("#login-submit")
    assert "Wrong user name or password" in page.locator("#login-message").inner_text()
    # the 401 of the wrong password is reported in the console by the browser: expected, that one
    page.errors[:] = [e for e in page.errors if not ("/login" in e and "401" in e)]
    page.fill("#login-password", "ada-password")
    page.click("#login-submit")
    page.wait_for_url(re.compile(r"/$"))
    assert page.locator("#account-link").inner_text() == "ada"
    shot(page, "30-accounts-signed-in")

    # a change from a page carries the page's CSRF token; the same request without it is refused
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert page.request.post("/api/job/new", data={"name": "forged"}).status == 403
    job_id = page.request.post("/api/job/new", data={"name": "ada's fossil"},
                               headers={"X-CSRF-Token": csrf}).json()["job_id"]
    page.reload()
    row = page.locator(f"#jobs tr[data-job-id='{job_id}']")
    row.locator("button.rename").click()
    row.locator("input").fill("ada's ammonite")
    row.locator("input").press("Enter")
    page.locator(f"#jobs tr[data-job-id='{job_id}'] a", has_text="ada's ammonite").wait_for()

    # share it read-only with bea, and by a link with a reviewer, who loses it when it is revoked
    page.goto(f"/job/{job_id}")
    page.fill("#share-user", "bea")
    page.get_by_role("button", name="Share", exact=True).click()
    page.locator("#share-users li", has_text="bea").wait_for()
    page.get_by_role("button", name="Make a link").click()
    link = page.locator("#link-url")
    link.wait_for()
    reviewer = browser.new_context(base_url=server)
    review = reviewer.new_page()
    review.goto(link.inner_text())
    review.wait_for_url(re.compile(rf"/job/{job_id}$"))
    review.locator("#job-title", has_text="ada's ammonite").wait_for()
    page.locator("#share-links li").get_by_role("button", name="Revoke").click()
    page.locator("#share-links li").wait_for(state="detached")
    assert review.request.get(f"/api/job/{job_id}/status").status == 401
    reviewer.close()
    shot(page, "32-accounts-sharing")

    page.click("#account-link")
    page.wait_for_url(re.compile(r"/account$"))
    page.fill("#token-name", "batch script")
    page.get_by_role("button", name="Make a token").click()
    page.locator("#token-new").wait_for()
    secret = page.locator("#token-secret").inner_text()
    assert secret.startswith("m4p_")
    assert page.request.get("/api/jobs", headers={"Authorization": f"Bearer {secret}"}).ok
    page.locator("#tokens tbody tr", has_text="batch script").get_by_role("button", name="Revoke").click()
    page.locator("#tokens tbody tr", has_text="batch script").wait_for(state="detached")
    shot(page, "31-accounts-tokens")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login$"))
    assert page.request.get("/api/jobs").status == 401
    assert_no_console_errors(page)
