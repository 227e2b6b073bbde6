"""What real DynamoDB and SNS do that moto does not: a WSGI layer in front of
the emulator that models them (docs/ARCHITECTURE.md, "The emulator").

Every switch is an environment variable read at start, and can be changed
while the emulator runs (below, "Control").

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
  (DynamoDB), `Throttled` or `InternalError` (SNS). A `TransactWriteItems`
  can also fail (one fault in four) as DynamoDB throttles a transaction:
  `TransactionCanceledException` whose `CancellationReasons` carry
  `ThrottlingError` or `ProvisionedThroughputExceeded` at one item's
  position and `None` at the others.
- **Applied, then the answer lost** (EMULATOR_APPLIED_FAULT_RATE, a
  probability, default 0): that share of the successful `PutItem`,
  `UpdateItem`, `DeleteItem`, `TransactWriteItems` (DynamoDB) and
  `CreatePlatformEndpoint`, `SetEndpointAttributes`, `DeleteEndpoint`,
  `Publish` (SNS) is applied, and the client gets `500 InternalServerError`
  (DynamoDB) or `500 InternalError` (SNS) instead of the answer. A share of
  those (EMULATOR_APPLIED_TIMEOUT_SHARE, default 0.1) holds that 500 for
  EMULATOR_APPLIED_TIMEOUT_MS (default 2500, longer than the Rust SDK's 2 s
  attempt timeout), so the client times out first. The held items are
  released, and the emulator's lock is free, while the answer is held.
- **Idempotent transactions** (always on): a `TransactWriteItems` whose
  `ClientRequestToken` succeeded within the last EMULATOR_IDEMPOTENCY_WINDOW_S
  seconds (default 600, DynamoDB's 10 minutes) is answered as that first
  time, without being applied again, if the request is the same (its JSON,
  keys sorted); with other parameters it fails with
  `IdempotentParameterMismatchException`. While a request with that token is
  in flight, another gets `TransactionInProgressException`. A token whose
  transaction failed or was cancelled is not remembered: its retry is applied.
  `POST /moto-api/reset` forgets every token.
- **Latency** (EMULATOR_DYNAMODB_LATENCY_MS, EMULATOR_SNS_LATENCY_MS, default
  0): every DynamoDB or SNS call waits `FIXED` or `FIXED+RANDOM` ms (`1900`;
  `0+40` is 0 ms plus a uniform 0..40 ms) before it is served, outside the
  emulator's lock: concurrent calls overlap and finish in varied order.
- **Slow transactions** (EMULATOR_TRANSACTION_TIME_MS, default 0): a
  `TransactWriteItems` with a `ClientRequestToken`, once it is in flight,
  takes that long before it is applied (outside the emulator's lock), as a
  transaction slow inside DynamoDB: an SDK retry of it meanwhile (after its
  attempt timed out) gets `TransactionInProgressException`.
- **Index lag** (EMULATOR_INDEX_LAG_MS, default 0): a `Query` of a global
  secondary index does not see items written within that many milliseconds.
- **Refused push tokens** (EMULATOR_REFUSED_TOKEN_PREFIX, default off): SNS
  answers `CreatePlatformEndpoint` for a token starting with it with
  `InvalidParameter`, as it does for tokens the push service rejects (moto
  accepts every token).

Control: `GET /fidelity/settings` answers every switch as JSON;
`POST /fidelity/settings` with a JSON object of some of them changes those
(all or none: a bad value is a 400 and changes nothing) and answers them all:

    {"conflicts": true, "fault_rate": 0.0, "applied_fault_rate": 0.0,
     "applied_timeout_share": 0.1, "applied_timeout_ms": 2500,
     "idempotency_window_s": 600, "transaction_time_ms": 0, "index_lag_ms": 0,
     "dynamodb_latency_ms": "0", "sns_latency_ms": "0+40",
     "refused_token_prefix": ""}

Latencies may also be given as numbers (fixed ms). Requests to `/fidelity/`
are never delayed or faulted. A request uses the switches as they were when
it arrived.
"""

import io
import json
import math
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
DYNAMO_APPLIED_OPS = SINGLE_WRITES + ("TransactWriteItems",)
DYNAMO_FAULTS = (
    (400, "ThrottlingException", "Rate of requests exceeds the allowed throughput."),
    (400, "ProvisionedThroughputExceededException", "The level of configured provisioned throughput for the table was exceeded."),
    (500, "InternalServerError", "Internal server error"),
)
# Why DynamoDB throttles one item of a transaction (CancellationReasons).
THROTTLED_ITEM = (
    ("ThrottlingError", "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table or index so please try again shortly."),
    ("ProvisionedThroughputExceeded", "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."),
)
SNS_DATA_OPS = (
    "Publish",
    "CreatePlatformEndpoint",
    "GetEndpointAttributes",
    "SetEndpointAttributes",
    "DeleteEndpoint",
)
SNS_APPLIED_OPS = ("CreatePlatformEndpoint", "SetEndpointAttributes", "DeleteEndpoint", "Publish")
SNS_FAULTS = (
    # ThrottledException, as SNS models it: 429, code Throttled (which the
    # functions' SNS client must retry itself), and the query protocol's own.
    (429, "Throttled", "Rate exceeded"),
    (400, "ThrottlingException", "Rate exceeded"),
    (500, "InternalError", "Internal error"),
)


