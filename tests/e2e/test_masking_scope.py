"""Masking through an operator-made stack (Nginx -> gateway -> mock upstream, with its Redis):
a second client cannot recover the first client's original, and the shared vectors' Korean
and issue-14 cases do not leak on the way.
"""

from __future__ import annotations

import httpx
import pytest
from tests.e2e.stack_env import StackEnv

from kongmasker.api import vectors

pytestmark = pytest.mark.e2e


def _ask(proxy: str, api_key: str, text: str) -> str:
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": text}]}
    resp = httpx.post(
        f"{proxy}/v1/messages",
        json=body,
        headers={"x-api-key": api_key, "anthropic-version": "2023-06-01"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    return "".join(b["text"] for b in resp.json()["content"])


def _last_upstream_text(env: StackEnv) -> str:
    return str(httpx.get(f"{env.mock_url}/__requests").json()[-1]["messages"][0]["content"])


def test_a_second_client_cannot_recover_the_first_clients_original(stack_env: StackEnv) -> None:
    env = stack_env
    env.apply("scope", env.spec("scope"))
    proxy = env.wait_ready("scope")["endpoints"]["proxy"]  # Nginx, in front of the gateway

    original = "arn:aws:iam::246813579024:role/PayrollAdmin"
    assert _ask(proxy, "sk-client-1", f"who can assume {original}?").endswith(original + "?")
    masked = _last_upstream_text(env).split()[3].rstrip("?")
    assert masked.startswith("AWS_IAM_ROLE_")

    # Client 2 sends the masked id (the mock echoes it): it stays masked, with or without
    # identifiers of its own in the request.
    for probe in (f"what is {masked}", f"compare {masked} with i-0fffffffffffffff6"):
        reply = _ask(proxy, "sk-client-2", probe)
        assert original not in reply and "246813579024" not in reply
        assert reply.endswith(probe)

    # A few of the shared vectors (Korean particles, issue-14 cases) through the whole stack.
    cases = [c for c in vectors.positives() if "issue-14" in c.tags][:20]
    for case in cases:
        reply = _ask(proxy, "sk-client-3", case.text)
        sent = _last_upstream_text(env)
        assert not [i for i in case.identifiers if i in sent], case.id
        assert reply.endswith(case.text), case.id
