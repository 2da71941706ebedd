"""Check the incremental SSE decoder against the WHATWG event-stream rules and arbitrary read splits."""

import pytest

from sddtui.llm.sse import SseComment, SseDecoder, SseEvent


def decode(*reads: bytes) -> list[SseEvent | SseComment]:
    """Feed `reads` one by one, then flush, and return everything decoded."""
    decoder = SseDecoder()
    output = []
    for read in reads:
        output += decoder.feed(read)
    return output + decoder.flush()


def test_single_event_dispatched():
    (event,) = decode(b"data: hello\n\n")
    assert event == SseEvent(data="hello", has_data=True)


def test_multiline_data_joined():
    (event,) = decode(b"data: first\ndata:second\ndata:  third\n\n")
    assert event.data == "first\nsecond\n third"


def test_one_space_after_colon_removed():
    without_space, with_two_spaces = decode(b"data:no space\n\n", b"data:  two spaces\n\n")
    assert without_space.data == "no space"
    assert with_two_spaces.data == " two spaces"


def test_event_id_retry_fields():
    (event,) = decode(b"event: error\nid: 7\nretry: 1500\ndata: {}\n\n")
    assert event.event == "error"
    assert event.id == "7"
    assert event.retry == 1500


def test_invalid_retry_ignored():
    (event,) = decode(b"retry: 15x\ndata: a\n\n")
    assert event.retry is None


def test_last_event_id_persists():
    first, second = decode(b"id: 3\ndata: a\n\ndata: b\n\n")
    assert first.id == "3"
    assert second.id == "3"


def test_event_type_resets_after_dispatch():
    first, second = decode(b"event: ping\ndata: a\n\ndata: b\n\n")
    assert first.event == "ping"
    assert second.event == "message"


def test_unknown_field_kept():
    (event,) = decode(b'error: {"code":400}\n\n')
    assert event.fields == {"error": '{"code":400}'}
    assert event.has_data is False


def test_field_without_colon():
    (event,) = decode(b"data\n\n")
    assert event.has_data is True
    assert event.data == ""


def test_empty_data_line_dispatched():
    (event,) = decode(b"data:\n\n")
    assert event.has_data is True
    assert event.data == ""


def test_event_without_data_not_dispatched():
    assert decode(b"event: ping\nid: 4\n\n") == []


def test_error_event_without_data_dispatched():
    (event,) = decode(b"event: error\n\n")
    assert event.event == "error"


def test_comments_yielded_in_order():
    output = decode(b":\n: keepalive 2048/8192\ndata: x\n\n")
    assert output[0] == SseComment("")
    assert output[1] == SseComment("keepalive 2048/8192")
    assert output[2].data == "x"


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n", b"\r"])
def test_each_line_end(line_end):
    stream = b"data: a" + line_end + b"data: b" + line_end + line_end + b"data: c" + line_end + line_end
    assert [event.data for event in decode(stream)] == ["a\nb", "c"]


def test_mixed_line_ends():
    stream = b"data: a\r\n\r\n: ping\r\rdata: b\n\ndata: c\r\n\n"
    output = decode(stream)
    assert [item.data for item in output if isinstance(item, SseEvent)] == ["a", "b", "c"]
    assert SseComment("ping") in output


def test_cr_then_lf_in_next_read():
    output = decode(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n")
    assert [event.data for event in output] == ["a\nb"]


def test_cr_then_empty_read_then_lf():
    output = decode(b"data: a\r", b"", b"\n\r\n")
    assert [event.data for event in output] == ["a"]


def test_lone_cr_between_reads_is_two_line_ends():
    output = decode(b"data: a\r", b"\r")
    assert [event.data for event in output] == ["a"]
    assert output[0].complete is True


def test_utf8_split_across_reads():
    encoded = "data: 日本語 🙂\n\n".encode()
    split_at = encoded.index("本".encode()) + 1
    (event,) = decode(encoded[:split_at], encoded[split_at:])
    assert event.data == "日本語 🙂"


def test_byte_order_mark_skipped_once():
    (event,) = decode(b"\xef\xbb", b"\xbfdata: a\n\n")
    assert event.data == "a"


def test_invalid_utf8_replaced():
    (event,) = decode(b"data: \xff\n\n")
    assert event.data == "\ufffd"


def test_flush_reports_incomplete_event():
    output = decode(b"data: [DONE]\n")
    assert output == [SseEvent(data="[DONE]", has_data=True, complete=False)]


def test_flush_reads_unterminated_line():
    (event,) = decode(b'data: {"a":')
    assert event.data == '{"a":'
    assert event.complete is False


def test_flush_without_pending_event():
    assert decode(b"data: a\n\n", b": trailing comment") == [
        SseEvent(data="a", has_data=True),
        SseComment("trailing comment"),
    ]


SAMPLE_STREAM = (
    ": keepalive 1/4\r\n\r\n"
    "data: {\"content\":\"日本語\"}\r\n\r\n"
    "event: error\rdata: two\rdata: lines\r\r"
    ": ping\n\n"
    "id: 9\ndata: 🙂 end\r\n\n"
    "error: {\"code\":500}\n\n"
    "data: [DONE]\n\n"
).encode()


def test_every_two_way_split():
    expected = decode(SAMPLE_STREAM)
    assert len([item for item in expected if isinstance(item, SseEvent)]) == 5
    for split_at in range(len(SAMPLE_STREAM) + 1):
        output = decode(SAMPLE_STREAM[:split_at], SAMPLE_STREAM[split_at:])
        assert output == expected, f"split at byte {split_at}"


def test_every_three_way_split_near_line_ends():
    expected = decode(SAMPLE_STREAM)
    boundaries = [index for index, byte in enumerate(SAMPLE_STREAM) if byte in b"\r\n"]
    for first in boundaries:
        for second in range(first, min(first + 4, len(SAMPLE_STREAM)) + 1):
            output = decode(SAMPLE_STREAM[:first], SAMPLE_STREAM[first:second], SAMPLE_STREAM[second:])
            assert output == expected, f"split at bytes {first} and {second}"


def test_byte_by_byte_feed():
    reads = [SAMPLE_STREAM[index : index + 1] for index in range(len(SAMPLE_STREAM))]
    assert decode(*reads) == decode(SAMPLE_STREAM)
