"""The one redaction point (kongmasker/redaction.py): Secret values holding NUL, newline and
quote characters never survive into an error message, a log line or a traceback."""

from __future__ import annotations

import io
import logging

import pytest

from kongmasker import redaction
from kongmasker.errors import PreflightFailed, RuntimeOperationError

pytestmark = pytest.mark.unit

NASTY = ["pw-with-nul\x00tail-part-x", "two\nlines-of-secret", "q\"uo'te\\back-slash-x"]


@pytest.fixture(autouse=True)
def _remembered() -> None:
    for v in NASTY:
        redaction.remember(v.encode())


@pytest.mark.parametrize("value", NASTY)
def test_docker_style_echo_is_scrubbed_in_every_spelling(value: str) -> None:
    import json

    for echoed in (
        f"invalid environment variable: REDIS_PASSWORD={value}",
        f"create: {json.dumps({'Env': ['REDIS_PASSWORD=' + value]})}",
        f"env {value!r} rejected",
    ):
        message = RuntimeOperationError(echoed).message
        assert redaction.MASK in message
        for piece in value.replace("\x00", "\n").replace('"', "\n").replace("'", "\n").split("\n"):
            if len(piece.strip()) >= 8:
                assert piece.strip("\\") not in message, (piece, message)


def test_status_and_event_texts_are_error_messages_so_they_are_scrubbed() -> None:
    err = PreflightFailed(f"port busy; REDIS_PASSWORD={NASTY[1]}", reason="PortInUse")
    assert "lines-of-secret" not in err.message and "lines-of-secret" not in str(err)


def test_log_lines_and_tracebacks_are_scrubbed() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("test.redaction")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    redaction.install_log_filter(logger)
    try:
        try:
            raise ValueError(f"docker said REDIS_PASSWORD={NASTY[0]}")
        except ValueError:
            logger.exception("create failed for %s", NASTY[2])
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "ValueError" in out and redaction.MASK in out
    assert "tail-part" not in out and "back-slash" not in out and "pw-with-nul" not in out


def test_unregistered_text_is_left_alone() -> None:
    assert redaction.scrub("an ordinary message") == "an ordinary message"


def test_short_pieces_do_not_mangle_ordinary_words() -> None:
    redaction.remember("p a s s back\\slash")  # piece " back" would mask "backend"
    assert redaction.scrub("Create backend: container missing") == (
        "Create backend: container missing"
    )
    assert redaction.MASK in redaction.scrub("REDIS_PASSWORD=p a s s back\\slash")


def test_the_text_runc_gave_in_the_e2e_run_is_masked_whole() -> None:
    """Seen in tests/e2e/test_isolation.py (Go %q escaping: \\x00, \\n, \\")."""
    value = 'nul\x00secret-1234\nline-two-1234 "quoted-1234"'
    redaction.remember(value)
    docker_said = (
        "error during container init: environment variable value can't contain null(\\x00): "
        '"ANTHROPIC_API_KEY=nul\\x00secret-1234\\nline-two-1234 \\"quoted-1234\\"": unknown'
    )
    assert RuntimeOperationError(docker_said).message.endswith(
        '"ANTHROPIC_API_KEY=[REDACTED]": unknown'
    )
