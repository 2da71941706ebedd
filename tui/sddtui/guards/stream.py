"""Watch answer and reasoning text as it streams, and decide when to stop a looping model.

Every check is incremental: a delta costs work in proportion to its own length plus a bounded
amount per completed line, never a rescan of the whole answer.
"""

from __future__ import annotations

import bisect
import re
from collections import deque
from dataclasses import dataclass, field

from sddtui.guards.findings import guard_finding
from sddtui.guards.model import Finding, Severity
from sddtui.i18n import translate

# Normalised code lines of a second block that must match an earlier block before it counts as a copy.
DUPLICATE_MATCH_LINES = 5
# Blocks with fewer normalised code lines than this are too small to call a later block their copy.
DUPLICATE_MIN_BLOCK_LINES = 3
# Maximum length, in non-blank lines, of a unit that the line repetition check looks for.
MAX_PERIOD_LINES = 48
# Copies of a unit that make a loop, and the copies needed when the unit is shorter than SHORT_UNIT_CHARS.
LOOP_COPIES = 3
SHORT_UNIT_COPIES = 8
SHORT_UNIT_CHARS = 20
# A second copy this long (characters, over at least LONG_COPY_LINES lines, or one whole long line)
# is a loop without waiting for a third.
LONG_COPY_CHARS = 400
LONG_COPY_LINES = 6
# The check for a phrase repeating inside one unfinished line: the window it reads, how often it
# runs, and the shortest stretch that counts.
PHRASE_WINDOW_CHARS = 384
PHRASE_CHECK_EVERY_CHARS = 48
PHRASE_MIN_CHARS = 96
# Letters in the language window, and the Japanese or Chinese letters in it that make a switch.
LANGUAGE_WINDOW_LETTERS = 160
LANGUAGE_SWITCH_CJK_LETTERS = 24

_FENCE = re.compile(r"^\s*(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


def _letter_class(character: str) -> str | None:
    """Return "kana", "han" or "latin" for a letter of those scripts, else None."""
    code = ord(character)
    if 0x3040 <= code <= 0x30FF or 0xFF66 <= code <= 0xFF9F:
        return "kana"
    if 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF:
        return "han"
    if ("a" <= character <= "z") or ("A" <= character <= "Z"):
        return "latin"
    return None


@dataclass
class _Offsets:
    """Map a channel's character offsets to the stream's token index, one entry per delta."""

    char_ends: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)

    def add(self, char_end: int, token: int) -> None:
        self.char_ends.append(char_end)
        self.tokens.append(token)

    def token_at(self, offset: int) -> int:
        """Return the token index of the delta that contains the character at `offset`."""
        index = bisect.bisect_right(self.char_ends, offset)
        return self.tokens[min(index, len(self.tokens) - 1)] if self.tokens else 0


@dataclass(frozen=True)
class _Loop:
    """A repetition found: its kind, the character offset in its channel where it began, and its text."""

    kind: str
    start_offset: int
    evidence: str


class _RepeatDetector:
    """Find a line unit or a phrase repeating with no progress, one completed line (or delta) at a time."""

    def __init__(self) -> None:
        self.hashes: list[int] = []
        self.lengths: list[int] = []
        self.starts: list[int] = []
        self.texts: deque[str] = deque(maxlen=MAX_PERIOD_LINES + 1)
        self.run = [0] * (MAX_PERIOD_LINES + 1)
        self.run_chars = [0] * (MAX_PERIOD_LINES + 1)

    def add_line(self, line: str, offset: int) -> _Loop | None:
        """Add one completed line starting at `offset`; return the loop it completes, if any."""
        squashed = " ".join(line.split())
        if not any(character.isalnum() for character in squashed):
            return None
        self.hashes.append(hash(squashed))
        self.lengths.append(len(squashed))
        self.starts.append(offset)
        self.texts.append(squashed)
        index = len(self.hashes) - 1

        for period in range(1, min(MAX_PERIOD_LINES, index) + 1):
            if self.hashes[index] == self.hashes[index - period]:
                self.run[period] += 1
                self.run_chars[period] += self.lengths[index]
            else:
                self.run[period] = 0
                self.run_chars[period] = 0
                continue

            run = self.run[period]
            unit_chars = sum(self.lengths[index - period + 1 : index + 1]) if run >= period else 0
            copies = SHORT_UNIT_COPIES if unit_chars < SHORT_UNIT_CHARS else LOOP_COPIES
            repeated = run >= (copies - 1) * period
            long_copy = self.run_chars[period] >= LONG_COPY_CHARS and run >= min(period, LONG_COPY_LINES)
            if repeated or long_copy:
                first_repeat = index - run + 1
                return _Loop("stream_repetition", self.starts[first_repeat], squashed)
        return None


