"""The local Functions host: routes, timers, queue triggers from Azurite, and Core Tools' endpoints,
all driven by a real FunctionApp's own metadata."""

import json
import time
import uuid

import azure.functions as func
import pytest
import requests

from shared.local.host import LocalHost, QueueSettings

pytestmark = pytest.mark.integration
QUEUE = f"work-{uuid.uuid4().hex[:8]}"
KEY = "local-host-test-function-key"


def build_app(calls):
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="items/{item_id}/{rest?}", methods=["GET", "POST"])
    def get_item(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(json.dumps({"params": dict(req.route_params), "q": req.params.get("q"),
                                             "body": req.get_body().decode()}), mimetype="application/json")

    @app.route(route="keyed", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
    def keyed(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("behind the key")

    @app.route(route="admin-only", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
    def admin_only(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("behind the master key")

    @app.timer_trigger(arg_name="timer", schedule="*/1 * * * * *")
    def tick(timer: func.TimerRequest) -> None:
        calls.append(("tick", timer.past_due))

    @app.queue_trigger(arg_name="msg", queue_name=QUEUE, connection="PLATFORM_STORAGE")
    def work(msg: func.QueueMessage) -> None:
        body = msg.get_body().decode()
        calls.append(("work", body, msg.dequeue_count))
        if body.startswith("fail"):
            raise RuntimeError("cannot do " + body)

    @app.event_grid_trigger(arg_name="event")
    def on_event(event: func.EventGridEvent) -> None:
        calls.append(("event", event.event_type, event.subject, event.get_json()))
        if event.subject == "fail":
            raise RuntimeError("handler failed")

    return app


@pytest.fixture(scope="module")
def served(azurite):
    from shared.adapters import HttpOptions
    from shared.adapters.storage import AzureStorage

    calls = []
    storage = AzureStorage(connection_string=azurite.connection_string, http=HttpOptions(max_retries=0, timeout=5))
    host = LocalHost(build_app(calls), port=0, storage=storage, function_key=KEY,
                     queue_settings=QueueSettings(max_dequeue_count=2, visibility_timeout=1, max_polling_interval=0.2))
    url = host.start()
    yield url, calls, storage
    host.stop()


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_http_functions_are_served_on_their_routes_with_route_params(served):
    url, _, _ = served
    r = requests.get(f"{url}/api/items/42/extra?q=hello", timeout=5)
    assert r.status_code == 200
    assert r.json() == {"params": {"item_id": "42", "rest": "extra"}, "q": "hello", "body": ""}
    assert requests.get(f"{url}/api/items/42", timeout=5).json()["params"] == {"item_id": "42"}


def test_unknown_routes_and_methods_get_clear_errors(served):
    url, _, _ = served
    assert requests.get(f"{url}/api/nothing", timeout=5).status_code == 404
    assert requests.delete(f"{url}/api/items/1", timeout=5).status_code == 405


def test_timers_fire_on_their_schedule(served):
    _, calls, _ = served
    assert wait_for(lambda: any(c[0] == "tick" for c in calls), timeout=3)


def test_a_timer_runs_now_through_the_admin_endpoint(served):
    url, calls, _ = served
    before = sum(c[0] == "tick" for c in calls)
    assert requests.post(f"{url}/admin/functions/tick", json={}, timeout=5).status_code == 202
    assert wait_for(lambda: sum(c[0] == "tick" for c in calls) > before, timeout=3)


def test_queue_messages_trigger_the_function_and_are_deleted(served):
    url, calls, storage = served
    assert requests.post(f"{url}/admin/functions/work", json={"input": "job-1"}, timeout=5).status_code == 202
    assert wait_for(lambda: ("work", "job-1", 1) in calls)
    assert wait_for(lambda: storage.queue_depth(QUEUE) == 0)


def test_a_failing_message_is_retried_then_moved_to_the_poison_queue(served):
    _, calls, storage = served
    storage.send(QUEUE, "fail-once-and-again")
    assert wait_for(lambda: ("work", "fail-once-and-again", 2) in calls, timeout=15)
    assert wait_for(lambda: storage.queue_depth(f"{QUEUE}-poison") == 1)
    poisoned = storage.receive(f"{QUEUE}-poison")
    assert poisoned[0].body == "fail-once-and-again"


def test_event_grid_subscription_validation_is_answered(served):
    url, _, _ = served
    body = [{"id": "1", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "subject": "",
             "data": {"validationCode": "abc-123"}, "dataVersion": "1", "eventTime": "2026-11-25T10:00:00Z"}]
    r = requests.post(f"{url}/runtime/webhooks/eventgrid?functionName=on_event", json=body,
                      headers={"aeg-event-type": "SubscriptionValidation"}, timeout=5)
    assert r.status_code == 200 and r.json() == {"validationResponse": "abc-123"}


def test_event_grid_notifications_reach_the_function_in_both_schemas(served):
    url, calls, _ = served
    eg = [{"id": "e1", "topic": "/subscriptions/x/vaults/kv", "subject": "origin-dev-platform",
           "eventType": "Microsoft.KeyVault.CertificateNearExpiry", "eventTime": "2026-11-25T10:00:00.1234567Z",
           "data": {"ObjectName": "origin-dev-platform"}, "dataVersion": "1"}]
    r = requests.post(f"{url}/runtime/webhooks/eventgrid?functionName=on_event", json=eg,
                      headers={"aeg-event-type": "Notification"}, timeout=5)
    assert r.status_code == 200
    ce = {"specversion": "1.0", "id": "e2", "source": "/vaults/kv", "subject": "c2",
          "type": "Microsoft.KeyVault.CertificateExpired", "time": "2026-11-25T10:00:00Z", "data": {"a": 1}}
    r = requests.post(f"{url}/runtime/webhooks/eventgrid?functionName=on_event", json=ce,
                      headers={"aeg-event-type": "Notification"}, timeout=5)
    assert r.status_code == 200
    assert ("event", "Microsoft.KeyVault.CertificateNearExpiry", "origin-dev-platform",
            {"ObjectName": "origin-dev-platform"}) in calls
    assert ("event", "Microsoft.KeyVault.CertificateExpired", "c2", {"a": 1}) in calls


@pytest.mark.parametrize(
    ("case", "name", "headers", "body", "status"),
    [
        ("a failing handler asks Event Grid to redeliver", "on_event", {"aeg-event-type": "Notification"},
         [{"id": "f", "subject": "fail", "eventType": "X", "data": {}, "dataVersion": "1"}], 500),
        ("a malformed event is refused", "on_event", {"aeg-event-type": "Notification"}, [{"id": "x"}], 400),
        ("a body that is not JSON is refused", "on_event", {"aeg-event-type": "Notification"}, b"{nope", 400),
        ("a missing event type header is refused", "on_event", {}, [], 400),
        ("an unknown function is not found", "nope", {"aeg-event-type": "Notification"}, [], 404),
        ("a non Event Grid function is not found", "work", {"aeg-event-type": "Notification"}, [], 404),
    ],
)
def test_event_grid_endpoint_errors(served, case, name, headers, body, status):
    url, _, _ = served
    data = body if isinstance(body, bytes) else json.dumps(body)
    r = requests.post(f"{url}/runtime/webhooks/eventgrid?functionName={name}", data=data, headers=headers, timeout=5)
    assert r.status_code == status, case


def test_the_admin_endpoint_refuses_http_functions_and_unknown_names(served):
    url, _, _ = served
    assert requests.post(f"{url}/admin/functions/get_item", json={}, timeout=5).status_code == 400
    assert requests.post(f"{url}/admin/functions/missing", json={}, timeout=5).status_code == 404
    status = requests.get(f"{url}/admin/host/status", timeout=5).json()
    assert status["state"] == "Running" and "work" in status["functions"]


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        pytest.param("/api/keyed", {}, 401, id="a function-level route without a key is refused"),
        pytest.param("/api/keyed", {"x-functions-key": "wrong"}, 401, id="a wrong key is refused"),
        pytest.param("/api/keyed?code=wrong", {}, 401, id="a wrong code is refused"),
        pytest.param("/api/keyed", {"x-functions-key": KEY}, 200, id="the key in x-functions-key is accepted"),
        pytest.param(f"/api/keyed?code={KEY}", {}, 200, id="the key as ?code= is accepted"),
        pytest.param(f"/api/admin-only?code={KEY}", {}, 401, id="an admin-level route needs the master key"),
        pytest.param("/api/items/1", {}, 200, id="an anonymous route needs no key"),
    ],
)
def test_function_keys_are_enforced_as_the_azure_host_does_when_a_key_is_configured(served, path, headers, status):
    url, _, _ = served
    r = requests.get(f"{url}{path}", headers=headers, timeout=5)
    assert r.status_code == status
    if status == 401:
        assert r.content == b""


def test_without_a_configured_key_function_level_routes_are_open_as_with_core_tools():
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

    @app.route(route="open", methods=["GET"])
    def open_route(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("open")

    host = LocalHost(app, port=0)
    url = host.start()
    try:
        assert host.functions["open_route"].auth_level == "function"
        assert requests.get(f"{url}/api/open", timeout=5).text == "open"
    finally:
        host.stop()
