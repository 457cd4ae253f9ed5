"""What-if latency on the default demo hospital (a script, not a test).

Run: .venv/bin/python bench/bench_whatif.py [--moves 20] [--solver highs|rules] [--mode browser|apptest]

Generates the demo hospital and trains its model, then:
- ``browser`` (default): starts the dashboard (streamlit run), opens the What-if page in Debian's
  chromium through Playwright, waits for the baseline, then moves one slider one step with the
  keyboard at a time (cycling through the six sliders, so every setting is new: no cache hit)
  and times, from the key press, (a) the first answer: the KPI caption changes to this
  setting's first or final answer; (b) the final answer: the caption says "Final answer".
  With HiGHS the first answer is the optimizer's schedule after engine.whatif.FIRST_ANSWER_S
  seconds, then refined (engine.whatif.whatif_answers); sliders the model does not see (PACU
  beds, cancellation rate) reuse the plan and only re-simulate; the add-on slider also scales the
  add-on reserve the plan holds open rooms for, so it re-plans.
- ``apptest``: the same moves through Streamlit's AppTest; a rerun returns once the fragment
  has finished, so this times the final answer without the browser.
Prints median and P95 (nearest rank) of each.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# (slider index on the page, key of the slider, key to press): cycling makes every setting new.
SLIDERS = [(0, "wi_rooms", "ArrowLeft"), (3, "wi_addons", "ArrowRight"), (2, "wi_beds", "ArrowLeft"),
           (4, "wi_inflation", "ArrowRight"), (5, "wi_cancel", "ArrowRight"), (1, "wi_teams", "ArrowLeft")]
CAPTION_JS = """() => Array.from(document.querySelectorAll('[data-testid="stCaptionContainer"]'))
    .map(e => e.innerText).filter(t => t.includes('answer')).join(' | ')"""
DEFERRED_JS = """() => Array.from(document.querySelectorAll('[data-testid="stMetric"]'))
    .filter(e => e.innerText.includes('Deferred cases'))
    .map(e => e.querySelector('[data-testid="stMetricValue"]').innerText).join('')"""


def p95(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[max(0, int(round(0.95 * len(xs))) - 1)]


def summary(name: str, xs: list[float]) -> str:
    return (f"{name}: median {statistics.median(xs):.2f} s, P95 {p95(xs):.2f} s, "
            f"min {min(xs):.2f} s, max {max(xs):.2f} s (n={len(xs)})")


def prepare() -> dict[str, str]:
    from engine.forecast import Registry, train_and_register
    from engine.generator import GeneratorParams, write_hospital
    from engine.hospital import load_hospital

    tmp = Path(tempfile.mkdtemp())
    folder = tmp / "demo"
    write_hospital(folder, GeneratorParams())
    train_and_register(load_hospital(folder).hospital, "demo", registry=Registry(tmp / "models"))
    return {"HOSPITAL_DIR": str(folder), "DATABASE_URL": f"sqlite:///{tmp / 'store.sqlite'}",
            "MODELS_DIR": str(tmp / "models"), "IMPORT_DIR": str(tmp / "imports")}


def run_browser(env: dict[str, str], moves: int, solver: str) -> None:
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true"],
                            cwd=REPO, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                        args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url + "/whatif", wait_until="domcontentloaded")
            page.locator("[data-testid='stMetric']").first.wait_for(timeout=600_000)
            if solver != "highs":
                page.get_by_text("highs", exact=True).first.click()
                page.get_by_role("option", name=solver).click()
            page.wait_for_function(f"({CAPTION_JS})().includes('Final answer')", timeout=600_000)
            first, final, same = [], [], 0
            for i in range(moves):
                idx, _, key = SLIDERS[i % len(SLIDERS)]
                before = page.evaluate(CAPTION_JS)
                slider = page.get_by_role("slider").nth(idx)
                slider.focus()
                t0 = time.perf_counter()
                page.keyboard.press(key)
                t_first = None
                while True:
                    text = page.evaluate(CAPTION_JS)
                    now = time.perf_counter() - t0
                    if text != before and t_first is None and "answer" in text:
                        t_first, deferred_first = now, page.evaluate(DEFERRED_JS)
                    if t_first is not None and "Final answer" in text and text != before:
                        break
                    if now > 120:
                        raise RuntimeError(f"no answer after 120 s for move {i}")
                    time.sleep(0.01)
                first.append(t_first)
                final.append(now)
                deferred_final = page.evaluate(DEFERRED_JS)
                same += deferred_first == deferred_final
                print(f"  move {i + 1:2d} {SLIDERS[i % len(SLIDERS)][1]:13s} first {t_first:.2f} s, final {now:.2f} s; "
                      f"deferred cases first {deferred_first}, final {deferred_final}", flush=True)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    print(f"solver {solver}, real browser (chromium), {moves} slider moves on the demo hospital (16 rooms, one day):")
    print("  " + summary("first answer", first))
    print("  " + summary("final answer", final))
    print(f"  the first answer showed the final answer's deferred-case count in {same} of {moves} moves")
    print("  (each move re-plans the day -- or reuses the plan when the model does not see the slider -- and "
          "simulates it 200 times; timed from the key press to the KPI caption's change)")


def run_apptest(env: dict[str, str], moves: int, solver: str) -> None:
    os.environ.update(env)
    os.chdir(REPO)
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=600)
    at.run()
    at.switch_page("../pages/whatif.py").run()
    at.selectbox(key="wi_solver").set_value(solver).run()
    values = {key: at.slider(key=key).value for _, key, _ in SLIDERS}
    steps = {"wi_rooms": -1, "wi_teams": -1, "wi_beds": -1, "wi_addons": 0.1, "wi_inflation": 0.05, "wi_cancel": 0.25}
    times = []
    for i in range(moves):
        _, key, _ = SLIDERS[i % len(SLIDERS)]
        values[key] = round(values[key] + steps[key], 2)
        t0 = time.perf_counter()
        at.slider(key=key).set_value(values[key]).run()
        times.append(time.perf_counter() - t0)
        assert not at.exception, at.exception
    print(f"solver {solver}, AppTest, {moves} slider moves on the demo hospital (16 rooms, one day):")
    print("  " + summary("final answer (whole fragment rerun)", times))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--moves", type=int, default=20)
    ap.add_argument("--solver", default="highs", choices=["highs", "rules"])
    ap.add_argument("--mode", default="browser", choices=["browser", "apptest"])
    args = ap.parse_args()
    env = prepare()
    (run_browser if args.mode == "browser" else run_apptest)(env, args.moves, args.solver)


if __name__ == "__main__":
    main()
