"""API keys (hashes only, bound users, revocation, admin) and the Prometheus metrics."""

from __future__ import annotations

import json

import openai
import pytest
from click.testing import CliRunner
from gateway_support import serving
from test_http_api import call

from prouter.cli import cli
from prouter.gateway.app import Gateway, create_app
from prouter.gateway.keys import create_key, revoke_key
from prouter.gateway.router import Router


@pytest.fixture()
def keyed(world, tmp_path):  # type: ignore[no-untyped-def]
    """A second gateway on the same model and upstreams, with a key file."""
    from prouter.gateway.keys import KeyRing

    path = tmp_path / "keys.json"
    bound, bound_entry = create_key(path, user="user-0001")
    free, _ = create_key(path)
    admin, _ = create_key(path, admin=True)
    gw = Gateway(
        router=Router(world.gw.router.service, world.gw.router._load, world.gw.router._latest),
        upstreams=world.upstreams,
        keys=KeyRing(path),
    )
    with serving(create_app(gw)) as base:
        yield base, path, {"bound": bound, "free": free, "admin": admin}, bound_entry


def client(base: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)


def ask(c: openai.OpenAI, user: str | None = None):  # type: ignore[no-untyped-def]
    extra = {"user": user} if user else {}
    return c.chat.completions.with_raw_response.create(
        model="prouter", messages=[{"role": "user", "content": "What is 2+2?"}], **extra
    )


def test_keys_are_required_bound_to_users_and_revocable(keyed):
    base, path, keys, bound_entry = keyed
    stored = path.read_text()
    assert all(k not in stored for k in keys.values())  # only hashes
    with pytest.raises(openai.AuthenticationError):
        ask(client(base, "pr-wrong"))
    assert call(base, "/route", {"user": "u", "query": "hi"})[0] == 401
    assert call(base, "/metrics")[0] == 401
    assert call(base, "/health")[0] == 200  # liveness stays open
    raw = ask(client(base, keys["bound"]))  # the bound user is used
    assert raw.http_response.status_code == 200
    with pytest.raises(openai.PermissionDeniedError):
        ask(client(base, keys["bound"]), user="user-0002")
    assert ask(client(base, keys["free"]), user="user-0002").http_response.status_code == 200
    bearer = {"Authorization": f"Bearer {keys['free']}"}
    assert call(base, "/admin/reload", {}, headers=bearer)[0] == 403
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    assert call(base, "/admin/reload", {}, headers=admin)[0] == 200
    revoke_key(path, bound_entry.id)
    with pytest.raises(openai.AuthenticationError):
        ask(client(base, keys["bound"]))


def test_keys_cli_creates_lists_and_revokes(tmp_path):
    path = str(tmp_path / "k.json")
    runner = CliRunner()
    made = runner.invoke(cli, ["keys", "create", "--user", "u3", "--file", path])
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip()
    assert secret.startswith("pr-") and secret not in (tmp_path / "k.json").read_text()
    key_id = json.loads((tmp_path / "k.json").read_text())["keys"][0]["id"]
    listed = runner.invoke(cli, ["keys", "list", "--file", path])
    assert key_id in listed.output and "user=u3" in listed.output and "active" in listed.output
    assert runner.invoke(cli, ["keys", "revoke", key_id, "--file", path]).exit_code == 0
    assert "revoked" in runner.invoke(cli, ["keys", "list", "--file", path]).output
    missing = runner.invoke(cli, ["keys", "revoke", "key-nope", "--file", path])
    assert missing.exit_code == 1 and "no key 'key-nope'" in missing.output


def test_metrics_count_requests_routes_and_errors(world):
    import urllib.request

    llm = sorted(world.upstreams)[0]
    world.upstream.behaviour[f"up-{llm}"] = "500"
    try:
        with pytest.raises(openai.APIStatusError):
            openai.OpenAI(
                base_url=world.base + "/v1", api_key="x", max_retries=0
            ).chat.completions.create(
                model=llm, messages=[{"role": "user", "content": "metrics please"}]
            )
    finally:
        world.upstream.behaviour.clear()
    with urllib.request.urlopen(world.base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    assert f'prouter_upstream_errors_total{{kind="http 500",llm="{llm}"}}' in text
    assert "prouter_write_queue_depth" in text and "prouter_request_seconds_bucket" in text
    assert 'prouter_requests_total{endpoint="/v1/chat/completions",status="502"}' in text
