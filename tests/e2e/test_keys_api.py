"""API keys over HTTP: admins list, issue and revoke; a revoked key is refused at once."""

from __future__ import annotations

import psycopg
import pytest

from eventstore.store import EventStore
from tests.e2e.conftest import Server
from tests.e2e.test_ledger_api import assert_problem


def test_an_admin_issues_a_key_whose_token_works_and_is_shown_only_once(server: Server) -> None:
    with server.client("admin") as admin:
        r = admin.post("/v1/keys", json={"role": "auditor", "label": "year-end audit"})
        assert r.status_code == 201, r.text
        issued = r.json()
        token = issued["token"]
        assert token.startswith(f"ll_{issued['key']['key_id']}_")
        assert issued["key"]["role"] == "auditor"
        assert issued["key"]["live"] is True
        admin_key_id = server.tokens["admin"].split("_")[1]
        assert issued["key"]["created_by"] == admin_key_id
        listed = admin.get("/v1/keys").json()["keys"]
        mine = next(k for k in listed if k["key_id"] == issued["key"]["key_id"])
        assert mine["label"] == "year-end audit"
        assert "token" not in mine and all("token" not in k for k in listed)
    with server.client(None) as anon:
        r = anon.get("/v1/ledgers/1/trial-balance", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text


def test_a_revoked_key_is_refused_at_once_and_revoking_again_changes_nothing(
    server: Server,
) -> None:
    with server.client("admin") as admin:
        token = admin.post("/v1/keys", json={"role": "operator"}).json()["token"]
        key_id = token.split("_")[1]
        headers = {"Authorization": f"Bearer {token}"}
        # Used once, so the server has cached its answer.
        assert admin.get("/v1/ledgers/1/trial-balance", headers=headers).status_code == 200
        r = admin.post(f"/v1/keys/{key_id}/revoke")
        assert r.status_code == 200, r.text
        first = r.json()
        assert first["live"] is False
        assert first["revoked_by"] == server.tokens["admin"].split("_")[1]
        assert_problem(
            admin.get("/v1/ledgers/1/trial-balance", headers=headers), 401, "invalid_token"
        )
        again = admin.post(f"/v1/keys/{key_id}/revoke")
        assert again.status_code == 200
        assert again.json()["revoked_at"] == first["revoked_at"]


def test_key_management_is_for_admins_and_names_what_it_refuses(server: Server) -> None:
    for role in ("operator", "auditor", "regulator"):
        with server.client(role) as c:
            assert_problem(c.get("/v1/keys"), 403, "forbidden")
            assert_problem(c.post("/v1/keys", json={"role": "admin"}), 403, "forbidden")
    with server.client(None) as anon:
        assert_problem(anon.get("/v1/keys"), 401, "unauthenticated")
    with server.client("admin") as admin:
        assert_problem(admin.post("/v1/keys/0123456789ab/revoke"), 404, "key_not_found")
        assert_problem(admin.post("/v1/keys/not-a-key/revoke"), 422, "invalid_request")
        assert_problem(admin.post("/v1/keys", json={"role": "root"}), 422, "invalid_request")
        assert_problem(
            admin.post("/v1/keys", json={"role": "operator", "label": "a\nb"}),
            422,
            "invalid_request",
        )
        assert_problem(
            admin.post("/v1/keys", json={"role": "operator", "extra": 1}), 422, "invalid_request"
        )


def test_the_last_live_admin_key_cannot_be_revoked(server: Server) -> None:
    admin_id = server.tokens["admin"].split("_")[1]
    with server.client("admin") as admin:
        assert_problem(admin.post(f"/v1/keys/{admin_id}/revoke"), 409, "last_admin_key")
        second = admin.post("/v1/keys", json={"role": "admin"}).json()
        r = admin.post(f"/v1/keys/{admin_id}/revoke")
        assert r.status_code == 200, r.text
    # The revoking admin's own key is gone; the second admin now holds the only live one.
    headers = {"Authorization": f"Bearer {second['token']}"}
    with server.client(None) as c:
        assert_problem(
            c.get("/v1/keys", headers={"Authorization": f"Bearer {server.tokens['admin']}"}),
            401,
            "invalid_token",
        )
        assert_problem(
            c.post(f"/v1/keys/{second['key']['key_id']}/revoke", headers=headers),
            409,
            "last_admin_key",
        )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledgerline_api.api_keys SET revoked_at = NULL",
        "UPDATE ledgerline_api.api_keys SET role = 'admin', revoked_at = now()",
    ],
)
def test_a_revocation_is_final_and_a_key_changes_in_no_other_way(
    server: Server, db_url: str, statement: str
) -> None:
    admin_id = server.tokens["admin"].split("_")[1]
    with server.client("admin") as admin:
        admin.post("/v1/keys", json={"role": "admin"})
        operator_id = server.tokens["operator"].split("_")[1]
        assert admin.post(f"/v1/keys/{operator_id}/revoke").status_code == 200
    # Even the owner (a superuser here) cannot un-revoke or re-role a key.
    with (
        psycopg.connect(db_url, autocommit=True) as owner,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        owner.execute(statement + f" WHERE key_id IN ('{operator_id}', '{admin_id}')")


def test_the_runtime_login_issues_and_revokes_only_through_the_functions(
    server: Server,
) -> None:
    store: EventStore = server.runtime.store
    with store.datastore.get_connection() as conn:
        for statement in (
            "UPDATE ledgerline_api.api_keys SET revoked_at = now()",
            "DELETE FROM ledgerline_api.api_keys",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
            conn.rollback()
