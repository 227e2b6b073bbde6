"""What real DynamoDB and SNS do that moto does not: a WSGI layer in front of
the emulator that models them (docs/ARCHITECTURE.md, "The local AWS").

- **Transaction conflicts** (on unless EMULATOR_CONFLICTS=0). While a request
  is in flight (queued behind the emulator's lock or running), the items it
  writes or condition-checks are held. A `TransactWriteItems` meeting a held
  item is cancelled with `TransactionConflict` at that item's position; a
  `PutItem`/`UpdateItem`/`DeleteItem` meeting an item held by a transaction
  fails with `TransactionConflictException`; a `BatchWriteItem` returns such
  items unprocessed. As DynamoDB documents; stricter, since queueing counts as
  in flight.
- **Faults** (EMULATOR_FAULT_RATE, a probability, default 0): data-plane
  requests fail before they are applied with `ThrottlingException`,
  `ProvisionedThroughputExceededException` or `InternalServerError`
  (DynamoDB), `Throttled` or `InternalError` (SNS).
- **Index lag** (EMULATOR_INDEX_LAG_MS, default 0): a `Query` of a global
  secondary index does not see items written within that many milliseconds.
- **Refused push tokens** (EMULATOR_REFUSED_TOKEN_PREFIX, default off): SNS
  answers `CreatePlatformEndpoint` for a token starting with it with
  `InvalidParameter`, as it does for tokens the push service rejects (moto
  accepts every token).
"""

import io
import json
import os
import random
import threading
import time
import urllib.parse
import uuid

DYNAMO_ERROR = "com.amazonaws.dynamodb.v20120810#"
SINGLE_WRITES = ("PutItem", "UpdateItem", "DeleteItem")
DYNAMO_DATA_OPS = SINGLE_WRITES + (
    "GetItem",
    "Query",
    "Scan",
    "TransactWriteItems",
    "BatchWriteItem",
)
DYNAMO_FAULTS = (
    (400, "ThrottlingException", "Rate of requests exceeds the allowed throughput."),
    (400, "ProvisionedThroughputExceededException", "The level of configured provisioned throughput for the table was exceeded."),
    (500, "InternalServerError", "Internal server error"),
)
SNS_DATA_OPS = (
    "Publish",
    "CreatePlatformEndpoint",
    "GetEndpointAttributes",
    "SetEndpointAttributes",
    "DeleteEndpoint",
)
SNS_FAULTS = (
    (400, "Throttled", "Rate exceeded"),
    (500, "InternalError", "Internal error"),
)


def _flag(name, default):
    return os.environ.get(name, default).strip().lower() not in ("0", "false", "no", "off", "")


