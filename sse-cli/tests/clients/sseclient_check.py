"""The hub as seen by Python's `sseclient-py` over a `requests` stream.

Streams a topic, publishes three events (a named one, a multi-line one, a
non-ASCII one) and checks their ids, types and data; closes; reconnects
with a `Last-Event-ID` header naming the first event and checks that
exactly the events after it come back, followed by a new live event.

Usage: HUB_URL=http://127.0.0.1:PORT python sseclient_check.py
"""

import os
import signal
import sys

import requests
import sseclient

HUB = os.environ.get("HUB_URL", "http://127.0.0.1:8080").rstrip("/")
ENDPOINT = HUB + "/.well-known/mercure"
TOPIC = "https://example.com/clients/sseclient-py"
# (connect, read) timeouts; the hub's heartbeat keeps an idle stream well
# within the read timeout.
TIMEOUT = (5, 10)


def log(text):
    print("[sseclient-py] " + text, flush=True)


def publish(**fields):
    fields["topic"] = TOPIC
    response = requests.post(ENDPOINT, data=fields, timeout=TIMEOUT)
    if response.status_code != 200:
        raise AssertionError(
            "publish answered %d: %r" % (response.status_code, response.text)
        )
    return response.text.strip()


def subscribe(headers=None):
    """Opens a stream the way sseclient-py's documentation shows."""
    headers = dict(headers or {})
    headers["Accept"] = "text/event-stream"
    response = requests.get(
        ENDPOINT, params={"topic": TOPIC}, headers=headers, stream=True, timeout=TIMEOUT
    )
    if response.status_code != 200:
        raise AssertionError("subscribe answered %d" % response.status_code)
    content_type = response.headers.get("Content-Type", "")
    if not content_type.startswith("text/event-stream"):
        raise AssertionError("subscribe answered Content-Type %r" % content_type)
    return response, sseclient.SSEClient(response)


def take(client, n):
    """The next n events as (id, type, data)."""
    got = []
    for event in client.events():
        got.append((event.id, event.event, event.data))
        if len(got) == n:
            return got
    raise AssertionError("the stream ended after %r" % (got,))


def same(got, expected, what):
    if got != expected:
        raise AssertionError(
            "%s:\n  got      %r\n  expected %r" % (what, got, expected)
        )


def main():
    response, client = subscribe()
    # The stream is registered once its head has arrived.
    expected = []
    named = publish(type="greeting", id="py-1", data="hello, named event")
    same(named, "py-1", "the id the hub kept")
    expected.append(("py-1", "greeting", "hello, named event"))
    multi = publish(id="py-2", data="line one\nline two\r\n\n  line four")
    expected.append((multi, "message", "line one\nline two\n\n  line four"))
    text = "non-ASCII: héllo wörld ✓ 日本語 😀"
    third = publish(data=text)
    expected.append((third, "message", text))
    same(take(client, 3), expected, "live events")
    client.close()
    response.close()
    log("live events arrived with their ids, types and exact data")

    response, client = subscribe({"Last-Event-ID": "py-1"})
    same(
        response.headers.get("Last-Event-ID"),
        "py-1",
        "the cursor the hub says it resumed from",
    )
    live = publish(type="greeting", data="after the reconnect")
    after = expected[1:] + [(live, "greeting", "after the reconnect")]
    same(take(client, 3), after, "events after Last-Event-ID: py-1")
    client.close()
    response.close()
    log("ok: resumed after Last-Event-ID with exactly the events after it")


def timed_out(signum, frame):
    raise TimeoutError("the check did not finish within 30 s")


if __name__ == "__main__":
    signal.signal(signal.SIGALRM, timed_out)
    signal.alarm(30)
    try:
        main()
    except Exception as error:  # noqa: BLE001 - report any failure the same way
        print("[sseclient-py] FAILED: %s: %s" % (type(error).__name__, error), file=sys.stderr)
        sys.exit(1)
