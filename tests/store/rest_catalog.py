"""An Apache Iceberg REST catalog on localhost, for the tests of ``--catalog https://...`` (and, by the same
client code, BigLake's): the endpoints of the REST catalog specification (apache/iceberg,
``open-api/rest-catalog-open-api.yaml``) that pyiceberg's client calls to create a namespace and a table,
load a table and commit to it, served over HTTP from a SQL catalog.

The client under test is pyiceberg's real REST catalog: its requests, the server's 404 and 409 answers
(which the client turns into ``NoSuchTableError`` and ``CommitFailedException``) and the commit's
requirements (``assert-ref-snapshot-id`` and the like, checked by the SQL catalog behind) all go over the
wire as they would to BigLake. Setting ``lose_answers`` on the handler makes it commit and then answer 504,
as a gateway that timed out after the catalog committed would (the client's ``CommitStateUnknownException``).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.cloud.gcs_emulator import free_port


def _error(code: int, kind: str, message: str) -> tuple[int, dict]:
    return code, {"error": {"message": message, "type": kind, "code": code}}


class _Catalog(BaseHTTPRequestHandler):
    backend = None  # a pyiceberg SqlCatalog, set on the subclass the server makes
    lock = threading.Lock()
    requests: list[str] = []
    lose_answers = 0  # commits still to make and then answer with a gateway timeout

    def log_message(self, *args) -> None:
        pass

    def _send(self, code: int, body: dict | None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _table(self, table) -> dict:
        return {"metadata-location": table.metadata_location,
                "metadata": json.loads(table.metadata.model_dump_json()), "config": {}}

    def do_GET(self) -> None:
        from pyiceberg.exceptions import NoSuchTableError

        self.requests.append(f"GET {self.path}")
        path = self.path.split("?", 1)[0]
        if path == "/v1/config":
            return self._send(200, {"defaults": {}, "overrides": {}})
        if match := re.fullmatch(r"/v1/namespaces/([^/]+)/tables/([^/]+)", path):
            try:
                return self._send(200, self._table(self.backend.load_table((match[1], match[2]))))
            except NoSuchTableError as error:
                return self._send(*_error(404, "NoSuchTableException", str(error)))
        return self._send(*_error(404, "NotFound", path))

    def do_POST(self) -> None:
        from pyiceberg.catalog.rest import CreateTableRequest
        from pyiceberg.exceptions import (
            CommitFailedException,
            NamespaceAlreadyExistsError,
            NoSuchTableError,
            TableAlreadyExistsError,
        )
        from pyiceberg.table import CommitTableRequest

        self.requests.append(f"POST {self.path}")
        path, body = self.path.split("?", 1)[0], self._body()
        with self.lock:
            try:
                if path == "/v1/namespaces":
                    namespace = tuple(json.loads(body)["namespace"])
                    self.backend.create_namespace(namespace)
                    return self._send(200, {"namespace": list(namespace), "properties": {}})
                if match := re.fullmatch(r"/v1/namespaces/([^/]+)/tables", path):
                    request = CreateTableRequest.model_validate_json(body)
                    table = self.backend.create_table(
                        (match[1], request.name), request.table_schema, request.location,
                        request.partition_spec, request.write_order, request.properties)
                    return self._send(200, self._table(table))
                if match := re.fullmatch(r"/v1/namespaces/([^/]+)/tables/([^/]+)", path):
                    request = CommitTableRequest.model_validate_json(body)
                    table = self.backend.load_table((match[1], match[2]))
                    response = self.backend.commit_table(table, request.requirements, request.updates)
                    if self.lose_answers:
                        type(self).lose_answers -= 1
                        return self._send(*_error(504, "GatewayTimeout", "the commit's answer was lost"))
                    return self._send(200, json.loads(response.model_dump_json(by_alias=True)))
            except (NamespaceAlreadyExistsError, TableAlreadyExistsError) as error:
                return self._send(*_error(409, "AlreadyExistsException", str(error)))
            except CommitFailedException as error:
                return self._send(*_error(409, "CommitFailedException", str(error)))
            except NoSuchTableError as error:
                return self._send(*_error(404, "NoSuchTableException", str(error)))
        return self._send(*_error(404, "NotFound", path))


@contextmanager
def serving(folder: Path) -> Iterator[tuple[str, list[str], type[_Catalog]]]:
    """A REST catalog at ``http://127.0.0.1:PORT`` whose state is a SQLite catalog in ``folder``; yields its
    URL, the log of the requests it answered, and its handler class (set ``lose_answers`` on it)."""
    from pyiceberg.catalog.sql import SqlCatalog

    folder.mkdir(parents=True, exist_ok=True)
    handler = type("Catalog", (_Catalog,), {"backend": SqlCatalog("rest-backend", uri=f"sqlite:///{folder}/rest.db"),
                                            "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.requests, handler
    finally:
        server.shutdown()
        server.server_close()