class Fidelity:
    """Wraps the serialised emulator app `inner`."""

    def __init__(self, inner):
        self.inner = inner
        self.conflicts = _flag("EMULATOR_CONFLICTS", "1")
        self.fault_rate = float(os.environ.get("EMULATOR_FAULT_RATE", "0") or 0)
        self.refused_prefix = os.environ.get("EMULATOR_REFUSED_TOKEN_PREFIX", "")
        self.index_lag = float(os.environ.get("EMULATOR_INDEX_LAG_MS", "0") or 0) / 1000.0
        self.lock = threading.Lock()
        # item key -> [transactions holding it, single writes holding it]
        self.held = {}
        # item key -> when it was last written (for index lag)
        self.written = {}
        # table name -> its key attribute names, learnt from CreateTable
        self.schemas = {}

    def describe(self):
        return "conflicts {}, fault rate {}, index lag {} ms".format(
            "on" if self.conflicts else "off", self.fault_rate, int(self.index_lag * 1000)
        )

    # -- WSGI ---------------------------------------------------------------

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        if target.startswith("DynamoDB_"):
            status, headers, out = self.dynamodb(target.split(".", 1)[1], body, environ)
        elif "/sns/" in environ.get("HTTP_AUTHORIZATION", ""):
            status, headers, out = self.sns(body, environ)
        else:
            status, headers, out = self.call(environ)
        start_response(status, headers)
        return [out]

    def call(self, environ):
        captured = {}

        def start_response(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers

        out = b"".join(self.inner(environ, start_response))
        return captured["status"], captured["headers"], out

    # -- DynamoDB -----------------------------------------------------------

    def dynamodb(self, op, body, environ):
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return self.call(environ)
        if op == "CreateTable":
            self.learn_schema(request)
        if op in DYNAMO_DATA_OPS and self.fault():
            status, code, message = random.choice(DYNAMO_FAULTS)
            return dynamo_error(status, code, message)
        writes = self.items_of(op, request)
        if op == "BatchWriteItem" and self.conflicts:
            return self.batch_write(request, writes, environ)
        holding = []
        try:
            if self.conflicts and writes:
                refused = self.hold(op, writes, holding)
                if refused is not None:
                    return refused
            status, headers, out = self.call(environ)
            if status.startswith("200"):
                self.mark_written(k for k, kind in writes if kind != "check")
                if op == "Query" and self.index_lag and request.get("IndexName"):
                    out, headers = self.hide_recent(request, out, headers)
            return status, headers, out
        finally:
            self.release(holding)

    def hold(self, op, writes, holding):
        """Holds the items of a write, or answers the conflict it meets."""
        transaction = op == "TransactWriteItems"
        with self.lock:
            if transaction:
                clashes = [i for i, (k, _) in enumerate(writes) if k in self.held]
                if clashes:
                    return cancelled(len(writes), clashes)
            else:
                for k, _ in writes:
                    if self.held.get(k, [0, 0])[0]:
                        return dynamo_error(
                            400,
                            "TransactionConflictException",
                            "Transaction is ongoing for the item",
                        )
            slot = 0 if transaction else 1
            for k, _ in writes:
                self.held.setdefault(k, [0, 0])[slot] += 1
                holding.append((k, slot))
        return None

    def release(self, holding):
        if not holding:
            return
        with self.lock:
            for k, slot in holding:
                counts = self.held.get(k)
                if counts is None:
                    continue
                counts[slot] -= 1
                if counts == [0, 0]:
                    del self.held[k]

    def batch_write(self, request, writes, environ):
        """Applies the items no transaction holds; returns the rest unprocessed."""
        tables = request.get("RequestItems", {})
        flat = [(t, r) for t, requests in tables.items() for r in requests]
        holding, kept, unprocessed = [], {}, {}
        with self.lock:
            for (table, req), (k, _) in zip(flat, writes):
                if self.held.get(k, [0, 0])[0]:
                    unprocessed.setdefault(table, []).append(req)
                else:
                    kept.setdefault(table, []).append(req)
                    self.held.setdefault(k, [0, 0])[1] += 1
                    holding.append((k, 1))
        try:
            if kept:
                status, headers, out = self.call(
                    with_body(environ, {**request, "RequestItems": kept})
                )
                if not status.startswith("200"):
                    return status, headers, out
                self.mark_written(k for k, _ in holding)
                answer = json.loads(out or b"{}")
            else:
                answer = {"UnprocessedItems": {}}
            left = answer.setdefault("UnprocessedItems", {})
            for table, requests in unprocessed.items():
                left.setdefault(table, []).extend(requests)
            return json_response(200, answer)
        finally:
            self.release(holding)

    def learn_schema(self, request):
        names = {k.get("KeyType"): k.get("AttributeName") for k in request.get("KeySchema", [])}
        self.schemas[request.get("TableName")] = (names.get("HASH", "pk"), names.get("RANGE"))

    def key(self, table, item):
        hash_name, range_name = self.schemas.get(table, ("pk", "sk"))
        parts = [table, json.dumps(item.get(hash_name), sort_keys=True)]
        if range_name:
            parts.append(json.dumps(item.get(range_name), sort_keys=True))
        return "\x00".join(parts)

    def items_of(self, op, request):
        """(item key, kind) of every item a write touches, in request order."""
        if op in ("PutItem",):
            return [(self.key(request["TableName"], request.get("Item", {})), "write")]
        if op in ("UpdateItem", "DeleteItem"):
            return [(self.key(request["TableName"], request.get("Key", {})), "write")]
        if op == "TransactWriteItems":
            out = []
            for entry in request.get("TransactItems", []):
                kind, action = next(iter(entry.items()))
                item = action.get("Item") if kind == "Put" else action.get("Key")
                out.append(
                    (self.key(action.get("TableName"), item or {}),
                     "check" if kind == "ConditionCheck" else "write")
                )
            return out
        if op == "BatchWriteItem":
            out = []
            for table, requests in request.get("RequestItems", {}).items():
                for r in requests:
                    item = r.get("PutRequest", {}).get("Item") or r.get("DeleteRequest", {}).get("Key") or {}
                    out.append((self.key(table, item), "write"))
            return out
        return []

    def mark_written(self, keys):
        if not self.index_lag:
            return
        now = time.monotonic()
        with self.lock:
            for k in keys:
                self.written[k] = now
            if len(self.written) > 100_000:
                cutoff = now - self.index_lag
                self.written = {k: t for k, t in self.written.items() if t > cutoff}

    def hide_recent(self, request, out, headers):
        """An index query's answer without the items written too recently."""
        answer = json.loads(out or b"{}")
        cutoff = time.monotonic() - self.index_lag
        table = request.get("TableName")
        with self.lock:
            visible = [
                i for i in answer.get("Items", [])
                if self.written.get(self.key(table, i), 0) <= cutoff
            ]
        hidden = len(answer.get("Items", [])) - len(visible)
        if not hidden:
            return out, headers
        answer["Items"] = visible
        answer["Count"] = len(visible)
        body = json.dumps(answer).encode()
        return body, replace_length(headers, body)

    # -- SNS ------------------------------------------------------------------

    def sns(self, body, environ):
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
        action = form.get("Action")
        refused = (
            action == "CreatePlatformEndpoint"
            and self.refused_prefix
            and form.get("Token", "").startswith(self.refused_prefix)
        )
        if refused:
            return sns_error(400, "InvalidParameter", "Invalid parameter: Token Reason: the push service refused it")
        if action in SNS_DATA_OPS and self.fault():
            status, code, message = random.choice(SNS_FAULTS)
            return sns_error(status, code, message)
        return self.call(environ)

    def fault(self):
        return self.fault_rate > 0 and random.random() < self.fault_rate


def sns_error(status, code, message):
    xml = (
        '<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
        "<Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error>"
        "<RequestId>{}</RequestId></ErrorResponse>"
    ).format("Sender" if status < 500 else "Receiver", code, message, uuid.uuid4())
    body = xml.encode()
    return response_status(status), [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))], body


