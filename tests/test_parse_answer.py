"""Check how whole-file blocks, their paths and patch blocks are found in a model's answer."""

from pathlib import Path

import pytest

from sddtui.edits.parse import is_patch, normalize_path, parse_answer, parse_patches

SHARED_CASES = Path(__file__).resolve().parent.parent.parent / "shared" / "cases"


@pytest.fixture
def shared_cases() -> Path:
    return SHARED_CASES


def test_nested_fences_readme_kept_whole(shared_cases):
    answer = (shared_cases / "outputs" / "nested-fences-readme.md").read_text(encoding="utf-8")
    blocks = parse_answer(answer)

    assert len(blocks) == 1
    block = blocks[0]
    assert block.path == "README.md"
    assert block.language == "markdown"
    assert block.closed is True
    assert "```bash\npip install widget\n```\n" in block.content
    assert block.content.endswith("Run `widget --help` for options.\n")
    assert block.content.startswith("# Widget\n")


def test_decorated_paths_case(shared_cases):
    answer = (shared_cases / "outputs" / "decorated-paths.md").read_text(encoding="utf-8")
    blocks = parse_answer(answer)

    assert [block.path for block in blocks] == [
        "Updated `src/lib/schemas.ts`",
        "src/routes/+layout.svelte (no changes needed)",
    ]
    assert normalize_path(blocks[0].path) == ("src/lib/schemas.ts", False)
    assert normalize_path(blocks[1].path) == ("src/routes/+layout.svelte", True)
    assert blocks[0].content == "export const Item = z.object({ id: z.string() });\n"
    # The prose mention at the end is not a block of its own.
    assert all("db.ts" not in (block.path or "") for block in blocks)


def test_decorated_paths_patches(shared_cases):
    answer = (shared_cases / "outputs" / "decorated-paths.md").read_text(encoding="utf-8")
    patches = parse_patches(answer)

    paths = [normalize_path(patch.path or "")[0] for patch in patches]
    assert paths == ["app.py", "security.md", "/home/user/project/src/routes/+page.svelte"]
    assert [patch.language for patch in patches] == ["search-replace", "search-replace", "diff"]
    assert "DEBUG = False" in patches[0].content


def test_elided_rewrite_block_found(shared_cases):
    answer = (shared_cases / "outputs" / "elided-rewrite.reply.md").read_text(encoding="utf-8")
    blocks = parse_answer(answer)

    assert len(blocks) == 1
    assert blocks[0].path == "src/config.py"
    assert "def main():" in blocks[0].content


def test_xml_tool_call_text_is_block(shared_cases):
    answer = (shared_cases / "outputs" / "edit-as-xml-tool-call.txt").read_text(encoding="utf-8")
    blocks = parse_answer(answer)

    assert len(blocks) == 1
    assert blocks[0].path == "src/calc.py"
    assert blocks[0].content == "def add(a, b):\n    return a + b\n"
    assert blocks[0].closed is True


def test_json_tool_call_text_is_block():
    answer = '<tool_call>\n{"name": "write_file", "arguments": {"path": "a.py", "content": "x = 1"}}\n</tool_call>'
    blocks = parse_answer(answer)

    assert len(blocks) == 1
    assert blocks[0].path == "a.py"
    assert blocks[0].content == "x = 1\n"


def test_unclosed_xml_tool_call():
    answer = "<function=write_file>\n<parameter=path>\na.py\n</parameter>\n<parameter=content>\nx = 1\ny"
    blocks = parse_answer(answer)

    assert len(blocks) == 1
    assert blocks[0].closed is False
    assert blocks[0].content == "x = 1\ny\n"


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("path/to/File.kt", "path/to/File.kt"),
        ("`path/to/File.kt`", "path/to/File.kt"),
        ("**path/to/File.kt**", "path/to/File.kt"),
        ("### path/to/File.kt", "path/to/File.kt"),
        ("### `path/to/File.kt`", "path/to/File.kt"),
        ("Updated `path/to/File.kt`", "path/to/File.kt"),
        ("File: path/to/File.kt", "path/to/File.kt"),
        ("1. `path/to/File.kt`:", "path/to/File.kt"),
        ("- **path/to/File.kt**", "path/to/File.kt"),
        ("Here's the updated `path/to/File.kt`:", "path/to/File.kt"),
        ("ファイル: path/to/File.kt", "path/to/File.kt"),
    ],
)
def test_heading_before_fence(heading, expected):
    answer = f"Some intro.\n\n{heading}\n```kotlin\nclass A\n```\n"
    blocks = parse_answer(answer)

    assert len(blocks) == 1
    assert blocks[0].path == heading
    assert normalize_path(blocks[0].path) == (expected, False)
    assert blocks[0].content == "class A\n"


