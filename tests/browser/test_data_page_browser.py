"""The first real-browser journey: open the app and see the Data page's charts."""
from __future__ import annotations


def test_data_page_shows_chart_in_real_browser(app_url, page, tmp_path):
    page.goto(app_url, wait_until="domcontentloaded")
    # Wait for the page's own elements, not for network idle (a cold server renders late).
    page.get_by_role("heading", name="Data").first.wait_for(timeout=60_000)
    chart = page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot").first
    chart.wait_for(timeout=60_000)
    assert chart.is_visible()
    # The weekly-cases chart draws one bar trace per service line.
    traces = page.locator("[data-testid='stPlotlyChart']").first.locator("g.trace.bars")
    traces.first.wait_for(timeout=30_000)
    assert traces.count() >= 3
    assert page.get_by_text("Demo General Hospital").first.is_visible()
    page.screenshot(path=str(tmp_path / "data_page.png"), full_page=True)