def _phrase_loop(text: str) -> tuple[int, int] | None:
    """Return (length, period) of the longest tail of `text` that repeats a short unit 3 or more times.

    Uses the prefix function of the reversed tail, so one call is linear in len(text).
    """
    reversed_text = text[::-1]
    prefix = [0] * len(reversed_text)
    best: tuple[int, int] | None = None
    for index in range(1, len(reversed_text)):
        length = prefix[index - 1]
        while length and reversed_text[index] != reversed_text[length]:
            length = prefix[length - 1]
        if reversed_text[index] == reversed_text[length]:
            length += 1
        prefix[index] = length

        size = index + 1
        period = size - length
        if size >= PHRASE_MIN_CHARS and size >= LOOP_COPIES * period:
            unit = reversed_text[:period]
            if any(character.isalpha() for character in unit) and (period > 2 or size >= 4 * PHRASE_MIN_CHARS // 3):
                best = (size, period)
    return best


class _Channel:
    """The text of one channel (answer or reasoning) with its partial line, offsets and repeat state."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.partial = ""
        self.partial_start = 0
        self.checked_partial = 0
        self.offsets = _Offsets()
        self.repeats = _RepeatDetector()

    def append(self, text: str, token: int) -> list[tuple[str, int]]:
        """Add a delta and return the lines it completed, each with its start offset."""
        self.parts.append(text)
        self.length += len(text)
        self.offsets.add(self.length, token)

        completed: list[tuple[str, int]] = []
        pieces = text.split("\n")
        for piece in pieces[:-1]:
            completed.append((self.partial + piece, self.partial_start))
            self.partial_start += len(self.partial) + len(piece) + 1
            self.partial = ""
            self.checked_partial = 0
        self.partial += pieces[-1]
        return completed

    def phrase_loop(self) -> _Loop | None:
        """Check the unfinished line for a phrase loop when it has grown enough since the last check."""
        if len(self.partial) < PHRASE_MIN_CHARS or len(self.partial) - self.checked_partial < PHRASE_CHECK_EVERY_CHARS:
            return None
        self.checked_partial = len(self.partial)
        window = self.partial[-PHRASE_WINDOW_CHARS:]
        found = _phrase_loop(window)
        if found is None:
            return None
        size, period = found
        start = self.partial_start + len(self.partial) - size + period
        return _Loop("stream_repetition", start, window[-size:][:period * 2])

    @property
    def text(self) -> str:
        return "".join(self.parts)


@dataclass
class _Block:
    """A fenced block of the answer: where it starts and ends, and its code lines without comments."""

    open_offset: int
    code_lines: list[str] = field(default_factory=list)
    end_offset: int | None = None
    # For each earlier block: [position in its code lines, lines matched, lines missed].
    matches: dict[int, list[int]] = field(default_factory=dict)


class _LanguageWindow:
    """The letters of the latest natural-language text, by script, with the offset where each arrived."""

    def __init__(self) -> None:
        self.letters: deque[tuple[str, int]] = deque(maxlen=LANGUAGE_WINDOW_LETTERS)
        self.counts = {"kana": 0, "han": 0, "latin": 0}

    def add(self, text: str, offset: int) -> None:
        for position, character in enumerate(text):
            script = _letter_class(character)
            if script is None:
                continue
            if len(self.letters) == self.letters.maxlen:
                dropped, _ = self.letters[0]
                self.counts[dropped] -= 1
            self.letters.append((script, offset + position))
            self.counts[script] += 1

    def switched_to(self, spec_language: str) -> tuple[str, int] | None:
        """Return (language, offset of its first letter in the window) when the text left `spec_language`.

        For an English spec, Japanese or Chinese letters that outnumber half the Latin ones are a
        switch. For a Japanese spec only Chinese (Han letters with no kana) is, because English
        identifiers and terms are normal in Japanese technical text.
        """
        cjk = self.counts["kana"] + self.counts["han"]
        if spec_language == "en":
            if cjk >= LANGUAGE_SWITCH_CJK_LETTERS and cjk * 2 >= self.counts["latin"]:
                language = "ja" if self.counts["kana"] * 6 >= cjk else "zh"
                return language, self._first_of(("kana", "han"))
            return None
        if self.counts["han"] >= LANGUAGE_SWITCH_CJK_LETTERS and self.counts["kana"] == 0:
            return "zh", self._first_of(("han",))
        return None

    def _first_of(self, scripts: tuple[str, ...]) -> int:
        return next(offset for script, offset in self.letters if script in scripts)


class StreamWatcher:
    """Watch a streaming answer and its reasoning for loops, a language switch and a reasoning overrun.

    Feed each delta as it arrives. A feed method returns a Finding when the stream should stop now,
    and None otherwise; warnings that do not stop the stream collect in `findings`. Tokens are
    counted one per delta, answer and reasoning together, as servers stream one token per delta.
    """

    def __init__(
        self,
        spec_language: str = "en",
        reasoning_budget: int | None = None,
        lang: str = "en",
        path: str | None = None,
    ) -> None:
        self.spec_language = spec_language
        self.reasoning_budget = reasoning_budget
        self.lang = lang
        self.path = path
        self.findings: list[Finding] = []
        self.stop_finding: Finding | None = None
        self.tokens = 0
        self.reasoning_tokens = 0
        self.loop_start_token: int | None = None
        self.stop_token: int | None = None

        self._answer = _Channel()
        self._reasoning = _Channel()
        self._blocks: list[_Block] = []
        self._fence_stack: list[tuple[str, int]] = []
        self._in_block_comment = False
        self._kept_end: int | None = None
        self._answer_language = _LanguageWindow()
        self._reasoning_language = _LanguageWindow()
        self._reported_languages: set[str] = set()

    @property
    def stopped(self) -> bool:
        """Return True once a check decided to stop the stream."""
        return self.stop_finding is not None

    def answer_text(self) -> str:
        """Return all answer text fed so far."""
        return self._answer.text

    def first_complete_answer(self) -> str | None:
        """Return the answer up to the end of the last fenced block that closed before the loop began.

        Without a stop it is the answer up to the end of its first complete block. None when no
        block closed in time; the caller then keeps the whole answer, whose cut block review blocks.
        """
        if self.stopped:
            end = self._kept_end
        else:
            end = next((block.end_offset for block in self._blocks if block.end_offset is not None), None)
        if end is None:
            return None
        return self._answer.text[:end]

    def feed_answer(self, text: str) -> Finding | None:
        """Add an answer delta; return the stop finding when the stream should stop now."""
        if self.stopped or not text:
            return None
        self.tokens += 1
        for line, offset in self._answer.append(text, self.tokens):
            loop = self._answer_line(line, offset)
            if loop is not None:
                return self._stop(loop, self._answer)
        loop = self._answer.phrase_loop()
        if loop is not None:
            return self._stop(loop, self._answer)
        return None

    def feed_reasoning(self, text: str) -> Finding | None:
        """Add a reasoning delta; return the stop finding when the stream should stop now."""
        if self.stopped or not text:
            return None
        self.tokens += 1
        self.reasoning_tokens += 1
        offset = self._reasoning.length
        for line, line_offset in self._reasoning.append(text, self.tokens):
            loop = self._reasoning.repeats.add_line(line, line_offset)
            if loop is not None:
                return self._stop(loop, self._reasoning)
        loop = self._reasoning.phrase_loop()
        if loop is not None:
            return self._stop(loop, self._reasoning)

        self._reasoning_language.add(text, offset)
        switch = self._reasoning_language.switched_to(self.spec_language)
        if switch is not None:
            self._warn_language(switch[0], "reasoning", self._reasoning, switch[1])

        if self.reasoning_budget is not None and self.reasoning_tokens > self.reasoning_budget:
            self.loop_start_token = self.tokens - 1
            self.stop_token = self.tokens
            self._kept_end = self._last_closed_before(self._answer.length)
            self.stop_finding = guard_finding(
                "reasoning_budget", Severity.WARN, self.lang, path=self.path,
                evidence=self._reasoning.text[-160:], budget=self.reasoning_budget,
            )
            self.findings.append(self.stop_finding)
            return self.stop_finding
        return None

    def finish(self) -> list[Finding]:
        """Check the last unfinished line when the stream ends and return every finding made."""
        if not self.stopped and self._answer.partial:
            loop = self._answer_line(self._answer.partial, self._answer.partial_start)
            if loop is not None:
                self._stop(loop, self._answer)
        return list(self.findings)

    # The answer channel

    def _answer_line(self, line: str, offset: int) -> _Loop | None:
        """Track fences, code copies and language for one completed answer line."""
        fence = _FENCE.match(line)
        line_end = offset + len(line) + 1
        if fence is not None and self._fence_event(fence, offset, line_end):
            return self._answer.repeats.add_line(line, offset)

        if self._fence_stack:
            code, comment = self._split_comment(line)
            if comment:
                self._answer_language.add(comment, offset)
            block = self._blocks[-1]
            if code:
                block.code_lines.append(code)
                copy = self._match_earlier_blocks(block)
                if copy is not None:
                    return copy
        else:
            self._answer_language.add(line, offset)

        switch = self._answer_language.switched_to(self.spec_language)
        if switch is not None:
            language, start = switch
            if self._last_closed_before(start) is not None:
                return _Loop(f"language_switch:{language}", start, line)
            self._warn_language(language, "answer", self._answer, start)
        return self._answer.repeats.add_line(line, offset)

    def _fence_event(self, fence: re.Match, offset: int, line_end: int) -> bool:
        """Open or close a block for a fence line; return True when the line was a fence."""
        marker = fence.group("fence")
        info = fence.group("info").strip()
        if not self._fence_stack:
            self._fence_stack.append((marker[0], len(marker)))
            self._in_block_comment = False
            self._blocks.append(_Block(open_offset=offset))
            return True
        char, length = self._fence_stack[-1]
        if info:
            self._fence_stack.append((marker[0], len(marker)))
            return True
        if marker[0] == char and len(marker) >= length:
            self._fence_stack.pop()
            if not self._fence_stack:
                self._blocks[-1].end_offset = min(line_end, self._answer.length)
            return True
        return False

    def _split_comment(self, line: str) -> tuple[str, str]:
        """Return a code line without its comments (whitespace collapsed) and the comment text."""
        code_parts: list[str] = []
        comment_parts: list[str] = []
        rest = line
        while rest:
            if self._in_block_comment:
                end = rest.find("*/")
                if end < 0:
                    comment_parts.append(rest)
                    break
                comment_parts.append(rest[:end])
                rest = rest[end + 2 :]
                self._in_block_comment = False
                continue
            match = re.search(r"/\*|//|(?:^|\s)#|(?:^|\s)--\s|<!--", rest)
            if match is None:
                code_parts.append(rest)
                break
            code_parts.append(rest[: match.start()])
            if match.group(0) == "/*":
                self._in_block_comment = True
                rest = rest[match.end() :]
                continue
            comment_parts.append(rest[match.end() :])
            break

        code = " ".join(" ".join(code_parts).split())
        comment = " ".join(comment_parts).strip(" */-<>!")
        if not any(character.isalnum() for character in code):
            code = ""
        return code, comment

    def _match_earlier_blocks(self, block: _Block) -> _Loop | None:
        """Advance the comparison of the open block with each earlier closed block; return a copy found."""
        line = block.code_lines[-1]
        for index, earlier in enumerate(self._blocks[:-1]):
            if earlier.end_offset is None or len(earlier.code_lines) < DUPLICATE_MIN_BLOCK_LINES:
                continue
            state = block.matches.setdefault(index, [0, 0, 0])
            position, _, _ = state
            lines = earlier.code_lines
            if position < len(lines) and lines[position] == line:
                state[0] += 1
                state[1] += 1
            elif position + 1 < len(lines) and lines[position + 1] == line:
                state[0] += 2
                state[1] += 1
                state[2] += 1
            else:
                state[2] += 1

            needed = min(DUPLICATE_MATCH_LINES, len(lines))
            if state[1] >= needed and state[1] >= 4 * state[2]:
                return _Loop("stream_repeated_block", block.open_offset, line)
        return None

    # Findings

    def _last_closed_before(self, offset: int) -> int | None:
        """Return the end of the last fenced block that closed at or before `offset`, or None."""
        ends = [block.end_offset for block in self._blocks if block.end_offset is not None and block.end_offset <= offset]
        return max(ends) if ends else None

    def _stop(self, loop: _Loop, channel: _Channel) -> Finding:
        """Record the stop: where the loop began, where it was caught, and what answer is kept."""
        self.loop_start_token = channel.offsets.token_at(loop.start_offset)
        self.stop_token = self.tokens
        if channel is self._answer:
            self._kept_end = self._last_closed_before(loop.start_offset)
        else:
            self._kept_end = self._last_closed_before(self._answer.length)

        kind, _, language = loop.kind.partition(":")
        line = channel.text.count("\n", 0, loop.start_offset) + 1 if channel is self._answer else None
        self.stop_finding = guard_finding(
            kind, Severity.WARN, self.lang, path=self.path, line=line, evidence=loop.evidence,
            tokens=self.stop_token - self.loop_start_token, **self._language_params(language or self.spec_language),
        )
        self.findings.append(self.stop_finding)
        return self.stop_finding

    def _warn_language(self, language: str, channel_name: str, channel: _Channel, offset: int) -> None:
        """Record a language switch that does not stop the stream, once per channel."""
        if channel_name in self._reported_languages:
            return
        self._reported_languages.add(channel_name)
        text = channel.text
        line_start = text.rfind("\n", 0, offset) + 1
        line_end = text.find("\n", offset)
        evidence = text[line_start : line_end if line_end >= 0 else len(text)]
        self.findings.append(
            guard_finding(
                "language_switch", Severity.WARN, self.lang, path=self.path,
                line=text.count("\n", 0, offset) + 1 if channel is self._answer else None,
                evidence=evidence, tokens=0, **self._language_params(language),
            )
        )

    def _language_params(self, language: str) -> dict[str, str]:
        """Return the language names a language finding shows, in the user's language and in English."""
        def name(code: str, lang: str) -> str:
            return translate(f"guard.language_name.{code}", lang)

        return {
            "language": name(language, self.lang),
            "expected": name(self.spec_language, self.lang),
            "language_en": name(language, "en"),
            "expected_en": name(self.spec_language, "en"),
        }
