"""HTTP to a daemon's TCP listener (``--listen``: HTTPS, ``--listen-http``: plain HTTP), on httpx.

Only ``--server`` brings this module (and with it httpx and the TLS stack) in: the unix socket
needs neither. Failures to connect become mfx errors that say what to check.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx

from mfx.cli.unix_http import Reply
from mfx.errors import DaemonUnavailableError


def _root_cause(error: BaseException) -> BaseException:
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    return error


def _is_tls_failure(error: Exception) -> bool:
    """A handshake that failed (a certificate not from the CA, a peer that does not speak TLS),
    as opposed to nobody listening."""
    return isinstance(_root_cause(error), ssl.SSLError) or "SSL" in str(error)


class TcpHttp:
    """Requests to ``url``; with ``ca_file``, only the daemon's own CA vouches for its certificate."""

    def __init__(self, url: str, *, ca_file: Path | None, headers: dict[str, str], timeout: float) -> None:
        self.url = url
        self.ca_file = ca_file
        verify: ssl.SSLContext | bool = (ssl.create_default_context(cafile=str(ca_file))
                                         if ca_file is not None else True)
        self._http = httpx.Client(transport=httpx.HTTPTransport(verify=verify), base_url=url, headers=headers,
                                  timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def send(self, method: str, target: str, headers: dict[str, str], body: bytes | None = None) -> Reply:
        try:
            response = self._http.request(method, target, content=body, headers=headers)
        except (httpx.ConnectError, httpx.RemoteProtocolError, ConnectionRefusedError) as error:
            raise self.unavailable(error) from None
        except httpx.TimeoutException:
            raise TimeoutError from None
        return Reply(response.status_code, dict(response.headers), response.content)

    def send_streamed(self, method: str, target: str, headers: dict[str, str], pieces: Iterator[bytes]) -> Reply:
        """The body made first, then sent as one: over TCP a daemon without the path may answer
        before a chunked body ends, which httpx reports as a broken connection rather than
        the answer."""
        return self.send(method, target, headers, b"".join(pieces))

    def stream(self, target: str, headers: dict[str, str]) -> tuple[Reply, Iterator[bytes]]:
        """A GET whose body is read as it comes (no read timeout): the head, and the body's lines."""
        try:
            request = self._http.build_request("GET", target, headers=headers,
                                               timeout=httpx.Timeout(self._http.timeout.connect, read=None))
            response = self._http.send(request, stream=True)
        except (httpx.ConnectError, ConnectionRefusedError) as error:
            raise self.unavailable(error) from None
        if response.status_code >= 400:
            try:
                response.read()
            finally:
                response.close()
            return Reply(response.status_code, dict(response.headers), response.content), iter(())
        return Reply(response.status_code, dict(response.headers), b""), _lines(response)

    def unavailable(self, error: Exception) -> DaemonUnavailableError:
        if self.ca_file is not None and _is_tls_failure(error):
            return DaemonUnavailableError(
                f"no TLS connection to the mfx daemon at {self.url} ({_root_cause(error)}): is it "
                f"the daemon's --listen address, and is {self.ca_file} the CA of that daemon "
                f"(its HOME/tls/ca.crt)? A --listen-http address takes --server http://HOST:PORT")
        if self.ca_file is None and isinstance(error, httpx.RemoteProtocolError):
            return DaemonUnavailableError(
                f"the mfx daemon at {self.url} closed the connection: an address given with "
                f"--listen serves only HTTPS; use --server HOST:PORT or https://HOST:PORT for it")
        return DaemonUnavailableError(
            f"cannot reach the mfx daemon at {self.url}: start it with 'mfx serve --listen "
            f"ADDRESS' (https) or '--listen-http ADDRESS' (http), or check --server / MFX_SERVER")


def _lines(response: httpx.Response) -> Iterator[bytes]:
    try:
        for line in response.iter_lines():
            yield line.encode()
    except httpx.RemoteProtocolError:
        return  # the daemon went away mid-stream: the stream simply ends
    finally:
        response.close()
