"""Feed token-sized deltas to the StreamWatcher and check when it stops and what answer it keeps."""

from __future__ import annotations

import random
import time
import tomllib
from pathlib import Path

import pytest

from sddtui.guards.stream import StreamWatcher

CORPUS = Path(__file__).resolve().parent / "corpus" / "streams"
CASES = sorted(CORPUS.glob("*.toml"))
TOKEN_CHARS = 4


def split_tokens(text: str, size: int = TOKEN_CHARS) -> list[str]:
    """Split text into deltas of a few characters, as a server streams tokens."""
    return [text[start : start + size] for start in range(0, len(text), size)]


def varied_reasoning(count: int) -> list[str]:
    """Return `count` reasoning deltas that never repeat a line."""
    return [f"step {index} weighs option {index * 7919 % 1009}.\n" if index % 5 == 0 else f" t{index}" for index in range(count)]


def block_end(text: str) -> str | None:
    """Return `text` up to the end of its last closing fence line, or None when it has no closed block."""
    lines = text.splitlines(keepends=True)
    fences = [index for index, line in enumerate(lines) if line.strip().startswith("```")]
    if len(fences) < 2:
        return None
    return "".join(lines[: fences[-1] + 1])


def run_case(case: dict) -> tuple[StreamWatcher, int]:
    """Stream a case through a watcher until it stops; return the watcher and the token where the loop began."""
    watcher = StreamWatcher(spec_language=case["spec_language"], reasoning_budget=case.get("reasoning_budget"))
    feed = watcher.feed_reasoning if case.get("channel") == "reasoning" else watcher.feed_answer

    head = split_tokens(case["head"])
    loop = split_tokens(case["loop"]) * case["repeat"]
    if "generated_reasoning_tokens" in case:
        loop = varied_reasoning(case["generated_reasoning_tokens"])
    for delta in head + loop:
        if feed(delta) is not None:
            break
    watcher.finish()
    return watcher, len(head)


@pytest.mark.parametrize("case_path", CASES, ids=[path.stem for path in CASES])
def test_stream_case_stops_in_time(case_path):
    case = tomllib.loads(case_path.read_text(encoding="utf-8"))
    watcher, loop_began = run_case(case)

    if not case["stops"]:
        assert not watcher.stopped, watcher.stop_finding
        return
    assert watcher.stopped
    assert watcher.stop_finding.kind in case["stops"]
    if "reasoning_budget" in case:
        assert watcher.stop_token == case["reasoning_budget"] + 1
        return
    assert watcher.stop_token >= loop_began
    assert watcher.stop_token - loop_began <= case["max_tokens_after_loop"]
    assert watcher.loop_start_token is not None
    assert watcher.loop_start_token <= watcher.stop_token


@pytest.mark.parametrize("case_path", CASES, ids=[path.stem for path in CASES])
def test_stream_case_keeps_first_answer(case_path):
    case = tomllib.loads(case_path.read_text(encoding="utf-8"))
    watcher, _ = run_case(case)

    if case["kept"] == "head":
        assert watcher.first_complete_answer() == block_end(case["head"])
    else:
        assert watcher.first_complete_answer() is None


def test_stop_finding_explains_itself():
    case = tomllib.loads((CORPUS / "en_then_ja_duplicate.toml").read_text(encoding="utf-8"))
    watcher, _ = run_case(case)

    finding = watcher.stop_finding
    assert finding.severity == "warn"
    assert str(watcher.stop_token - watcher.loop_start_token) in finding.message
    assert finding.feedback.isascii()
    assert finding.evidence


def test_stream_stops_only_once():
    watcher = StreamWatcher()
    results = [watcher.feed_answer("I am stuck here.\n") for _ in range(20)]

    stops = [result for result in results if result is not None]
    assert len(stops) == 1
    assert watcher.findings == stops


def test_code_comments_in_japanese_warn_without_stopping():
    watcher = StreamWatcher(spec_language="en")
    text = "```kotlin\n" + "".join(f"// 習慣の一覧を表示する画面の部品 {index}\nval item{index} = {index}\n" for index in range(6))
    for delta in split_tokens(text):
        assert watcher.feed_answer(delta) is None

    kinds = [finding.kind for finding in watcher.findings]
    assert kinds == ["language_switch"]
    assert "Japanese" in watcher.findings[0].message


def test_chinese_reasoning_warns_for_japanese_spec():
    watcher = StreamWatcher(spec_language="ja")
    for delta in split_tokens("我们需要创建一个习惯类，它包含编号和名称，然后实现删除功能以及更新功能。"):
        assert watcher.feed_reasoning(delta) is None

    assert [finding.kind for finding in watcher.findings] == ["language_switch"]
    assert "Chinese" in watcher.findings[0].message


def test_japanese_answer_for_japanese_spec_passes():
    watcher = StreamWatcher(spec_language="ja")
    text = "習慣クラスを作成しました。\n```kotlin\n// 習慣を表すデータクラス\ndata class Habit(val id: Long)\n```\n説明は以上です。\n"
    for delta in split_tokens(text):
        assert watcher.feed_answer(delta) is None
    assert watcher.finish() == []


def test_twenty_thousand_tokens_stay_fast():
    generator = random.Random(7)
    words = ["habit", "streak", "day", "value", "count", "user", "save", "list", "delete", "name"]
    lines = [" ".join(generator.choice(words) for _ in range(8)) + f" {index}" for index in range(4000)]
    deltas = split_tokens("```kotlin\n" + "\n".join(lines))[:20000]
    watcher = StreamWatcher()

    started = time.perf_counter()
    for delta in deltas:
        watcher.feed_answer(delta)
    elapsed = time.perf_counter() - started

    assert watcher.tokens == 20000
    assert not watcher.stopped
    # Measured at about 0.06 s in the development container, so the 2 s limit leaves room for slow CI machines.
    assert elapsed < 2.0


def test_one_long_line_stays_fast():
    generator = random.Random(11)
    words = ["habit", "streak", "day", "value", "count", "user", "save", "list", "delete", "name"]
    deltas = split_tokens(" ".join(generator.choice(words) for _ in range(20000)))[:20000]
    watcher = StreamWatcher()

    started = time.perf_counter()
    for delta in deltas:
        watcher.feed_answer(delta)
    elapsed = time.perf_counter() - started

    assert not watcher.stopped
    assert elapsed < 2.0
