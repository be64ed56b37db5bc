"""The benchmark reports: escaped transcripts, and the HTML page checked in a real headless browser."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from dialogym.benchmarks.report import leaderboard_table, summarise, write_report, write_tables
from dialogym.benchmarks.runner import BenchConfig
from dialogym.envs import Episode, Turn

REF = "dialogym/Reference-v0"
ATTACK = '<script>document.title = "pwned"; console.error("injected")</script><b>bold?</b>'


def reference_episode(n: int, speaker: str, listener: str, *, success: bool, clue: str = "CLUE: red circle") -> Episode:
    reward = 1.0 if success else 0.0
    return Episode(
        id=f"ep{n}",
        game=REF,
        instance_id=f"inst{n % 2}",
        instance_version="v0",
        instance={},
        level="easy",
        seed=n % 2,
        seats={"speaker": speaker, "listener": listener},
        turns=[
            Turn(index=0, seat="speaker", messages=[{"role": "user", "content": "Describe the <target>."}], raw=clue,
                 move={"text": clue}),
            Turn(index=1, seat="listener", messages=[{"role": "user", "content": "Pick one."}], raw="maybe 2?",
                 error='no line starts with "ANSWER:"'),
            Turn(index=2, seat="listener", messages=[{"role": "user", "content": "Invalid move: ..."}], raw="ANSWER: 2",
                 move={"number": 2}),
        ],
        rewards={"speaker": reward, "listener": reward},
        metrics={"success": reward},
        tags={"bench": "t", "mode": "crossplay", "pairing": f"{speaker} vs {listener}"},
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    episodes = [
        reference_episode(0, "scripted", "tiny", success=True, clue=ATTACK),
        reference_episode(1, "tiny", "scripted", success=False),
        reference_episode(2, "scripted", "tiny", success=True),
        reference_episode(3, "tiny", "scripted", success=True),
    ]
    # scripted beats tiny once: an aborted episode where tiny's invalid moves end the game
    aborted = reference_episode(4, "scripted", "tiny", success=False)
    aborted = aborted.model_copy(
        update={"status": "aborted", "aborted_by": "listener", "abort_reason": "listener: invalid move after 2 re-prompts",
                "rewards": {"speaker": 0.0, "listener": -1.0}, "metrics": {}}
    )
    episodes.append(aborted)
    config = BenchConfig(name="t", games=[REF], models=["scripted", "tiny"], mode="crossplay", episodes=2)
    out = tmp_path_factory.mktemp("bench")
    summary = summarise(config, episodes, samples=100)
    write_tables(summary, out)
    return write_report(summary, episodes, out / "report")


def test_model_text_is_escaped_never_rendered_as_html(report):
    html = report.read_text()
    assert "&lt;script&gt;document.title" in html
    assert "<script>" not in html
    assert "&lt;b&gt;bold?&lt;/b&gt;" in html
    assert "Describe the &lt;target&gt;." in html


def test_transcripts_mark_game_master_moves_parse_errors_and_scores(report):
    html = report.read_text()
    for css_class in ('class="gm"', 'class="move"', 'class="parse-error"', 'class="score"', 'class="abort"', "turn invalid"):
        assert css_class in html
    assert html.count('<details class="episode') == 5


def test_the_report_says_how_many_episodes_each_number_rests_on(report):
    html = report.read_text()
    assert "n=5" in html  # % played of each model rests on its 5 episodes
    assert "n=4" in html  # quality rests on the 4 played ones


def test_the_report_has_score_rating_and_payoff_table_plots(report):
    assert {p.name for p in report.parent.glob("*.png")} == {"scores.png", "ratings.png", "payoff.png"}


def test_leaderboard_ranks_by_overall_and_shows_ratings(report):
    config = BenchConfig(name="t", games=[REF], models=["scripted", "tiny"], mode="crossplay")
    episodes = [reference_episode(0, "scripted", "tiny", success=True)]
    table = leaderboard_table(summarise(config, episodes, samples=10))
    headers = [str(c.header) for c in table.columns]
    assert headers[:4] == ["#", "model", "moves", "overall"]
    assert "rating (BT, Elo scale)" in headers and "OpenSkill mu" in headers
    assert "Laplace" in str(table.caption)


def test_summary_json_has_both_ratings_and_win_rates_with_bootstrap_intervals(report):
    summary = json.loads((report.parent.parent / "summary.json").read_text())
    assert set(summary["openskill"]["all"]) == set(summary["ratings"]["all"]) == {"scripted", "tiny"}
    # scripted won the aborted episode; the other four completed episodes share the reward (ties)
    rate = summary["win_rates"]["all"]["scripted"]["tiny"]
    assert rate["n"] == 5 and rate["value"] == pytest.approx(0.6)
    assert rate["lo"] == pytest.approx(0.5) and 0.6 < rate["hi"] <= 1.0  # 0.5: a resample without the win
    html = report.read_text()
    assert 'class="win-rates"' in html and "OpenSkill &mu;" in html


def test_summary_json_and_the_leaderboards_say_how_each_model_moves(report):
    summary = json.loads((report.parent.parent / "summary.json").read_text())
    assert summary["moves"] == {"scripted": "scripted", "tiny": "free"}
    html = report.read_text()
    assert "<th>moves</th>" in html and '<td class="name moves">free</td>' in html
    config = BenchConfig(name="t", games=[REF], models=["tiny", "tiny+guided"], mode="crossplay")
    table = leaderboard_table(summarise(config, [reference_episode(0, "tiny", "tiny+guided", success=True)], samples=10))
    moves = next(c for c in table.columns if str(c.header) == "moves")
    assert sorted(moves.cells) == ["free", "guided"]


def test_rating_axis_names_the_interval_it_draws():
    from dialogym.benchmarks.report import BT_AXIS, OPENSKILL_AXIS

    assert "Laplace" in BT_AXIS and "bootstrap" not in BT_AXIS  # fit_ratings' intervals are Laplace
    assert "1.96σ" in OPENSKILL_AXIS


def test_each_game_says_what_its_quality_means_in_self_play_and_cross_play(report, tmp_path):
    assert "quality = mean over the model&#39;s seats" in report.read_text()  # the cross-play fixture
    config = BenchConfig(name="s", games=[REF], models=["scripted"], mode="selfplay")
    episodes = [reference_episode(0, "scripted", "scripted", success=True)]
    html = write_report(summarise(config, episodes, samples=10), episodes, tmp_path).read_text()
    assert "self-play quality = 100 × success: the listener picked the target" in html


#: Characters an HTML report must never hold raw: C0 controls but tab and newline, DEL, the
#: bidi embeddings, overrides and isolates (``cat index.html`` would run escape sequences, and
#: RLO would reorder what a reader sees).
RAW_CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
#: Terminal escapes (window title, clear screen, cursor home), bell, NUL, backspace, CR and
#: the other C0 controls, DEL, a C1 CSI, every bidi override and isolate.
HOSTILE = (
    "\x1b]0;PWNED\x07\x1b[2J\x1b[H red\u202ecircle \x00\x08\x0b\x0c\x0e\x1f\x7f\x9b\r"
    "\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069\tend"
)


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")  # the plots draw the names as they are
def test_control_characters_of_model_text_are_shown_visibly_never_written_raw(tmp_path):
    speaker, listener = "hf:/models/a\x1b[31m\u202e", "openai:http://localhost:1/v1#b\x07\u2066"
    episode = reference_episode(0, speaker, listener, success=True, clue=f"CLUE: the {HOSTILE}")
    turns = [
        turn.model_copy(update={"raw": f"{turn.raw}\n{HOSTILE}", "error": f"no line{HOSTILE}" if turn.error else None,
                                "messages": [{"role": "user", "content": f"The speaker's clue:\n| {HOSTILE}"}]})
        for turn in episode.turns
    ]
    episode = episode.model_copy(update={
        "turns": turns, "status": "aborted", "aborted_by": "listener", "abort_reason": f"listener: {HOSTILE}",
        "tags": {**episode.tags, "pairing": f"{speaker} vs {listener}"},
    })
    config = BenchConfig(name="t", games=[REF], models=[speaker, listener], mode="crossplay", episodes=1)
    index = write_report(summarise(config, [episode], samples=10), [episode], tmp_path / "report")
    html = index.read_bytes().decode("utf-8")
    assert RAW_CONTROL_RE.findall(html) == []
    # shown: control pictures for C0 and DEL, code points for the rest; tab and newline stay
    shown = "␛]0;PWNED␇␛[2J␛[H red&lt;U+202E&gt;circle ␀␈␋␌␎␟␡&lt;U+009B&gt;␍"
    assert shown + "&lt;U+202A&gt;&lt;U+202B&gt;&lt;U+202C&gt;&lt;U+202D&gt;" in html
    assert "&lt;U+2066&gt;&lt;U+2067&gt;&lt;U+2068&gt;&lt;U+2069&gt;\tend" in html
    assert f"CLUE: the {shown}" in html  # the reply
    assert f"no line{shown}" in html  # the parse error
    assert f"listener: {shown}" in html  # the abort reason
    assert f"| {shown}" in html  # the game master's message quoting the reply
    assert "a␛[31m&lt;U+202E&gt;" in html and "b␇&lt;U+2066&gt;" in html  # agent names
    assert "&lt;U+202E&gt;circle" in html.split("parsed:")[1]  # the parsed move (JSON)


def test_the_report_shows_what_the_terminal_replaces_and_nothing_else():
    from dialogym.agents.human import terminal_text
    from dialogym.benchmarks.report import visible_text

    for code in [*range(0x3000), 0xFEFF, 0xFFFD, 0x1F600]:
        char = chr(code)
        assert (visible_text(char) != char) == (terminal_text(char) != char), hex(code)
    assert visible_text("a\tb\nc\u200bd") == "a\tb\nc\u200bd"
    assert visible_text("\ud800") == "<U+D800>"  # an unpaired surrogate, which UTF-8 cannot hold


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="the browser check needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)",
)
def test_report_opens_offline_in_a_headless_browser_without_console_errors(report):
    from selenium import webdriver
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    profile = tempfile.mkdtemp(prefix="dialogym-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(report.resolve().as_uri())
        assert driver.title == "dialogym bench t"  # the injected script did not run
        with pytest.raises(NoAlertPresentException):
            _ = driver.switch_to.alert.text

        images = driver.find_elements(By.TAG_NAME, "img")
        assert len(images) == 3
        for image in images:
            assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image) > 0

        first = driver.find_element(By.CSS_SELECTOR, "details.episode")
        assert first.get_attribute("open") is None
        reply = first.find_element(By.CSS_SELECTOR, "pre.move")
        assert not reply.is_displayed()
        first.find_element(By.TAG_NAME, "summary").click()
        assert first.get_attribute("open") is not None
        assert reply.is_displayed()
        assert reply.text == ATTACK  # shown as text, exactly as the model wrote it
        assert first.find_element(By.CSS_SELECTOR, ".parse-error").is_displayed()

        errors = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
        assert errors == []
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_temporaries_left_by_a_kill_during_report_writing_are_removed_by_the_next_write(tmp_path):
    episodes = [reference_episode(0, "scripted", "tiny", success=True), reference_episode(1, "tiny", "scripted", success=False)]
    config = BenchConfig(name="t", games=[REF], models=["scripted", "tiny"], mode="crossplay", episodes=2)
    summary = summarise(config, episodes, samples=10)
    (tmp_path / "report").mkdir()
    left = [".scores.parquet.k1ll3d.tmp", ".scores.csv.abc123.tmp", ".summary.json.x.tmp", "report/.index.html.y.tmp"]
    for name in left:
        (tmp_path / name).write_bytes(b"half a file")
    (tmp_path / ".notes.tmp").write_text("not ours")  # only an atomic write's own temporaries go
    write_tables(summary, tmp_path)
    write_report(summary, episodes, tmp_path / "report")
    assert [name for name in left if (tmp_path / name).exists()] == []
    assert (tmp_path / ".notes.tmp").exists() and (tmp_path / "scores.parquet").exists()
