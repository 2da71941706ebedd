"""Check the answer grammar: valid GBNF that forces the path, the fence and a closing fence in budget."""

import pytest

from sddtui.llm.grammar import MAX_LINE_CHARS, answer_grammar, max_answer_lines

PATH = "app/src/main/java/com/example/habittracker/Habit.kt"


def test_grammar_starts_with_path_and_fence():
    grammar = answer_grammar(PATH, "kotlin", 2048)
    assert grammar.startswith(f'root ::= "{PATH}\\n```kotlin\\n" line{{0,')
    assert '"```\\n"' in grammar


def test_worst_case_answer_fits_max_tokens():
    # No token is shorter than one character, so characters bound tokens from above.
    for max_tokens in (256, 768, 2048, 8192):
        lines = max_answer_lines(PATH, max_tokens)
        worst_chars = len(PATH) + len("\n```kotlin\n") + lines * (MAX_LINE_CHARS + 1) + len("```\n")
        assert worst_chars <= max_tokens


def test_grammar_escapes_quotes_and_backslashes():
    grammar = answer_grammar('odd "name"\\x.kt', "", 512)
    assert 'odd \\"name\\"\\\\x.kt' in grammar


def test_llama_cpp_parses_grammar():
    llama_grammar = pytest.importorskip("llama_cpp.llama_grammar")
    parsed = llama_grammar.LlamaGrammar.from_string(answer_grammar(PATH, "kotlin", 1024), verbose=False)
    assert parsed is not None
