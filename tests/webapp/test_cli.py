"""Operator CLI through Flask's test runner."""

from __future__ import annotations

import json
import re

from core import accounts


def test_workspace_and_key_lifecycle(app, runner, client) -> None:
    result = runner.invoke(args=["create-workspace", "Acme Support"])
    assert result.exit_code == 0, result.output
    workspace_id = result.output.strip()
    assert workspace_id.startswith("ws_")

    result = runner.invoke(args=["create-key", workspace_id, "--name", "prod"])
    assert result.exit_code == 0, result.output
    key_id = re.search(r"Key id: (\S+)", result.output).group(1)
    secret = re.search(r"API key: (\S+)", result.output).group(1)
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/v1/models", headers=headers).status_code == 200

    listing = runner.invoke(args=["list-keys", workspace_id]).output
    assert key_id in listing and "prod" in listing and "active" in listing
    assert secret not in listing

    assert runner.invoke(args=["revoke-key", workspace_id, key_id]).exit_code == 0
    assert "revoked" in runner.invoke(args=["list-keys", workspace_id]).output
    assert client.get("/v1/models", headers=headers).status_code == 401


def test_errors_are_reported_not_raised(runner) -> None:
    result = runner.invoke(args=["create-key", "ws_nope"])
    assert result.exit_code == 1
    assert "not found" in result.output
    result = runner.invoke(args=["revoke-key", "ws_nope", "key_nope"])
    assert result.exit_code == 1


def test_init_db_is_idempotent(runner) -> None:
    for _ in range(2):
        result = runner.invoke(args=["init-db"])
        assert result.exit_code == 0 and "up to date" in result.output


def test_dev_setup_reuses_its_key(app, runner, client, tmp_path) -> None:
    key_file = tmp_path / "dev_key.json"
    first = runner.invoke(args=["dev-setup", "--key-file", str(key_file)])
    assert first.exit_code == 0, first.output
    secret = re.search(
        r"^Development API key: (th_live_\S+)$", first.output, re.M
    ).group(1)
    assert "curl -s http://127.0.0.1:8000/v1/sentiment" in first.output
    assert json.loads(key_file.read_text())["key"] == secret
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"

    second = runner.invoke(args=["dev-setup", "--key-file", str(key_file)])
    assert f"Development API key: {secret}" in second.output
    with app.extensions["tonehub"].sessions() as s:
        workspace_id = json.loads(key_file.read_text())["workspace_id"]
        assert len(accounts.list_api_keys(s, workspace_id)) == 1
        # A revoked dev key is replaced, not printed again.
        accounts.revoke_api_key(
            s, workspace_id, accounts.list_api_keys(s, workspace_id)[0].id
        )
    third = runner.invoke(args=["dev-setup", "--key-file", str(key_file)])
    assert secret not in third.output
    new_secret = re.search(r"Development API key: (\S+)", third.output).group(1)
    assert (
        client.get(
            "/v1/models", headers={"Authorization": f"Bearer {new_secret}"}
        ).status_code
        == 200
    )