# -- switches -----------------------------------------------------------------


def _number(value, name, most=None):
    if isinstance(value, bool):
        raise ValueError("{}: a number, not {!r}".format(name, value))
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ValueError("{}: a number, not {!r}".format(name, value)) from None
    if not math.isfinite(number) or number < 0 or (most is not None and number > most):
        bounds = "between 0 and {}".format(most) if most is not None else "0 or more"
        raise ValueError("{}: {} expected, not {!r}".format(name, bounds, value))
    return number


def _flag(value, name):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("{}: true or false, not {!r}".format(name, value))


def _probability(value, name):
    return _number(value, name, most=1)


def _ms(value, name):
    return _number(value, name)


def _latency(value, name):
    """`FIXED` or `FIXED+RANDOM` (ms) -> (fixed, random)."""
    if isinstance(value, str) and "+" in value:
        fixed, spread = value.split("+", 1)
        return _number(fixed, name), _number(spread, name)
    return _number(value, name), 0.0


def _text(value, name):
    if not isinstance(value, str):
        raise ValueError("{}: a string, not {!r}".format(name, value))
    return value


def _plain(number):
    return int(number) if float(number).is_integer() else number


def _show_latency(latency):
    fixed, spread = latency
    return "{}+{}".format(_plain(fixed), _plain(spread)) if spread else str(_plain(fixed))


# name in the control endpoint's JSON -> (environment variable, default, parse, show)
SWITCHES = {
    "conflicts": ("EMULATOR_CONFLICTS", "1", _flag, bool),
    "fault_rate": ("EMULATOR_FAULT_RATE", "0", _probability, float),
    "applied_fault_rate": ("EMULATOR_APPLIED_FAULT_RATE", "0", _probability, float),
    "applied_timeout_share": ("EMULATOR_APPLIED_TIMEOUT_SHARE", "0.1", _probability, float),
    "applied_timeout_ms": ("EMULATOR_APPLIED_TIMEOUT_MS", "2500", _ms, _plain),
    "idempotency_window_s": ("EMULATOR_IDEMPOTENCY_WINDOW_S", "600", _ms, _plain),
    "transaction_time_ms": ("EMULATOR_TRANSACTION_TIME_MS", "0", _ms, _plain),
    "index_lag_ms": ("EMULATOR_INDEX_LAG_MS", "0", _ms, _plain),
    "dynamodb_latency_ms": ("EMULATOR_DYNAMODB_LATENCY_MS", "0", _latency, _show_latency),
    "sns_latency_ms": ("EMULATOR_SNS_LATENCY_MS", "0", _latency, _show_latency),
    "refused_token_prefix": ("EMULATOR_REFUSED_TOKEN_PREFIX", "", _text, str),
}


def settings_from_env(environ):
    settings = {}
    for name, (var, default, parse, _) in SWITCHES.items():
        raw = environ.get(var)
        if raw is None or (raw.strip() == "" and parse is not _flag and parse is not _text):
            raw = default
        try:
            settings[name] = parse(raw, var)
        except ValueError as e:
            raise SystemExit("fidelity: {}".format(e)) from None
    return settings