def response_status(code):
    return {200: "200 OK", 400: "400 Bad Request", 500: "500 Internal Server Error"}[code]


def json_response(code, value):
    body = json.dumps(value).encode()
    headers = [
        ("Content-Type", "application/x-amz-json-1.0"),
        ("x-amzn-RequestId", str(uuid.uuid4())),
        ("Content-Length", str(len(body))),
    ]
    return response_status(code), headers, body


def dynamo_error(code, name, message):
    return json_response(code, {"__type": DYNAMO_ERROR + name, "message": message})


def cancelled(count, clashes):
    reasons = [
        {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
        if i in clashes
        else {"Code": "None"}
        for i in range(count)
    ]
    codes = ", ".join(r["Code"] for r in reasons)
    return json_response(400, {
        "__type": DYNAMO_ERROR + "TransactionCanceledException",
        "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]".format(codes),
        "CancellationReasons": reasons,
    })


def with_body(environ, value):
    body = json.dumps(value).encode()
    copy = dict(environ)
    copy["wsgi.input"] = io.BytesIO(body)
    copy["CONTENT_LENGTH"] = str(len(body))
    return copy


def replace_length(headers, body):
    return [(k, v) for k, v in headers if k.lower() != "content-length"] + [
        ("Content-Length", str(len(body)))
    ]
