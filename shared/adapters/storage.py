"""Azure Storage adapter: queues, tables and blob leases, the same code on Azure and on Azurite.

Built on azure-storage-queue, azure-data-tables and azure-storage-blob. In Azure it authenticates
with the managed identity against ``https://<account>.{queue,table,blob}.core.windows.net``;
locally with a connection string (Azurite). Errors are mapped to ``shared.errors`` here.

Queue messages are base64-encoded text, which is what the Functions queue trigger expects by default.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from shared.adapters import HttpOptions, map_azure_error
from shared.errors import ConflictError, NotFoundError, TemporaryError

T = TypeVar("T")


@dataclass(frozen=True)
class QueueMessage:
    id: str
    body: str
    dequeue_count: int
    pop_receipt: str | None
    inserted_on: Any  # aware datetime


class Storage(Protocol):
    # queues
    def queue_depth(self, queue: str) -> int: ...
    def send(self, queue: str, body: str, *, visibility_timeout: int | None = None) -> str: ...
    def receive(self, queue: str, *, max_messages: int = 16, visibility_timeout: int = 300) -> list[QueueMessage]: ...
    def delete_message(self, queue: str, message: QueueMessage) -> None: ...
    # tables
    def insert(self, table: str, entity: dict[str, Any]) -> str: ...
    def get(self, table: str, partition: str, row: str) -> dict[str, Any] | None: ...
    def replace(self, table: str, entity: dict[str, Any], etag: str) -> str: ...
    def delete(self, table: str, partition: str, row: str, etag: str | None = None) -> None: ...
    def query(self, table: str, query_filter: str, parameters: dict[str, Any] | None = None,
              limit: int | None = None) -> list[dict[str, Any]]: ...
    def upsert_batch(self, table: str, entities: list[dict[str, Any]]) -> None: ...
    def transact(self, table: str, operations: list[tuple[str, dict[str, Any], str | None]]) -> None: ...
    # blob leases
    def acquire_lease(self, container: str, blob: str, seconds: int) -> str: ...
    def renew_lease(self, container: str, blob: str, lease_id: str) -> None: ...
    def release_lease(self, container: str, blob: str, lease_id: str) -> None: ...
    def probe(self) -> str: ...


class AzureStorage:
    """Storage on the official SDKs. Queues, tables and containers are created on first use."""

    def __init__(self, *, connection_string: str | None = None, account: str | None = None,
                 credential: Any = None, http: HttpOptions = HttpOptions()) -> None:
        if bool(connection_string) == bool(account):
            raise ValueError("give exactly one of connection_string or account")
        # Import the three SDKs now, in the constructing thread: first use may come from several
        # threads at once, and concurrent first imports of azure.core can deadlock.
        import azure.data.tables
        import azure.storage.blob
        import azure.storage.queue  # noqa: F401
        self._connection_string = connection_string
        self._account = account
        self._credential = credential
        self._http = http
        self._clients: dict[tuple[str, str], Any] = {}
        self._created: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    # -- clients ---------------------------------------------------------------------------

    def _kwargs(self) -> dict[str, Any]:
        return {
            "retry_total": self._http.max_retries,
            "connection_timeout": min(self._http.timeout, 10),
            "read_timeout": self._http.timeout,
        }

    def _service(self, kind: str) -> Any:
        key = ("service", kind)
        with self._lock:
            if key in self._clients:
                return self._clients[key]
            if kind == "queue":
                from azure.storage.queue import QueueServiceClient as cls
            elif kind == "table":
                from azure.data.tables import TableServiceClient as cls
            else:
                from azure.storage.blob import BlobServiceClient as cls
            if self._connection_string:
                client = cls.from_connection_string(self._connection_string, **self._kwargs())
            else:
                url = f"https://{self._account}.{kind}.core.windows.net"
                client = cls(url, credential=self._credential, **self._kwargs())
            self._clients[key] = client
            return client

    def _queue(self, name: str) -> Any:
        key = ("queue", name)
        if key not in self._clients:
            from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy

            client = self._service("queue").get_queue_client(
                name, message_encode_policy=TextBase64EncodePolicy(),
                message_decode_policy=TextBase64DecodePolicy())
            self._clients[key] = client
        return self._clients[key]

    def _ensure(self, kind: str, name: str, create: Callable[[], Any]) -> None:
        """Create a queue/table/container once per process; 'already exists' is success."""
        if (kind, name) in self._created:
            return
        try:
            self._call(create, f"create {kind} {name}")
        except ConflictError:
            pass  # created by another instance, or on an earlier run
        self._created.add((kind, name))

    def _call(self, operation: Callable[[], T], what: str) -> T:
        from azure.core.exceptions import AzureError

        try:
            return operation()
        except AzureError as exc:
            raise map_azure_error(
                exc, what=what,
                remediation_403="grant the app's identity Storage Queue/Table/Blob Data Contributor on the "
                "platform storage account (infra/modules/automation)",
            ) from exc

    # -- queues ----------------------------------------------------------------------------

    def _ready_queue(self, name: str) -> Any:
        client = self._queue(name)
        self._ensure("queue", name, client.create_queue)
        return client

    def queue_depth(self, queue: str) -> int:
        client = self._ready_queue(queue)
        props = self._call(client.get_queue_properties, f"read depth of queue {queue}")
        return int(props.approximate_message_count or 0)

    def send(self, queue: str, body: str, *, visibility_timeout: int | None = None) -> str:
        client = self._ready_queue(queue)
        sent = self._call(lambda: client.send_message(body, visibility_timeout=visibility_timeout),
                          f"send to queue {queue}")
        return str(sent.id)

    def receive(self, queue: str, *, max_messages: int = 16, visibility_timeout: int = 300) -> list[QueueMessage]:
        client = self._ready_queue(queue)

        def fetch() -> list[Any]:
            # One service call of up to 32 messages; max_messages bounds the total.
            return list(client.receive_messages(messages_per_page=min(max_messages, 32), max_messages=max_messages,
                                                visibility_timeout=visibility_timeout))

        raw = self._call(fetch, f"receive from queue {queue}")
        return [QueueMessage(m.id, m.content, m.dequeue_count, m.pop_receipt, m.inserted_on) for m in raw]

    def delete_message(self, queue: str, message: QueueMessage) -> None:
        client = self._queue(queue)
        try:
            self._call(lambda: client.delete_message(message.id, message.pop_receipt),
                       f"delete message from queue {queue}")
        except NotFoundError:
            pass  # already gone: deleting is idempotent

    # -- tables ----------------------------------------------------------------------------

    def _table(self, name: str) -> Any:
        key = ("table", name)
        if key not in self._clients:
            self._clients[key] = self._service("table").get_table_client(name)
        client = self._clients[key]
        self._ensure("table", name, client.create_table)
        return client

    def insert(self, table: str, entity: dict[str, Any]) -> str:
        """Insert; ConflictError if the key exists (that is how de-duplication claims)."""
        client = self._table(table)
        meta = self._call(lambda: client.create_entity(entity), f"insert into table {table}")
        return str(meta.get("etag", ""))

    def get(self, table: str, partition: str, row: str) -> dict[str, Any] | None:
        client = self._table(table)
        try:
            entity = self._call(lambda: client.get_entity(partition, row), f"read from table {table}")
        except NotFoundError:
            return None
        result = dict(entity)
        result["_etag"] = entity.metadata.get("etag")
        return result

    def replace(self, table: str, entity: dict[str, Any], etag: str) -> str:
        """Replace only if unchanged since read (ETag); ConflictError otherwise."""
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        client = self._table(table)
        clean = {k: v for k, v in entity.items() if not k.startswith("_")}
        meta = self._call(lambda: client.update_entity(clean, mode=UpdateMode.REPLACE, etag=etag,
                                                       match_condition=MatchConditions.IfNotModified),
                          f"update table {table}")
        return str(meta.get("etag", ""))

    def delete(self, table: str, partition: str, row: str, etag: str | None = None) -> None:
        from azure.core import MatchConditions

        client = self._table(table)
        kwargs: dict[str, Any] = {}
        if etag:
            kwargs = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        try:
            self._call(lambda: client.delete_entity(partition, row, **kwargs), f"remove a row of table {table}")
        except NotFoundError:
            pass

    def upsert_batch(self, table: str, entities: list[dict[str, Any]]) -> None:
        """Insert or replace many rows, one entity group transaction per partition and 100 rows (the service's
        limit): a scan's history is a few requests, not one per row. Last writer wins (no ETag)."""
        from azure.data.tables import UpdateMode

        client = self._table(table)
        by_partition: dict[str, list[dict[str, Any]]] = {}
        for entity in entities:
            clean = {k: v for k, v in entity.items() if not k.startswith("_")}
            by_partition.setdefault(str(clean["PartitionKey"]), []).append(clean)
        for rows in by_partition.values():
            for start in range(0, len(rows), 100):
                operations = [("upsert", row, {"mode": UpdateMode.REPLACE}) for row in rows[start:start + 100]]
                self._call(lambda ops=operations: client.submit_transaction(ops), f"write rows of table {table}")

    def query(self, table: str, query_filter: str, parameters: dict[str, Any] | None = None,
              limit: int | None = None) -> list[dict[str, Any]]:
        client = self._table(table)

        def run() -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = []
            for entity in client.query_entities(query_filter, parameters=parameters or {},
                                                results_per_page=min(limit or 1000, 1000)):
                out.append(dict(entity))
                if limit is not None and len(out) >= limit:
                    break
            return out

        return self._call(run, f"query table {table}")

    def transact(self, table: str, operations: list[tuple[str, dict[str, Any], str | None]]) -> None:
        """All or nothing, within one partition (an entity group transaction): each operation is
        ``("insert", entity, None)`` or ``("replace", entity, etag)``. ConflictError when an insert finds its
        key taken or a replace finds the row changed; nothing is then written."""
        from azure.core import MatchConditions
        from azure.data.tables import TransactionOperation, UpdateMode

        client = self._table(table)
        batch: list[Any] = []
        for kind, entity, etag in operations:
            clean = {k: v for k, v in entity.items() if not k.startswith("_")}
            if kind == "insert":
                batch.append((TransactionOperation.CREATE, clean))
            elif kind == "replace":
                batch.append((TransactionOperation.UPDATE, clean, {
                    "mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified}))
            else:
                raise ValueError(f"unknown table operation {kind!r}")
        self._call(lambda: client.submit_transaction(batch), f"transaction on table {table}")

    # -- blob leases -----------------------------------------------------------------------

    def _blob(self, container: str, blob: str) -> Any:
        service = self._service("blob")
        self._ensure("container", container, lambda: service.create_container(container))
        return service.get_blob_client(container, blob)

    def acquire_lease(self, container: str, blob: str, seconds: int) -> str:
        """A lease of 15..60 s on a marker blob; TemporaryError(code='LeaseHeld') when another holds it."""
        from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError

        client = self._blob(container, blob)
        for _ in range(2):
            try:
                return client.acquire_lease(lease_duration=seconds).id
            except ResourceNotFoundError:
                try:
                    client.upload_blob(b"", overwrite=False)
                except ResourceExistsError:
                    pass  # created by a racing instance: fine, try the lease again
                except AzureError as exc:
                    raise map_azure_error(exc, what=f"create lease blob {blob}") from exc
            except ResourceExistsError as exc:
                raise TemporaryError(f"{blob} is leased by another instance", code="LeaseHeld",
                                     retry_after=float(seconds)) from exc
            except AzureError as exc:
                raise map_azure_error(exc, what=f"acquire lease on {blob}") from exc
        raise TemporaryError(f"could not create lease blob {blob}", code="LeaseHeld", retry_after=1.0)

    def renew_lease(self, container: str, blob: str, lease_id: str) -> None:
        self._lease_call(container, blob, lease_id, "renew")

    def release_lease(self, container: str, blob: str, lease_id: str) -> None:
        """Release; ConflictError(LeaseLost) when the lease had expired and someone else took it or it
        was broken, other failures mapped. The caller decides how loud to be (see StateStore.lease)."""
        self._lease_call(container, blob, lease_id, "release")

    def _lease_call(self, container: str, blob: str, lease_id: str, verb: str) -> None:
        from azure.core.exceptions import AzureError
        from azure.storage.blob import BlobLeaseClient

        lease = BlobLeaseClient(self._blob(container, blob), lease_id=lease_id)
        try:
            lease.renew() if verb == "renew" else lease.release()
        except AzureError as exc:
            error = map_azure_error(exc, what=f"{verb} lease on {blob}")
            if isinstance(error, ConflictError):  # 409 LeaseIdMismatch.../LeaseNotPresent...: expired and taken
                raise ConflictError(f"lease on {blob} was lost: {error}", code="LeaseLost",
                                    remediation="the action outlived its lease; it will be retried") from exc
            raise error from exc

    def probe(self) -> str:
        service = self._service("queue")

        def count() -> int:
            return sum(1 for _ in service.list_queues(results_per_page=100))

        queues = self._call(count, "list queues")
        where = f"account {self._account}" if self._account else "connection string"
        return f"{queues} queue(s) reachable ({where})"

    def close(self) -> None:
        for client in self._clients.values():
            close = getattr(client, "close", None)
            if close:
                close()


def build(ctx: Any) -> AzureStorage:
    s = ctx.settings
    if s.storage_connection_string:
        return AzureStorage(connection_string=s.storage_connection_string, http=ctx.http)
    return AzureStorage(account=s.storage_account, credential=ctx.azure_credential, http=ctx.http)
