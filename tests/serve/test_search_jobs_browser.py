"""The search and jobs tabs in Chromium: queries with answers computed here with pandas
from labels.parquet, an export of a selection watched to its end, a cancelled job, and an
upload of a video and state log that becomes a session."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from capture import Session

pytestmark = pytest.mark.timeout(300)


def _labels(root: Path):
    return pq.read_table(root / "demo" / "labels.parquet").to_pandas()


def _cards(page) -> list[tuple[str, int]]:
    return [(c.get_attribute("data-session"), int(c.get_attribute("data-frame")))
            for c in page.query_selector_all("#search figure.hit")]


def _search_tab(page) -> None:
    page.goto(page.url.split("#")[0] + "#search")
    page.wait_for_selector("#search .condition select.field")


def test_state_query_with_a_known_answer(page, demo_sessions: Path) -> None:
    df = _labels(demo_sessions)
    threshold = float(df["speed"].median())
    want = [("demo", int(f)) for f in df[(df["speed"] > threshold) & df["grounded"]]
            ["frame_index"].sort_values()]
    assert 0 < len(want) < len(df)
    _search_tab(page)
    rows = page.locator("#search .condition")
    rows.nth(0).locator("select.field").select_option("speed")
    rows.nth(0).locator("select.op").select_option(">")
    rows.nth(0).locator("input.value").fill(repr(threshold))
    page.click("#search button.add")
    rows.nth(1).locator("select.field").select_option("grounded")
    rows.nth(1).locator("select.op").select_option("=")
    rows.nth(1).locator("input.value").fill("true")
    page.click("#search form.state-query button[type=submit]")
    page.wait_for_selector(f"#search[data-total='{len(want)}']")
    assert _cards(page) == want
    first = page.locator("#search figure.hit img").first
    page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                           arg=first.element_handle())
    assert page.evaluate("img => img.naturalWidth", first.element_handle()) == 320
    frame = want[-1][1]
    page.click(f"#search figure.hit[data-frame='{frame}'] a")
    page.wait_for_selector(f"#player[data-frame='{frame}']", timeout=30_000)
    assert page.url.endswith(f"#player/demo?frame={frame}")


def test_caption_query_with_a_known_answer(page, demo_sessions: Path) -> None:
    df = _labels(demo_sessions)
    word = df["caption"].iloc[len(df) // 2].split(",")[0].split(";")[0][:18]
    want = [("demo", int(f)) for f in
            df[df["caption"].str.lower().str.contains(word.lower(), regex=False)]
            ["frame_index"].sort_values()]
    assert want
    _search_tab(page)
    page.fill("#search input.caption-text", word.upper())
    page.click("#search form.caption-query button[type=submit]")
    page.wait_for_selector(f"#search[data-total='{len(want)}']")
    assert _cards(page) == want
    texts = page.locator("#search figure.hit p.caption").all_inner_texts()
    assert all(word.lower() in t.lower() for t in texts)


def test_export_a_selection_and_watch_it_finish(page, demo_sessions: Path) -> None:
    _search_tab(page)
    page.locator("#search .condition select.field").select_option("frame_index")
    page.locator("#search .condition select.op").select_option("between")
    page.locator("#search .condition input.value").fill("3, 9")
    page.click("#search form.state-query button[type=submit]")
    page.wait_for_selector("#search[data-total='7']")
    for frame in (3, 4, 5, 8):
        page.check(f"#search figure.hit[data-frame='{frame}'] input[type=checkbox]")
    page.select_option("#search select.format", "parquet")
    page.click("#search button.export")
    page.wait_for_selector("#jobs table.jobs tr[data-state='done']", timeout=240_000)
    row = page.locator("#jobs table.jobs tr[data-state='done']")
    assert "export demo as parquet" in row.locator(".title").inner_text()
    out = Path(row.locator(".output").inner_text().removeprefix("→ ").strip())
    table = pq.read_table(sorted(out.glob("data/*.parquet")))
    assert table["frame_index"].to_pylist() == [3, 4, 5, 8]
    progress = row.locator(".progress").inner_text()
    assert progress.strip().endswith("4/4")


def test_cancel_a_queued_job(page, demo_sessions: Path) -> None:
    page.goto(page.url.split("#")[0] + "#jobs")
    page.wait_for_selector("#jobs[data-live='true']")
    page.select_option("#jobs select.kind", "labels")
    page.select_option("#jobs select.sessions", ["demo"])
    page.click("#jobs form.start-job button[type=submit]")
    page.click("#jobs form.start-job button[type=submit]")
    page.wait_for_function(
        "() => document.querySelectorAll('#jobs table.jobs tbody tr').length == 2")
    second = page.locator("#jobs table.jobs tbody tr").first  # newest first
    second.locator("button.cancel").click()
    page.wait_for_selector("#jobs table.jobs tbody tr[data-state='cancelled']")
    page.wait_for_selector("#jobs table.jobs tbody tr[data-state='done']", timeout=120_000)
    page.reload()
    page.wait_for_selector("#jobs[data-live='true']")
    states = sorted(page.locator("#jobs table.jobs tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.state)"))
    assert states == ["cancelled", "done"]  # both kept across the reload


def test_upload_a_video_and_state_log(page, demo_sessions: Path) -> None:
    demo = demo_sessions / "demo"
    page.goto(page.url.split("#")[0] + "#jobs")
    page.wait_for_selector("#jobs[data-live='true']")
    page.fill("#jobs input.import-name", "uploaded")
    page.set_input_files("#jobs input.state-file", str(demo / "state.jsonl"))
    page.set_input_files("#jobs input.video-file", str(demo / "video.mkv"))
    page.fill("#jobs input.offset", "0")
    page.click("#jobs form.import button[type=submit]")
    page.wait_for_selector("#jobs table.jobs tr[data-state='done']", timeout=240_000)
    assert "import uploaded" in page.locator("#jobs tr[data-state='done'] .title").inner_text()
    made = Session.open(demo_sessions / "uploaded")
    assert pq.read_metadata(made.path / "aligned.parquet").num_rows == \
        len(Session.open(demo).read_frames())
    base = page.url.split("#")[0]
    page.goto(base + "#sessions")
    page.wait_for_selector("#sessions tr[data-session='uploaded']")
    page.goto(base + "#jobs")
    page.wait_for_selector("#jobs select.sessions option[value='uploaded']", state="attached")
    page.fill("#jobs input.import-name", "uploaded")
    page.click("#jobs form.import button[type=submit]")
    page.wait_for_function("() => document.querySelector('#jobs p.info').textContent"
                           ".includes('already exists')")


def test_cancel_a_running_job(page, demo_sessions: Path) -> None:
    """The child process needs over a second to start Python and import the export stack
    before it can finish; the click comes as soon as the row says "running"."""
    page.goto(page.url.split("#")[0] + "#jobs")
    page.wait_for_selector("#jobs[data-live='true']")
    page.select_option("#jobs select.kind", "export")
    page.select_option("#jobs select.sessions", ["demo"])
    page.select_option("#jobs form.start-job select.format", "lerobot")
    page.click("#jobs form.start-job button[type=submit]")
    page.click("#jobs table.jobs tr[data-state='running'] button.cancel")
    page.wait_for_selector("#jobs table.jobs tr[data-state='cancelled']", timeout=60_000)
    exports = demo_sessions / ".stpe-serve" / "exports"
    assert not exports.exists() or not any(exports.iterdir())  # the partial dataset went
