"""A database that cannot be reached gives 503 "unavailable", never a 500 or a traceback.

No mock: the service context points at a real PostgreSQL URL on a port where nothing
listens, and at an SQLite path that cannot be opened, so the real drivers fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from autosettle.api.app import create_app
from autosettle.config import Settings
from autosettle.services.context import ServiceContext
from autosettle.store.engine import normalize_url
from autosettle.store.uow import Database

UNREACHABLE = {
    "postgres": "postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=2",
    "sqlite": "sqlite:///{tmp}/not-a-directory/autosettle.db",
}


@pytest.fixture(params=sorted(UNREACHABLE))
def down_client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the database directory should be")
    url = UNREACHABLE[request.param].format(tmp=tmp_path)
    settings = Settings(data_dir=tmp_path, database_url=url, pan_token_key="11" * 32,
                        data_key="22" * 32)  # type: ignore[arg-type]
    db = Database.__new__(Database)  # Database() would create the SQLite directory: skip it
    db.url = url
    db.engine = create_engine(normalize_url(url))
    ctx = ServiceContext(settings=settings, db=db)
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        yield client
    db.dispose()


def test_health_says_degraded(down_client: TestClient) -> None:
    response = down_client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


def test_requests_get_503_unavailable(down_client: TestClient) -> None:
    headers = {"Authorization": "Bearer ask_0123456789abcdef_secret"}
    for method, path in (("GET", "/v1/merchants"), ("POST", "/v1/payments/sales")):
        response = down_client.request(method, path, headers=headers, json={})
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "unavailable"
