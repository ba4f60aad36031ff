"""`mfx apply` as one streamed request (``POST .../apply/stream``): the daemon admits each object
as its line arrives and stores nothing before the whole body has; the CLI aborts the stream,
applying nothing, for whatever the one request cannot carry, and falls back to the List."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from anyio.abc import TaskGroup
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mfx.cli import bulk_client
from mfx.cli.client import encode_json
from mfx.server import bodies
from mfx.server.api_bulk import BULK_APPLY_PATH, BULK_APPLY_STREAM_PATH
from mfx.server.daemon import DaemonContext
from tests.daemon_harness import ThreadDaemon, run_cli
from tests.test_bulk_apply import EXPECTED, _apply_mixed, local, plugin, stored_names, write_plugins

WAIT = 30.0
NDJSON = {"Content-Type": "application/x-ndjson"}


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[ThreadDaemon]:
    with ThreadDaemon(tmp_path / "home").running() as running:
        yield running


def posts(daemon: ThreadDaemon) -> dict[str, float]:
    """The daemon's POST requests so far, by answer code."""
    assert daemon.context is not None
    counter = daemon.context.metrics.api_requests_total
    return {sample.labels["code"]: sample.value for metric in counter.collect() for sample in metric.samples
            if sample.name.endswith("_total") and sample.labels.get("verb") == "POST"}


def line(name: str, **spec: object) -> bytes:
    return encode_json({
        "apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", "metadata": {"name": name},
        "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m x", **spec}}) + b"\n"


def pieces(*lines: bytes) -> Iterator[bytes]:
    yield from lines  # a generator: httpx sends it chunked, a piece at a time


# --- the CLI ----------------------------------------------------------------------------------


async def list_path_gone(context: DaemonContext, group: TaskGroup) -> None:
    """A daemon whose List path answers 404: a client that does not stream falls back to one
    request per object, which the request counts show."""
    async def gone(request: Request) -> Response:
        return JSONResponse({"kind": "Status", "code": 404, "message": "not here"}, status_code=404)

    context.api.extra_routes.append(Route(BULK_APPLY_PATH, gone, methods=["POST"]))


def test_apply_is_one_streamed_request_with_every_outcome_in_input_order(tmp_path: Path) -> None:
    with ThreadDaemon(tmp_path / "home", services=[list_path_gone]).running() as daemon:
        home = daemon.config.home
        assert _apply_mixed(home, tmp_path) == EXPECTED
        write_plugins(tmp_path / "many", 300)  # several pieces: the daemon admits them as they come
        before = posts(daemon)
        result = run_cli(home, "apply", "-f", str(tmp_path / "many"))
        assert result.output.splitlines() == [f"pluginmanifest.mfx.musicfox.io/pm-{i:04d} created"
                                              for i in range(300)]
        # One request, answered 200: not a List refused, then one create per object.
        assert posts(daemon) == {**before, "200": before["200"] + 1}
        assert len(stored_names(home)) == 304