def test_heading_after_blank_line():
    blocks = parse_answer("**src/a.py**\n\n```python\nx = 1\n```\n")

    assert blocks[0].path == "**src/a.py**"


@pytest.mark.parametrize(
    ("info", "language", "path"),
    [
        ("kotlin path/to/x.kt", "kotlin", "path/to/x.kt"),
        ("path/x.kt", "", "path/x.kt"),
        ("python:src/app.py", "python", "src/app.py"),
        ('python title="src/app.py"', "python", "src/app.py"),
        ("python", "python", None),
    ],
)
def test_path_in_info_string(info, language, path):
    blocks = parse_answer(f"Here is the code:\n```{info}\nx = 1\n```\n")

    assert len(blocks) == 1
    assert blocks[0].language == language
    assert blocks[0].path == path


@pytest.mark.parametrize(
    "line",
    [
        "See also `src/lib/db.ts` for the types.",
        "Here is the code:",
        "I changed `src/a.py` and `src/b.py`:",
        "The test file",
        "https://example.com/a.py",
    ],
)
def test_prose_is_not_path(line):
    assert normalize_path(line) == (None, False)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("b/app.py", ("app.py", False)),
        ("a/src/app.py", ("src/app.py", False)),
        ("./src/app.py", ("src/app.py", False)),
        ("src/app.py (no changes needed)", ("src/app.py", True)),
        ("`src/app.py` (unchanged)", ("src/app.py", True)),
        ("src/app.py — no changes", ("src/app.py", True)),
        ("`src/app.py`（変更なし）", ("src/app.py", True)),
        ("src/app.py (new file)", ("src/app.py", False)),
        ("Makefile", ("Makefile", False)),
        (".gitignore", (".gitignore", False)),
        ("file.py", ("file.py", False)),
        ("code/app.py", ("code/app.py", False)),
        ("src\\app.py", ("src/app.py", False)),
        ("pkg/__init__.py", ("pkg/__init__.py", False)),
        ("__src/__init__.py__:", ("src/__init__.py", False)),
        ("**pkg/__init__.py** (no changes needed)", ("pkg/__init__.py", True)),
        ("", (None, False)),
    ],
)
def test_normalize_path(raw, expected):
    assert normalize_path(raw) == expected


def test_prose_mention_without_fence_is_no_block():
    assert parse_answer("See also `src/lib/db.ts` for the types.\n") == []


def test_several_blocks_in_order():
    answer = "src/a.py\n```python\na = 1\n```\n\nsrc/b.py\n```python\nb = 2\n```\n"
    blocks = parse_answer(answer)

    assert [block.path for block in blocks] == ["src/a.py", "src/b.py"]
    assert [block.content for block in blocks] == ["a = 1\n", "b = 2\n"]
    assert [block.start_line for block in blocks] == [2, 7]


def test_heading_not_taken_from_previous_block():
    answer = "src/a.py\n```python\na = 1\n```\n```python\nb = 2\n```\n"
    blocks = parse_answer(answer)

    assert blocks[1].path is None


def test_cut_off_block_is_unclosed():
    blocks = parse_answer("src/a.py\n```python\ndef f():\n    return 1")

    assert len(blocks) == 1
    assert blocks[0].closed is False
    assert blocks[0].content == "def f():\n    return 1\n"