class Fidelity:
    """Wraps the serialised emulator app `inner`."""

    def __init__(self, inner, environ=os.environ):
        self.inner = inner
        # The switches; replaced whole (never changed in place) when changed.
        self.settings = settings_from_env(environ)
        self.lock = threading.Lock()
        # item key -> [transactions holding it, single writes holding it]
        self.held = {}
        # item key -> when it was last written (for index lag)
        self.written = {}
        # table name -> its key attribute names, learnt from CreateTable
        self.schemas = {}
        # ClientRequestToken -> (request, answer, until) of a transaction that succeeded
        self.tokens = {}
        # ClientRequestToken -> request, of a transaction in flight
        self.tokens_in_flight = {}

    def describe(self):
        s = self.settings
        return (
            "conflicts {}, fault rate {}, applied fault rate {} ({} of them held {} ms), "
            "transactions {} ms, index lag {} ms, latency DynamoDB {} ms, SNS {} ms"
        ).format(
            "on" if s["conflicts"] else "off",
            s["fault_rate"],
            s["applied_fault_rate"],
            s["applied_timeout_share"],
            _plain(s["applied_timeout_ms"]),
            _plain(s["transaction_time_ms"]),
            _plain(s["index_lag_ms"]),
            _show_latency(s["dynamodb_latency_ms"]),
            _show_latency(s["sns_latency_ms"]),
        )

    # -- WSGI ---------------------------------------------------------------

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        s = self.settings
        if path.startswith("/fidelity/"):
            status, headers, out = self.control(path, environ.get("REQUEST_METHOD", "GET"), body)
        elif target.startswith("DynamoDB_"):
            delay(s["dynamodb_latency_ms"])
            status, headers, out = self.dynamodb(target.split(".", 1)[1], body, environ, s)
        elif "/sns/" in environ.get("HTTP_AUTHORIZATION", ""):
            delay(s["sns_latency_ms"])
            status, headers, out = self.sns(body, environ, s)
        else:
            if path == "/moto-api/reset":
                self.forget()
            status, headers, out = self.call(environ)
        start_response(status, headers)
        return [out]

    def call(self, environ):
        captured = {}

        def start_response(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers

        out = b"".join(self.inner(environ, start_response))
        return captured["status"], captured["headers"], out

    # -- control --------------------------------------------------------------

    def control(self, path, method, body):
        if path.rstrip("/") != "/fidelity/settings":
            return json_response(404, {"error": "no such resource: " + path})
        if method == "POST":
            try:
                changes = json.loads(body or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("a JSON object of switches expected")
                unknown = sorted(set(changes) - set(SWITCHES))
                if unknown:
                    raise ValueError("unknown switches {} (known: {})".format(unknown, sorted(SWITCHES)))
                parsed = {name: SWITCHES[name][2](value, name) for name, value in changes.items()}
            except ValueError as e:
                return json_response(400, {"error": str(e)})
            with self.lock:
                self.settings = {**self.settings, **parsed}
        elif method != "GET":
            return json_response(405, {"error": "GET or POST"})
        s = self.settings
        return json_response(200, {name: SWITCHES[name][3](s[name]) for name in SWITCHES})

    def forget(self):
        """What moto's reset wipes, fidelity's memory of it goes too."""
        with self.lock:
            self.tokens.clear()
            self.written.clear()

    # -- DynamoDB -----------------------------------------------------------

    def dynamodb(self, op, body, environ, s):
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return self.call(environ)
        if op == "CreateTable":
            self.learn_schema(request)
        if op in DYNAMO_DATA_OPS and chance(s["fault_rate"]):
            return self.dynamo_fault(op, request)
        token = request.get("ClientRequestToken") if op == "TransactWriteItems" else None
        if token is not None:
            canonical = json.dumps(request, sort_keys=True, separators=(",", ":"))
            refused = self.claim_token(token, canonical)
            if refused is not None:
                return refused
        answer = None
        try:
            if token is not None:
                delay((s["transaction_time_ms"], 0))
            answer = self.apply(op, request, environ, s)
        finally:
            if token is not None:
                self.settle_token(token, canonical, answer, s)
        if op in DYNAMO_APPLIED_OPS and answer[0].startswith("200") and chance(s["applied_fault_rate"]):
            return lose_answer(s, dynamo_error(500, "InternalServerError", "Internal server error"))
        return answer

    def dynamo_fault(self, op, request):
        kinds = len(DYNAMO_FAULTS) + (1 if op == "TransactWriteItems" else 0)
        kind = random.randrange(kinds)
        if kind < len(DYNAMO_FAULTS):
            return dynamo_error(*DYNAMO_FAULTS[kind])
        count = len(request.get("TransactItems", [])) or 1
        code, message = random.choice(THROTTLED_ITEM)
        return cancelled(count, {random.randrange(count): (code, message)})

    def apply(self, op, request, environ, s):
        """The request as moto answers it, with the conflicts and lag of DynamoDB."""
        writes = self.items_of(op, request)
        if op == "BatchWriteItem" and s["conflicts"]:
            return self.batch_write(request, writes, environ, s)
        holding = []
        try:
            if s["conflicts"] and writes:
                refused = self.hold(op, writes, holding)
                if refused is not None:
                    return refused
            status, headers, out = self.call(environ)
            if status.startswith("200"):
                self.mark_written((k for k, kind in writes if kind != "check"), s)
                if op == "Query" and s["index_lag_ms"] and request.get("IndexName"):
                    out, headers = self.hide_recent(request, out, headers, s)
            return status, headers, out
        finally:
            self.release(holding)

    def claim_token(self, token, canonical):
        """The answer to a transaction whose token is known, or None (then it
        is in flight until `settle_token`)."""
        now = time.monotonic()
        with self.lock:
            if token in self.tokens_in_flight:
                if self.tokens_in_flight[token] != canonical:
                    return idempotent_mismatch()
                return dynamo_error(
                    400,
                    "TransactionInProgressException",
                    "The transaction with the given request token is already in progress.",
                )
            known = self.tokens.get(token)
            if known is not None and known[2] > now:
                if known[0] != canonical:
                    return idempotent_mismatch()
                status, headers, out = known[1]
                return status, fresh_request_id(headers), out
            self.tokens.pop(token, None)
            self.tokens_in_flight[token] = canonical
        return None

    def settle_token(self, token, canonical, answer, s):
        now = time.monotonic()
        with self.lock:
            self.tokens_in_flight.pop(token, None)
            if answer is not None and answer[0].startswith("200"):
                self.tokens[token] = (canonical, answer, now + s["idempotency_window_s"])
                if len(self.tokens) > 10_000:
                    self.tokens = {t: v for t, v in self.tokens.items() if v[2] > now}

    def hold(self, op, writes, holding):
        """Holds the items of a write, or answers the conflict it meets."""
        transaction = op == "TransactWriteItems"
        with self.lock:
            if transaction:
                clashes = [i for i, (k, _) in enumerate(writes) if k in self.held]
                if clashes:
                    return cancelled(len(writes), {
                        i: ("TransactionConflict", "Transaction is ongoing for the item")
                        for i in clashes
                    })
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

    def batch_write(self, request, writes, environ, s):
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
                self.mark_written((k for k, _ in holding), s)
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

    def mark_written(self, keys, s):
        lag = s["index_lag_ms"] / 1000.0
        if not lag:
            return
        now = time.monotonic()
        with self.lock:
            for k in keys:
                self.written[k] = now
            if len(self.written) > 100_000:
                cutoff = now - lag
                self.written = {k: t for k, t in self.written.items() if t > cutoff}

    def hide_recent(self, request, out, headers, s):
        """An index query's answer without the items written too recently."""
        answer = json.loads(out or b"{}")
        cutoff = time.monotonic() - s["index_lag_ms"] / 1000.0
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

    def sns(self, body, environ, s):
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
        action = form.get("Action")
        prefix = s["refused_token_prefix"]
        refused = (
            action == "CreatePlatformEndpoint"
            and prefix
            and form.get("Token", "").startswith(prefix)
        )
        if refused:
            return sns_error(400, "InvalidParameter", "Invalid parameter: Token Reason: the push service refused it")
        if action in SNS_DATA_OPS and chance(s["fault_rate"]):
            status, code, message = random.choice(SNS_FAULTS)
            return sns_error(status, code, message)
        answer = self.call(environ)
        if action in SNS_APPLIED_OPS and answer[0].startswith("200") and chance(s["applied_fault_rate"]):
            return lose_answer(s, sns_error(500, "InternalError", "Internal error"))
        return answer


def chance(rate):
    return rate > 0 and random.random() < rate


def delay(latency):
    """Waits a call's latency, (fixed, random) ms; never inside a lock."""
    fixed, spread = latency
    ms = fixed + (random.uniform(0, spread) if spread else 0)
    if ms > 0:
        time.sleep(ms / 1000.0)


def lose_answer(s, error):
    """The error that replaces an applied request's answer; now, or after
    holding it long enough for the client to time out. Called with no lock
    held and the request's items released."""
    if chance(s["applied_timeout_share"]):
        time.sleep(s["applied_timeout_ms"] / 1000.0)
    return error


def sns_error(status, code, message):
    xml = (
        '<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
        "<Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error>"
        "<RequestId>{}</RequestId></ErrorResponse>"
    ).format("Sender" if status < 500 else "Receiver", code, message, uuid.uuid4())
    body = xml.encode()
    return response_status(status), [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))], body


def response_status(code):
    return {
        200: "200 OK",
        400: "400 Bad Request",
        404: "404 Not Found",
        405: "405 Method Not Allowed",
        500: "500 Internal Server Error",
    }[code]


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


def idempotent_mismatch():
    return dynamo_error(
        400,
        "IdempotentParameterMismatchException",
        "DynamoDB rejected the request because you retried a request with a different payload but with an idempotent token that was already used.",
    )


def cancelled(count, reasons_at):
    """TransactionCanceledException of `count` items; `reasons_at`: position ->
    (code, message), `None` elsewhere."""
    reasons = [
        {"Code": reasons_at[i][0], "Message": reasons_at[i][1]} if i in reasons_at else {"Code": "None"}
        for i in range(count)
    ]
    codes = ", ".join(r["Code"] for r in reasons)
    return json_response(400, {
        "__type": DYNAMO_ERROR + "TransactionCanceledException",
        "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]".format(codes),
        "CancellationReasons": reasons,
    })


def fresh_request_id(headers):
    return [(k, v) for k, v in headers if k.lower() != "x-amzn-requestid"] + [
        ("x-amzn-RequestId", str(uuid.uuid4()))
    ]


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
