"""Trust first in a real browser (issue 14): the /data deep link works, and an impossible override
cannot be published (refused when entered; kept on purpose, the publication is withheld by the
hard-rules gate)."""
from __future__ import annotations

import pandas as pd
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from tests.browser.conftest import SERVER

pytestmark = pytest.mark.slow


def test_deep_link_to_data_page(app_url, page):
    page.goto(app_url + "/data", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Data").first.wait_for(timeout=60_000)
    page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot").first.wait_for(timeout=60_000)
    assert page.get_by_text("Page not found").count() == 0


def _idle(page):
    """Wait until the script run is over (Streamlit keeps stale elements on the page while it runs)."""
    page.wait_for_timeout(300)
    expect(page.locator("[data-testid='stStatusWidget']")).to_have_count(0, timeout=180_000)


def _tab(page, name: str):
    _idle(page)
    page.get_by_role("tab", name=name).last.click()


def _choose(page, label: str, option: str, scope=None):
    _idle(page)
    box = (scope or page).locator("[data-testid='stSelectbox']").filter(has_text=label).first
    for attempt in range(3):  # on a loaded machine a click can land while the page still reruns
        box.click()
        page.keyboard.type(option)
        try:
            page.get_by_role("option", name=option, exact=True).first.click(timeout=30_000)
            return
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")
            _idle(page)


def _latest_version_schedule():
    from engine.governance import Governance

    gov = Governance(SERVER["DATABASE_URL"])
    try:
        hid = SERVER["HOSPITAL_DIR"].rstrip("/").split("/")[-1]
        hist = gov.history(hid)
        vid = int(hist["version_id"].max())
        return vid, gov.version(vid).schedule
    finally:
        gov.close()


def _double_booking(schedule: pd.DataFrame):
    s = schedule[schedule["status"] == "scheduled"].copy()
    s["start"] = pd.to_datetime(s["start"])
    first = s.sort_values("start").groupby("room_id").head(1)
    a, b = first.iloc[0], first.iloc[1]
    return a["case_id"], b["room_id"], f"{b['start']:%H:%M}"


def test_impossible_override_cannot_be_published(app_url, page):
    page.goto(app_url + "/governance", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Governance").first.wait_for(timeout=60_000)
    # Coordinator (the demo sign-in's first role) proposes the optimizer's plan.
    page.get_by_role("button", name="Propose the optimizer's plan for the first day").last.click()
    expect(page.get_by_text("Proposal: done.")).to_be_visible(timeout=180_000)
    vid, schedule = _latest_version_schedule()
    case, room, start = _double_booking(schedule)

    _tab(page, "Overrides")
    form = page.locator("[data-testid='stForm']").filter(has_text="Record the override").last
    _choose(page, "Case", case, form)
    _choose(page, "Room (move)", room, form)
    start_box = form.get_by_label("Start HH:MM (move)")
    # 1. "25:99" is not a time: refused when entered.
    start_box.fill("25:99")
    form.get_by_role("button", name="Record the override").click()
    expect(page.get_by_text("Override refused").first).to_be_visible(timeout=60_000)
    # 2. A double booking: refused with the hard rule it breaks.
    _tab(page, "Overrides")
    form = page.locator("[data-testid='stForm']").filter(has_text="Record the override").last
    _choose(page, "Case", case, form)
    _choose(page, "Room (move)", room, form)
    form.get_by_label("Start HH:MM (move)").fill(start)
    form.get_by_role("button", name="Record the override").click()
    expect(page.get_by_text("hard rule", exact=False).first).to_be_visible(timeout=60_000)
    assert _latest_version_schedule()[0] == vid  # nothing saved
    # 3. Kept on purpose: a new version that says it cannot be published...
    _tab(page, "Overrides")
    form = page.locator("[data-testid='stForm']").filter(has_text="Record the override").last
    _choose(page, "Case", case, form)
    _choose(page, "Room (move)", room, form)
    form.get_by_label("Start HH:MM (move)").fill(start)
    form.get_by_text("keep it anyway").click()
    form.get_by_role("button", name="Record the override").click()
    expect(page.get_by_text("cannot be published until fixed").first).to_be_visible(timeout=60_000)
    bad = _latest_version_schedule()[0]
    assert bad > vid
    # ... and is not: leadership approves it, and publication is withheld by the hard-rules gate.
    _idle(page)
    _choose(page, "Role (demo sign-in)", "Perioperative leadership", page.locator("[data-testid='stSidebar']"))
    _tab(page, "Versions and publication")
    _idle(page)
    _choose(page, "Version", str(bad))
    _idle(page)
    page.get_by_role("button", name="Approve").last.click()
    expect(page.get_by_text("Approval: done.")).to_be_visible(timeout=60_000)
    _idle(page)
    page.get_by_role("button", name="Run the safety gates").last.click()
    expect(page.get_by_text("Safety gates, as last run on version").first).to_be_visible(timeout=120_000)
    _idle(page)
    page.get_by_role("button", name="Publish", exact=True).last.click()
    expect(page.get_by_text("Publication withheld").first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("hard_rules").first).to_be_visible(timeout=10_000)
    from engine.governance import Governance

    gov = Governance(SERVER["DATABASE_URL"])
    try:
        assert gov.version(bad).status != "published"
    finally:
        gov.close()