def test_cut_off_inside_inner_fence_is_unclosed():
    answer = "README.md\n```markdown\n# W\n\n```bash\npip install w\n```\n\nMore"
    blocks = parse_answer(answer)

    assert blocks[0].closed is False
    assert "pip install w" in blocks[0].content
    assert blocks[0].content.endswith("More\n")


def test_tilde_fence_holds_backticks():
    answer = "README.md\n~~~markdown\n# W\n```\ncode\n```\n~~~\n"
    blocks = parse_answer(answer)

    assert blocks[0].content == "# W\n```\ncode\n```\n"
    assert blocks[0].closed is True


def test_longer_outer_fence_holds_bare_inner():
    answer = "README.md\n````markdown\n# W\n```\ncode\n```\ntail\n````\n"
    blocks = parse_answer(answer)

    assert blocks[0].content == "# W\n```\ncode\n```\ntail\n"


def test_bare_inner_fence_in_markdown_balanced():
    answer = "README.md\n```markdown\n# W\n\nInstall:\n```\npip install w\n```\n\nRun it.\n```\n\nDone.\n"
    blocks = parse_answer(answer)

    assert len(blocks) == 1
    assert blocks[0].content == "# W\n\nInstall:\n```\npip install w\n```\n\nRun it.\n"
    assert blocks[0].closed is True


def test_second_bare_block_not_merged():
    answer = "README.md\n```markdown\n# W\n```\n\nAnd the script:\n```\necho hi\n```\n"
    blocks = parse_answer(answer)

    assert [block.content for block in blocks] == ["# W\n", "echo hi\n"]


def test_python_block_does_not_nest_bare_fences():
    answer = "a.py\n```python\nx = 1\n```\nnotes\n```\ny\n```\n"
    blocks = parse_answer(answer)

    assert [block.content for block in blocks] == ["x = 1\n", "y\n"]


def test_indented_block_in_list_item():
    answer = "1. `src/a.py`:\n   ```python\n   def f():\n       return 1\n   ```\n"
    blocks = parse_answer(answer)

    assert blocks[0].content == "def f():\n    return 1\n"
    assert normalize_path(blocks[0].path)[0] == "src/a.py"


def test_crlf_lines_kept():
    answer = "src/a.py\r\n```python\r\nx = 1\r\ny = 2\r\n```\r\n"
    blocks = parse_answer(answer)

    assert blocks[0].content == "x = 1\r\ny = 2\r\n"
    assert blocks[0].closed is True
    assert blocks[0].path == "src/a.py"


def test_empty_block():
    blocks = parse_answer("src/a.py\n```python\n```\n")

    assert blocks[0].content == ""
    assert blocks[0].closed is True


def test_fence_with_trailing_backticks_is_not_fence():
    assert parse_answer("```inline``` text\n") == []


def test_diff_block_is_patch_not_file():
    answer = "```diff\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n```\n"

    assert parse_answer(answer) == []
    patches = parse_patches(answer)
    assert len(patches) == 1
    assert patches[0].path == "b/x.py"
    assert is_patch(patches[0])


def test_unlabelled_diff_content_is_patch():
    answer = "x.py\n```\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n```\n"

    assert parse_answer(answer) == []
    assert len(parse_patches(answer)) == 1


def test_patch_file_is_whole_file():
    answer = "fixes/one.patch\n```diff\n--- a/x.py\n+++ b/x.py\n```\n"

    assert len(parse_answer(answer)) == 1


def test_fenced_search_replace_is_patch():
    answer = "src/a.py\n```python\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n```\n"

    assert parse_answer(answer) == []
    assert parse_patches(answer)[0].path == "src/a.py"


@pytest.mark.parametrize(
    "answer",
    [
        "",
        "```",
        "~~~~",
        "<<<<<<< SEARCH\nx",
        "<function=write_file><parameter=path>",
        "<tool_call>{not json}</tool_call>",
        "```python\n```python\n```python\n",
        "\n\n\n",
        "\x00```\x00\n",
    ],
)
def test_odd_answers_do_not_crash(answer):
    blocks = parse_answer(answer)
    patches = parse_patches(answer)

    assert isinstance(blocks, list)
    assert isinstance(patches, list)
