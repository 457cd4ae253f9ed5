"""Main journeys in a real browser: forecasts with reasons, a plan with its Gantt chart."""
from __future__ import annotations


def test_forecasts_page_shows_accuracy_and_calibration(app_url, page):
    page.goto(app_url + "/forecasts", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Forecasts").first.wait_for(timeout=60_000)
    page.get_by_text("P50 MAE (min)").first.wait_for(timeout=60_000)
    page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot").first.wait_for(timeout=60_000)
    assert page.get_by_text("P80 coverage").first.is_visible()


def test_schedule_page_plans_and_draws_rooms(app_url, page, tmp_path):
    page.goto(app_url + "/schedule", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Schedule").first.wait_for(timeout=60_000)
    page.get_by_text("Prime-time utilization").first.wait_for(timeout=120_000)
    gantt = page.locator("[data-testid='stPlotlyChart']").first
    gantt.locator("g.trace.bars").first.wait_for(timeout=60_000)
    assert gantt.locator("g.trace.bars").count() >= 1
    assert page.get_by_text("Why this room and time").first.is_visible()
    page.screenshot(path=str(tmp_path / "schedule.png"), full_page=True)
