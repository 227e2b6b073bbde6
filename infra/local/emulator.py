"""The local AWS emulator: moto server, serving one request at a time.

moto's in-memory backends are not thread-safe, and `moto_server` serves each
request on its own thread: two concurrent conditional writes (or transactions)
can then both pass their condition check before either writes, which real
DynamoDB never allows. Serialising requests restores the atomicity the code
relies on, so the concurrency tests prove the code, not the emulator's luck.

It also makes moto's TransactWriteItems cost what it should: moto snapshots
the whole table (a deep copy, once per item of the transaction) to be able to
roll back, which takes ~0.4 s per transaction at 2,000 items and made the
test suite's concurrency tests time out. Here the snapshot covers only the
items the transaction touches; the rollback semantics are the same.

It is served by waitress rather than moto's werkzeug development server,
which closes the connection after every response: with it, every AWS call of
the code under test paid a fresh TCP connection (two per knock), which AWS's
keep-alive endpoints never charge, and which inflated the local latency and
CPU numbers of `make bench`.

moto also keeps one SNS platform endpoint per push token across all platform
applications; SNS keeps one per token *and application*, so the same token
registered with two apps (or both APNs environments of one) has two endpoints.
`_patch_platform_endpoints` restores that.

In front of that lock stands `fidelity.Fidelity`, which models what real
DynamoDB and SNS do and moto does not: transaction conflicts (on by default),
idempotent transactions (`ClientRequestToken`), injected faults (before or
after a request is applied), latency and index lag (switches, also settable
at run time through `/fidelity/settings`; see that module). Its delays are
taken outside the lock.

Usage: python emulator.py HOST PORT
"""

import os
import signal
import sys
import threading

import copy

from waitress import serve

from fidelity import Fidelity

import moto.dynamodb.models as dynamodb_models
import moto.sns.models as sns_models

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    create_backend_app,
)


class _NoTableCopy:
    """Stands in for the `copy` module inside moto's transaction code: a
    table is "copied" as itself, anything else really is deep-copied."""

    @staticmethod
    def deepcopy(obj, *args):
        if isinstance(obj, dynamodb_models.Table):
            return obj
        return copy.deepcopy(obj, *args)


def _patch_transactions() -> None:
    backend_class = dynamodb_models.DynamoDBBackend
    original = backend_class.transact_write_items

    def transact_write_items(self, transact_items):
        saved = []
        for entry in transact_items:
            try:
                op_type, op = next(iter(entry.items()))
                table = self.get_table(op["TableName"])
                if op_type == "Put":
                    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = op["Item"][table.range_key_attr]
                else:
                    key = op["Key"]
                current = self.get_item(op["TableName"], key)
            except Exception:
                continue  # moto itself reports what is wrong with this entry
            saved.append((op["TableName"], key, copy.deepcopy(current)))
        dynamodb_models.copy = _NoTableCopy
        try:
            return original(self, transact_items)
        except Exception:
            for table_name, key, item in reversed(saved):
                if item is None:
                    try:
                        self.delete_item(table_name, key)
                    except Exception:
                        pass
                else:
                    self.put_item(table_name, item.to_json()["Attributes"])
            raise
        finally:
            dynamodb_models.copy = copy

    backend_class.transact_write_items = transact_write_items


def _patch_platform_endpoints() -> None:
    """CreatePlatformEndpoint finds an existing endpoint by token within
    the one platform application, as SNS does."""
    backend_class = sns_models.SNSBackend

    def create_platform_endpoint(self, application, custom_user_data, token, attributes):
        for endpoint in self.platform_endpoints.values():
            if token == endpoint.token and endpoint.application.arn == application.arn:
                same_user_data = custom_user_data == endpoint.custom_user_data
                same_attrs = attributes.get("Enabled", True) == endpoint.attributes["Enabled"]
                if same_user_data and same_attrs:
                    return endpoint
                raise sns_models.DuplicateSnsEndpointError(
                    f"Invalid parameter: Token Reason: Endpoint {endpoint.arn} already exists with the same Token, but different attributes."
                )
        endpoint = sns_models.PlatformEndpoint(
            self.account_id,
            self.region_name,
            application,
            custom_user_data,
            token,
            attributes,
        )
        self.platform_endpoints[endpoint.arn] = endpoint
        return endpoint

    backend_class.create_platform_endpoint = create_platform_endpoint


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    _patch_transactions()
    _patch_platform_endpoints()
    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialised(environ, start_response):
        with lock:
            # Consume the whole response inside the lock.
            return [b"".join(app(environ, start_response))]

    app_with_fidelity = Fidelity(serialised)
    print("AWS model: " + app_with_fidelity.describe(), file=sys.stderr, flush=True)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    # Keep-alive connections stay open as long as a test run (the SDKs pool
    # them); requests still run one at a time, under the lock.
    serve(
        app_with_fidelity,
        host=host,
        port=port,
        threads=16,
        channel_timeout=3600,
        connection_limit=1000,
        ident="moto",
        _quiet=True,
    )


if __name__ == "__main__":
    main()