def test_a_file_that_does_not_read_mid_stream_applies_nothing(daemon: ThreadDaemon, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    home = daemon.config.home
    write_plugins(tmp_path / "many", 300)
    broken = tmp_path / "many" / "zz-last.yaml"  # read last: pieces of the others went out before it
    broken.write_text(plugin("zz-last") + "  bad: [unclosed\n")
    result = run_cli(home, "apply", "-f", str(tmp_path / "many"))
    assert result.exit_code == 1
    assert str(broken) in result.output
    assert stored_names(home) == []
    assert "internal error" not in caplog.text


def test_more_than_one_request_carries_goes_as_several_lists(daemon: ThreadDaemon, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    home = daemon.config.home
    write_plugins(tmp_path / "many", 40)
    monkeypatch.setattr("mfx.cli.apply_stream.MAX_BODY_BYTES", 4000)  # about 20 manifests
    monkeypatch.setattr(bulk_client.chunks, "__defaults__", (4000,))
    before = posts(daemon)
    result = run_cli(home, "apply", "-f", str(tmp_path / "many"))
    assert result.output.splitlines() == [f"pluginmanifest.mfx.musicfox.io/pm-{i:04d} created" for i in range(40)]
    # The aborted stream was never answered; the objects went in List requests, each answered.
    answered = posts(daemon).get("200", 0) - before.get("200", 0)
    assert answered >= 2 and posts(daemon).keys() <= {"200"}


def test_a_daemon_without_the_stream_path_gets_the_list(daemon: ThreadDaemon, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # As a daemon from before the stream path: it answers 404 before any of the body is made.
    monkeypatch.setattr(bulk_client, "BULK_APPLY_STREAM_PATH", BULK_APPLY_STREAM_PATH + "-unknown")
    home = daemon.config.home
    before = posts(daemon)
    assert _apply_mixed(home, tmp_path) == EXPECTED
    after = posts(daemon)
    # The two applies' streams, refused as an older daemon refuses the path (405: it reads
    # "apply" as a kind, and "stream..." as the name of one); then a List each.
    assert after["405"] - before.get("405", 0) == 2
    assert after["200"] - before.get("200", 0) == 2


def test_stdin_goes_as_a_list(daemon: ThreadDaemon) -> None:
    result = run_cli(daemon.config.home, "apply", "-f", "-", input=plugin("from-stdin"))
    assert result.output == "pluginmanifest.mfx.musicfox.io/from-stdin created\n"


# --- the daemon -------------------------------------------------------------------------------


def test_the_stream_answers_as_the_list_and_skips_blank_lines(daemon: ThreadDaemon) -> None:
    with local(daemon.config.home) as http:
        answer = http.post(BULK_APPLY_STREAM_PATH, params={"fieldManager": "test"}, headers=NDJSON,
                           content=pieces(line("a"), b"\n", line("b") + line("c")[:20], line("c")[20:].rstrip()))
        assert answer.status_code == 200, answer.text
        assert [(i["metadata"]["name"], i["outcome"]) for i in answer.json()["items"]] == [
            ("a", "created"), ("b", "created"), ("c", "created")]
        empty = http.post(BULK_APPLY_STREAM_PATH, headers=NDJSON, content=b"")
        assert empty.status_code == 200 and empty.json()["items"] == []
    assert stored_names(daemon.config.home) == ["a", "b", "c"]


@pytest.mark.parametrize(("bad", "code", "where"), [
    (b"{not json\n", 400, "items[1]: the body is not valid JSON"),
    (b'{"a": 1, "a": 2}\n', 422, "items[1]"),
    (b"[1, 2]\n", 400, "items[1]: expected an object"),
    (line("x", entryPoint=7), 422, "items[1].spec.entryPoint"),
    (b'{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}\n', 400, "items[1]"),
])
def test_a_bad_line_stores_nothing_and_is_named(daemon: ThreadDaemon, bad: bytes, code: int, where: str) -> None:
    # The refused line comes early; the client still sends the rest, and then reads the answer.
    with local(daemon.config.home) as http:
        answer = http.post(BULK_APPLY_STREAM_PATH, headers=NDJSON,
                           content=pieces(line("first"), bad, *(line(f"after-{i}") for i in range(200))))
    assert answer.status_code == code, answer.text
    status = answer.json()
    assert status["kind"] == "Status"
    causes = (status.get("details") or {}).get("causes") or []
    assert where in status["message"] + "".join(c.get("field", "") for c in causes)
    assert stored_names(daemon.config.home) == []


def test_a_stream_over_the_body_limit_is_refused(daemon: ThreadDaemon, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bodies.read_lines, "__kwdefaults__", {"limit": 1000})  # the stream reads its lines so
    with local(daemon.config.home) as http:
        answer = http.post(BULK_APPLY_STREAM_PATH, headers=NDJSON, content=pieces(*(line(f"n-{i}") for i in range(20))))
    assert answer.status_code == 413, answer.text
    assert "larger than 1000 bytes" in answer.json()["message"]
    assert stored_names(daemon.config.home) == []


def test_a_client_gone_before_the_end_of_its_body_applied_nothing(daemon: ThreadDaemon) -> None:
    home = daemon.config.home
    told = threading.Event()

    class Told(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "disconnected before the end of its body" in record.getMessage():
                told.set()

    handler = Told()
    logger = logging.getLogger("mfx.server")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(home / "mfx.sock"))
            sock.sendall(f"POST {BULK_APPLY_STREAM_PATH} HTTP/1.1\r\nHost: mfx\r\nContent-Type: application/x-ndjson"
                         "\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
            first = line("half-sent")
            sock.sendall(b"%x\r\n%b\r\n" % (len(first), first))  # then the client is gone, its body unfinished
        assert told.wait(WAIT)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert stored_names(home) == []
    assert "500" not in posts(daemon)
    with local(home) as http:  # and the daemon answers the next request as ever
        assert http.post(BULK_APPLY_STREAM_PATH, headers=NDJSON, content=line("next")).status_code == 200
    assert stored_names(home) == ["next"]
