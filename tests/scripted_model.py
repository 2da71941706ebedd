"""Script a loopback server that answers like llama-cpp-python 0.3: model list, token count, plan, answers."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from loopback import (
    TRANSCRIPTS,
    LlamaCppPythonStream,
    LoopbackServer,
    RecordedRequest,
    ScriptedResponse,
    json_response,
    response_from_http_file,
)

MAIN_ROOT = "app/src/main/java/com/example/habittracker"
HABIT_PATH = f"{MAIN_ROOT}/Habit.kt"
HABIT_FILE = "package com.example.habittracker\n\ndata class Habit(val id: Long, val name: String)\n"
MODEL_LIST = {"object": "list", "data": [{"id": "smollm2", "object": "model", "owned_by": "me", "permissions": []}]}


def habit_plan(*paths: str) -> str:
    """Return a plan answer with one task per path, each serving FUNC-1."""
    tasks = [
        {"path": path, "action": "create", "requirement_ids": ["FUNC-1"], "instruction": f"Write {path.rsplit('/', 1)[-1]}."}
        for path in (paths or (HABIT_PATH,))
    ]
    return json.dumps({"tasks": tasks})


def fenced_answer(path: str = HABIT_PATH, content: str = HABIT_FILE, language: str = "kotlin") -> str:
    """Return an answer in the requested format: the path line and one fenced block."""
    return f"{path}\n```{language}\n{content}```\n"


def split_tokens(text: str, size: int = 4) -> list[str]:
    """Split text into small deltas, as a server streams tokens."""
    return [text[start : start + size] for start in range(0, len(text), size)]


@dataclass
class ScriptedModel:
    """What the scripted server answers: the plan text, then one answer per task request, in order."""

    plan: str = field(default_factory=habit_plan)
    answers: list[ScriptedResponse | str] = field(default_factory=lambda: [fenced_answer()])
    token_count: int = 120
    chat_requests: list[dict] = field(default_factory=list)

    def install(self, server: LoopbackServer) -> None:
        """Route the server's endpoints to this script."""
        server.route("GET", "/v1/models", json_response(200, MODEL_LIST))
        server.route("POST", "/extras/tokenize/count", lambda _: json_response(200, {"count": self.token_count}))
        server.route("POST", "/v1/chat/completions", self._chat)

    def _chat(self, request: RecordedRequest) -> ScriptedResponse:
        """Answer a chat request the way llama-cpp-python does."""
        body = request.json()
        self.chat_requests.append(body)
        response_format = body.get("response_format")
        if response_format is not None:
            if response_format.get("type") == "json_schema":
                return response_from_http_file(TRANSCRIPTS / "llama-cpp-python-json-schema-rejected.http")
            return LlamaCppPythonStream().response(split_tokens(self.plan))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, ScriptedResponse):
            return answer
        return LlamaCppPythonStream().response(split_tokens(answer))

    @property
    def task_requests(self) -> list[dict]:
        """Return the chat requests that asked for a task's file, not for the plan."""
        return [body for body in self.chat_requests if "response_format" not in body]


def stream_of(contents: Iterable[str], finish_reason: str | None = "stop", **options: object) -> ScriptedResponse:
    """Return a llama-cpp-python stream of `contents`."""
    return LlamaCppPythonStream().response(list(contents), finish_reason, **options)
