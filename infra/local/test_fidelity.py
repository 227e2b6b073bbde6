"""Checks what infra/local/fidelity.py models, against an emulator of its own
(on a free port, started and stopped here), with boto3 without retries.

    .venv/bin/python infra/local/test_fidelity.py [NAME ...]

Runs every check (or those whose names contain one of NAME), prints
`N passed, M failed`, exits non-zero on a failure. About half a minute.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid

import boto3
import botocore.exceptions
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
URL = None
CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


# -- the emulator and its switches ---------------------------------------------


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_emulator():
    global URL
    port = free_port()
    URL = "http://127.0.0.1:{}".format(port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMULATOR_")}
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "emulator.py"), "127.0.0.1", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("emulator exited: " + proc.stderr.read().decode())
        try:
            urllib.request.urlopen(URL + "/moto-api/data.json", timeout=1).read()
            return proc
        except Exception:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("emulator did not start")


def stop_emulator(proc):
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def http(method, path, value=None):
    """(status, JSON answer) of a request to the emulator itself."""
    data = json.dumps(value).encode() if value is not None else None
    req = urllib.request.Request(URL + path, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            body = r.read()
            return r.status, json.loads(body) if body.strip().startswith(b"{") else body
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def settings(**changes):
    status, answer = http("POST", "/fidelity/settings", changes)
    assert status == 200, (status, answer)
    return answer


def client(service, read_timeout=10):
    return boto3.client(
        service,
        endpoint_url=URL,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=2,
            read_timeout=read_timeout,
            max_pool_connections=32,
        ),
    )


def code_of(e):
    return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]


def fails(call, **kwargs):
    """The ClientError a call must fail with."""
    try:
        call(**kwargs)
    except botocore.exceptions.ClientError as e:
        return e
    raise AssertionError("{} succeeded".format(getattr(call, "__name__", call)))


# -- DynamoDB helpers ----------------------------------------------------------


def new_table(db):
    name = "t-" + uuid.uuid4().hex[:8]
    db.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def add(table, pk, amount=1):
    return {"Update": {
        "TableName": table,
        "Key": {"pk": {"S": pk}},
        "UpdateExpression": "ADD n :a",
        "ExpressionAttributeValues": {":a": {"N": str(amount)}},
    }}


def counter(db, table, pk):
    item = db.get_item(TableName=table, Key={"pk": {"S": pk}}, ConsistentRead=True).get("Item")
    return None if item is None else int(item["n"]["N"])


def timed(call, **kwargs):
    start = time.monotonic()
    call(**kwargs)
    return time.monotonic() - start


# -- checks --------------------------------------------------------------------


@check
def control_endpoint_shape():
    status, s = http("GET", "/fidelity/settings")
    assert status == 200
    assert s == {
        "conflicts": True, "fault_rate": 0.0, "applied_fault_rate": 0.0,
        "applied_timeout_share": 0.1, "applied_timeout_ms": 2500,
        "idempotency_window_s": 600, "transaction_time_ms": 0, "index_lag_ms": 0,
        "dynamodb_latency_ms": "0", "sns_latency_ms": "0",
        "refused_token_prefix": "",
    }, s
    changed = settings(sns_latency_ms="0+40", fault_rate=0.25)
    assert changed["sns_latency_ms"] == "0+40" and changed["fault_rate"] == 0.25, changed
    assert settings(dynamodb_latency_ms=15)["dynamodb_latency_ms"] == "15"
    # All or nothing: one bad value changes none.
    status, answer = http("POST", "/fidelity/settings", {"fault_rate": 0.5, "applied_fault_rate": 2})
    assert status == 400 and "applied_fault_rate" in answer["error"], (status, answer)
    status, answer = http("POST", "/fidelity/settings", {"latency": "1"})
    assert status == 400 and "unknown" in answer["error"], (status, answer)
    assert http("GET", "/fidelity/settings")[1]["fault_rate"] == 0.25


@check
def throttled_transaction_is_cancelled_at_an_item():
    db = client("dynamodb")
    table = new_table(db)
    settings(fault_rate=1.0)
    kinds, shapes = set(), []
    for _ in range(80):
        e = fails(db.transact_write_items, TransactItems=[add(table, "a"), add(table, "b")])
        kinds.add(code_of(e))
        if code_of(e) == ("TransactionCanceledException", 400):
            shapes.append(e)
        if len(kinds) == 4 and len(shapes) >= 3:
            break
    assert kinds == {
        ("TransactionCanceledException", 400),
        ("ThrottlingException", 400),
        ("ProvisionedThroughputExceededException", 400),
        ("InternalServerError", 500),
    }, kinds
    for e in shapes:
        codes = [r["Code"] for r in e.response["CancellationReasons"]]
        assert len(codes) == 2 and codes.count("None") == 1, codes
        throttled = [c for c in codes if c != "None"][0]
        assert throttled in ("ThrottlingError", "ProvisionedThroughputExceeded"), codes
        message = e.response["Error"]["Message"]
        want = "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]".format(
            ", ".join(codes))
        assert message == want, message
    settings(fault_rate=0)
    assert counter(db, table, "a") is None and counter(db, table, "b") is None, "a fault applied"


@check
def applied_update_then_500():
    db = client("dynamodb")
    table = new_table(db)
    settings(applied_fault_rate=1.0, applied_timeout_share=0)
    e = fails(db.update_item, TableName=table, Key={"pk": {"S": "x"}},
              UpdateExpression="ADD n :a", ExpressionAttributeValues={":a": {"N": "1"}})
    assert code_of(e) == ("InternalServerError", 500), code_of(e)
    assert counter(db, table, "x") == 1  # reads are not faulted
    # A write that fails is not "applied": its own error comes through.
    e = fails(db.put_item, TableName=table, Item={"pk": {"S": "x"}},
              ConditionExpression="attribute_not_exists(pk)")
    assert code_of(e) == ("ConditionalCheckFailedException", 400), code_of(e)


@check
def applied_transaction_then_500_retry_gets_success_once():
    db = client("dynamodb")
    table = new_table(db)
    token = str(uuid.uuid4())
    request = dict(
        TransactItems=[add(table, "c"), {"Put": {"TableName": table, "Item": {"pk": {"S": "p"}}}}],
        ClientRequestToken=token,
    )
    settings(applied_fault_rate=1.0, applied_timeout_share=0)
    e = fails(db.transact_write_items, **request)
    assert code_of(e) == ("InternalServerError", 500), code_of(e)
    assert counter(db, table, "c") == 1, "not applied"
    # The SDK's retry (same token, same body) gets the success, applied once.
    db.transact_write_items(**request)
    settings(applied_fault_rate=0)
    answer = db.transact_write_items(**request)
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert counter(db, table, "c") == 1, counter(db, table, "c")
    # Another token is another transaction.
    db.transact_write_items(**{**request, "ClientRequestToken": str(uuid.uuid4())})
    assert counter(db, table, "c") == 2


@check
def same_token_other_parameters_mismatch():
    db = client("dynamodb")
    table = new_table(db)
    token = str(uuid.uuid4())
    db.transact_write_items(TransactItems=[add(table, "m", 1)], ClientRequestToken=token)
    e = fails(db.transact_write_items, TransactItems=[add(table, "m", 2)], ClientRequestToken=token)
    assert code_of(e) == ("IdempotentParameterMismatchException", 400), code_of(e)
    assert counter(db, table, "m") == 1


@check
def token_of_a_cancelled_transaction_is_not_remembered():
    db = client("dynamodb")
    table = new_table(db)
    request = dict(
        TransactItems=[
            {"ConditionCheck": {"TableName": table, "Key": {"pk": {"S": "gate"}},
                                "ConditionExpression": "attribute_exists(pk)"}},
            add(table, "f"),
        ],
        ClientRequestToken=str(uuid.uuid4()),
    )
    e = fails(db.transact_write_items, **request)
    assert code_of(e) == ("TransactionCanceledException", 400), code_of(e)
    assert [r["Code"] for r in e.response["CancellationReasons"]] == ["ConditionalCheckFailed", "None"]
    db.put_item(TableName=table, Item={"pk": {"S": "gate"}})
    db.transact_write_items(**request)
    assert counter(db, table, "f") == 1


@check
def same_token_in_flight_is_in_progress():
    db = client("dynamodb")
    big = new_table(db)
    for b in range(40):  # a Scan of these keeps the emulator's lock ~0.2 s
        db.batch_write_item(RequestItems={big: [
            {"PutRequest": {"Item": {"pk": {"S": "k{}-{}".format(b, i)}, "v": {"S": "x" * 300}}}}
            for i in range(25)
        ]})
    table = new_table(db)
    applied = 0
    for attempt in range(5):
        request = dict(TransactItems=[add(table, "i")], ClientRequestToken=str(uuid.uuid4()))
        answers = {}

        def send(name):
            try:
                db.transact_write_items(**request)
                answers[name] = "ok"
            except botocore.exceptions.ClientError as e:
                answers[name] = code_of(e)[0]

        blocker = threading.Thread(target=lambda: db.scan(TableName=big))
        first = threading.Thread(target=send, args=("first",))
        blocker.start()
        time.sleep(0.03 * (attempt + 1))
        first.start()
        time.sleep(0.03 * (attempt + 1))
        send("second")
        for t in (blocker, first):
            t.join(10)
        applied += 1
        assert counter(db, table, "i") == applied, (answers, counter(db, table, "i"))
        if sorted(answers.values()) == ["TransactionInProgressException", "ok"]:
            return
        assert sorted(answers.values()) == ["ok", "ok"], answers
    raise AssertionError("never saw TransactionInProgressException")


@check
def slow_transaction_in_progress_until_it_lands():
    db = client("dynamodb")
    table = new_table(db)
    settings(transaction_time_ms=600)
    try:
        request = dict(TransactItems=[add(table, "i")], ClientRequestToken=str(uuid.uuid4()))
        answers = {}

        def send():
            db.transact_write_items(**request)
            answers["first"] = "ok"

        first = threading.Thread(target=send)
        first.start()
        time.sleep(0.2)
        try:
            db.transact_write_items(**request)
            answers["meanwhile"] = "ok"
        except botocore.exceptions.ClientError as e:
            answers["meanwhile"] = code_of(e)[0]
        first.join(10)
        assert answers == {"first": "ok", "meanwhile": "TransactionInProgressException"}, answers
        db.transact_write_items(**request)  # once landed: its answer, not applied again
        assert counter(db, table, "i") == 1, counter(db, table, "i")
    finally:
        settings(transaction_time_ms=0)


@check
def applied_answer_held_without_holding_the_emulator():
    db = client("dynamodb")
    slow = client("dynamodb", read_timeout=5)
    table = new_table(db)
    settings(applied_fault_rate=1.0, applied_timeout_share=1.0, applied_timeout_ms=1500)
    outcome = {}

    def lost():
        start = time.monotonic()
        outcome["error"] = code_of(fails(
            slow.update_item, TableName=table, Key={"pk": {"S": "h"}},
            UpdateExpression="ADD n :a", ExpressionAttributeValues={":a": {"N": "1"}}))
        outcome["took"] = time.monotonic() - start

    t = threading.Thread(target=lost)
    t.start()
    time.sleep(0.3)
    settings(applied_fault_rate=0)  # the held request keeps the switches it came with
    # Meanwhile: the emulator serves, and the item is not held (no conflict).
    took = timed(db.transact_write_items, TransactItems=[add(table, "h")])
    assert took < 0.5, took
    assert counter(db, table, "h") == 2
    t.join(5)
    assert outcome.get("error") == ("InternalServerError", 500), outcome
    assert outcome["took"] >= 1.4, outcome
    # A client with a shorter timeout sees a timeout; the write is applied.
    settings(applied_fault_rate=1.0)
    impatient = client("dynamodb", read_timeout=0.5)
    try:
        impatient.put_item(TableName=table, Item={"pk": {"S": "t"}})
        raise AssertionError("answered")
    except botocore.exceptions.ReadTimeoutError:
        pass
    settings(applied_fault_rate=0)
    item = db.get_item(TableName=table, Key={"pk": {"S": "t"}}, ConsistentRead=True)
    assert "Item" in item


@check
def applied_sns_writes_then_500():
    sns = client("sns")
    app = sns.create_platform_application(
        Name="app-" + uuid.uuid4().hex[:6], Platform="GCM", Attributes={"PlatformCredential": "x"}
    )["PlatformApplicationArn"]
    settings(applied_fault_rate=1.0, applied_timeout_share=0)
    e = fails(sns.create_platform_endpoint, PlatformApplicationArn=app, Token="tok-1")
    assert code_of(e) == ("InternalError", 500), code_of(e)
    endpoints = sns.list_endpoints_by_platform_application(PlatformApplicationArn=app)["Endpoints"]
    assert [x["Attributes"]["Token"] for x in endpoints] == ["tok-1"], endpoints
    arn = endpoints[0]["EndpointArn"]
    e = fails(sns.set_endpoint_attributes, EndpointArn=arn, Attributes={"Enabled": "false"})
    assert code_of(e) == ("InternalError", 500)
    settings(applied_fault_rate=0)
    assert sns.get_endpoint_attributes(EndpointArn=arn)["Attributes"]["Enabled"] == "false"


@check
def latency_switch_at_run_time():
    db, sns = client("dynamodb"), client("sns")
    table = new_table(db)
    get = dict(TableName=table, Key={"pk": {"S": "l"}})
    assert min(timed(db.get_item, **get) for _ in range(3)) < 0.15
    assert settings(dynamodb_latency_ms="400")["dynamodb_latency_ms"] == "400"
    assert timed(db.get_item, **get) >= 0.4
    assert timed(sns.list_platform_applications) < 0.15  # SNS has its own
    start = time.monotonic()
    assert http("GET", "/fidelity/settings")[0] == 200  # never delayed
    assert time.monotonic() - start < 0.15
    settings(dynamodb_latency_ms="0", sns_latency_ms="300")
    assert timed(sns.list_platform_applications) >= 0.3
    assert min(timed(db.get_item, **get) for _ in range(3)) < 0.15


@check
def random_latency_overlaps_and_reorders():
    db = client("dynamodb")
    table = new_table(db)
    settings(dynamodb_latency_ms="0+300")
    finished, lock = [], threading.Lock()

    def get(i):
        db.get_item(TableName=table, Key={"pk": {"S": "r"}})
        with lock:
            finished.append(i)

    threads = [threading.Thread(target=get, args=(i,)) for i in range(10)]
    start = time.monotonic()
    for t in threads:
        t.start()
        time.sleep(0.01)
    for t in threads:
        t.join(5)
    wall = time.monotonic() - start
    assert sorted(finished) == list(range(10)), finished
    assert finished != sorted(finished), "finished in the order sent: {}".format(finished)
    assert wall < 0.8, "not overlapping: {:.2f} s".format(wall)


@check
def reset_forgets_tokens():
    db = client("dynamodb")
    table = new_table(db)
    request = dict(TransactItems=[add(table, "z")], ClientRequestToken=str(uuid.uuid4()))
    db.transact_write_items(**request)
    status, _ = http("POST", "/moto-api/reset", {})
    assert status == 200
    db.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    db.transact_write_items(**request)
    assert counter(db, table, "z") == 1, "the token outlived the reset"


@check
def token_remembered_for_the_window_only():
    db = client("dynamodb")
    table = new_table(db)
    settings(idempotency_window_s=1)
    request = dict(TransactItems=[add(table, "w")], ClientRequestToken=str(uuid.uuid4()))
    db.transact_write_items(**request)
    db.transact_write_items(**request)
    assert counter(db, table, "w") == 1
    time.sleep(1.1)
    db.transact_write_items(**request)
    assert counter(db, table, "w") == 2


@check
def control_requests_never_faulted_or_delayed():
    settings(fault_rate=1.0, applied_fault_rate=1.0, dynamodb_latency_ms="500", sns_latency_ms="500")
    start = time.monotonic()
    for _ in range(20):
        assert http("GET", "/fidelity/settings")[0] == 200
    assert time.monotonic() - start < 1.0


def main():
    wanted = sys.argv[1:]
    proc = start_emulator()
    watchdog = threading.Timer(150, lambda: (print("timed out", flush=True), stop_emulator(proc), os._exit(2)))
    watchdog.daemon = True
    watchdog.start()
    passed = failed = 0
    try:
        defaults = http("GET", "/fidelity/settings")[1]
        for fn in CHECKS:
            if wanted and not any(w in fn.__name__ for w in wanted):
                continue
            start = time.monotonic()
            try:
                fn()
                passed += 1
                print("ok   {} ({:.1f} s)".format(fn.__name__, time.monotonic() - start), flush=True)
            except Exception:
                failed += 1
                print("FAIL {}".format(fn.__name__), flush=True)
                traceback.print_exc()
            finally:
                settings(**defaults)
    finally:
        watchdog.cancel()
        stop_emulator(proc)
    print("{} passed, {} failed".format(passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
