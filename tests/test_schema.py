"""Property-based API tests: schemathesis generates requests from /openapi.json and checks that
no request causes a server error and every response matches the documented schema."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from citeqa import Citeqa
from core.settings import Settings
from index.embedding import SentenceTransformerEmbedder
from server.app import create_app
from tests.conftest import copy_data_folder

# Named here but made only when the tests run: collecting this module (every pytest run does)
# must not leave a folder behind.
_DATA = Path(tempfile.gettempdir()) / f"citeqa-schema-{uuid.uuid4().hex}" / "data"
SETTINGS = Settings(data_dir=_DATA)
# The schema is read when this module is collected (without starting the app); the services
# come from the fixture below.
APP = create_app(SETTINGS)
schema = schemathesis.openapi.from_dict(APP.openapi())


@pytest.fixture(scope="module", autouse=True)
def _services(_sample_data_template: Path, embedder: SentenceTransformerEmbedder
              ) -> Iterator[None]:
    copy_data_folder(_sample_data_template, _DATA)
    APP.state.citeqa = Citeqa.build(SETTINGS, embedder=embedder)
    yield
    shutil.rmtree(_DATA.parent, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_matches_its_schema_and_never_fails(case: Any) -> None:
    # No server errors, and every response (status, content type, headers, body) is the one
    # the schema documents. Schema-valid requests may still be refused (an unknown document
    # is a 404), so positive-data acceptance is not among the checks.
    case.call_and_validate(app=APP, checks=[
        checks.not_a_server_error, checks.status_code_conformance,
        checks.content_type_conformance, checks.response_headers_conformance,
        checks.response_schema_conformance,
    ])
