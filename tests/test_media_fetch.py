"""``core.media.fetch``: the URL policy, redirects checked hop by hop, the total budget and the size cap.

Every server here is a real ``http.server`` on 127.0.0.1. Nothing connects anywhere else: addresses
like 169.254.169.254 only ever appear as redirect targets that the policy must refuse *before*
connecting, and a spy on ``socket.create_connection`` proves no such connection was attempted.

127.0.0.1 is itself refused by default, so tests of what happens *after* a first hop declare that
one address public (``public_test_server``); every other address still goes through the real check.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.errors import MediaError, UserError
from core.media import fetch

BODY = b"\x89PNG fake media body" * 10
DRIP_STEP_S = 0.05
DRIP_MAX_STEPS = 400  # bounded: the server gives up by itself after 20 s even if the client never does


class Handler(BaseHTTPRequestHandler):
    """Routes for the policy tests; ``hits`` records every request that reached the server."""

    hits: list[tuple[str, str]] = []
    drips: list[tuple[int, bool]] = []  # per drip: bytes sent, and whether the client hung up before the end
    drip_done = threading.Event()
    stop = threading.Event()

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.hits.append((self.path, self.headers.get("Host", "")))
        port = self.server.server_address[1]
        redirects = {
            "/to-loopback": f"http://127.0.0.2:{port}/ok",
            "/to-ipv6-loopback": f"http://[::1]:{port}/ok",
            "/to-metadata": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "/to-mapped": f"http://[::ffff:127.0.0.2]:{port}/ok",
            "/to-private": "http://10.0.0.7/internal",
            "/to-file": "file:///etc/passwd",
            "/to-ok": "/ok",
            "/loop": "/loop",
        }
        if self.path in redirects:
            self.send_response(302)
            self.send_header("Location", redirects[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/ok":
            self._send(BODY)
        elif self.path == "/huge-declared":
            self._send(b"x" * 5000)
        elif self.path == "/huge-streamed":  # no Content-Length: the cap must count while reading
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            for _ in range(10):
                self.wfile.write(b"x" * 1000)
        elif self.path == "/drip-body":
            self.send_response(200)
            self.send_header("Content-Length", str(DRIP_MAX_STEPS))
            self.end_headers()
            self._drip()
        elif self.path == "/drip-headers":
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            self._drip(prefix=b"X-Slow: ")
        else:
            self._send(b"not found", 404)

    def _send(self, body: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drip(self, prefix: bytes = b"") -> None:
        """One byte per step: each read is fast, only the total is slow. Records how it ended."""
        sent, hung_up = 0, False
        try:
            self.wfile.write(prefix)
            for _ in range(DRIP_MAX_STEPS):
                if self.stop.wait(DRIP_STEP_S):
                    return
                self.wfile.write(b"a")
                self.wfile.flush()
                sent += 1
        except OSError:
            hung_up = True  # the client hung up: what the budget is for
        finally:
            self.drips.append((sent, hung_up))
            self.drip_done.set()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    Handler.stop.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    Handler.stop.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def default_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The defaults a visitor of the app gets, whatever the session's other fixtures set."""
    monkeypatch.delenv(fetch.ALLOW_PRIVATE_ENV, raising=False)
    monkeypatch.delenv(fetch.BUDGET_ENV, raising=False)
    Handler.hits.clear()


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every address the fetcher connects to (the real connection still happens)."""
    seen: list[tuple[str, int]] = []
    real = fetch._connect

    def spy(address: fetch.Address, port: int, timeout: float) -> socket.socket:
        seen.append((str(address), port))
        assert str(address) == "127.0.0.1", f"about to connect to {address}"  # never anything else
        return real(address, port, timeout)

    monkeypatch.setattr(fetch, "_connect", spy)
    return seen


@pytest.fixture
def public_test_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Treat exactly 127.0.0.1 (the test server) as public; every other address keeps the real rules."""
    real = fetch.is_public_address
    test_ip = ipaddress.ip_address("127.0.0.1")
    monkeypatch.setattr(fetch, "is_public_address", lambda ip: ip == test_ip or real(ip))


# --------------------------------------------------------------------------- address rules


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.251", "239.255.255.250", "255.255.255.255", "240.0.0.1", "198.18.0.1",
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "ff0e::1", "2001:db8::1",
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "::127.0.0.1",
    "2002:7f00:1::", "2002:a9fe:a9fe::", "64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1",
])
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not fetch.is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "151.101.1.69", "2606:4700:4700::1111",
                                     "2a03:2880:f12f:83:face:b00c::25de"])
def test_public_addresses_pass(address: str) -> None:
    assert fetch.is_public_address(ipaddress.ip_address(address))


# --------------------------------------------------------------------------- first request


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.jpg", "gopher://127.0.0.1:70/",
                                 "javascript:alert(1)", "http:///nohost", "http://[::1", "http://h:99999/"])
def test_non_http_schemes_and_broken_urls_are_refused(url: str, connections: list) -> None:
    with pytest.raises(MediaError, match="could not fetch") as info:
        fetch.fetch_bytes(url)
    assert "\n" not in str(info.value)
    assert connections == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "169.254.169.254", "10.0.0.7", "0.0.0.0",
                                  "[::ffff:127.0.0.1]", "2130706433"])
def test_loopback_and_private_hosts_are_refused_before_connecting(host: str, connections: list) -> None:
    with pytest.raises(MediaError, match="not a public internet host") as info:
        fetch.fetch_bytes(f"http://{host}:9/x.jpg")
    assert "--allow-private-urls" in str(info.value) and "\n" not in str(info.value)
    assert connections == []


def test_direct_loopback_url_is_refused_and_the_server_never_sees_it(server: str) -> None:
    with pytest.raises(MediaError, match="127.0.0.1 is not a public internet host"):
        fetch.fetch_bytes(f"{server}/ok")
    assert Handler.hits == []


def test_the_switch_allows_local_urls(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(fetch.ALLOW_PRIVATE_ENV, "1")
    assert fetch.fetch_bytes(f"{server}/ok") == BODY
    assert fetch.fetch_bytes(f"{server}/to-ok") == BODY  # a redirect within the allowed host
    monkeypatch.setenv(fetch.ALLOW_PRIVATE_ENV, "0")
    with pytest.raises(MediaError, match="not a public internet host"):
        fetch.fetch_bytes(f"{server}/ok")
    assert fetch.fetch_bytes(f"{server}/ok", allow_private=True) == BODY


def test_the_cli_flag_sets_the_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.__main__ import build_parser

    args = build_parser().parse_args(["caption", "x.png", "--allow-private-urls"])
    assert args.allow_private_urls is True
    assert build_parser().parse_args(["caption", "x.png"]).allow_private_urls is False


# --------------------------------------------------------------------------- redirects


@pytest.mark.usefixtures("public_test_server")
def test_a_public_first_hop_is_fetched(server: str, connections: list) -> None:
    assert fetch.fetch_bytes(f"{server}/to-ok") == BODY
    assert [path for path, _ in Handler.hits] == ["/to-ok", "/ok"]


@pytest.mark.usefixtures("public_test_server")
@pytest.mark.parametrize(("path", "host"), [
    ("/to-loopback", "127.0.0.2"), ("/to-ipv6-loopback", "::1"), ("/to-metadata", "169.254.169.254"),
    ("/to-mapped", "::ffff:127.0.0.2"), ("/to-private", "10.0.0.7"),
])
def test_a_redirect_to_a_non_public_address_is_refused(server: str, connections: list, path: str,
                                                        host: str) -> None:
    with pytest.raises(MediaError, match="not a public internet host") as info:
        fetch.fetch_bytes(f"{server}{path}")
    message = str(info.value)
    assert f"redirected to host {host}" in message
    assert "meta-data" not in message and "/internal" not in message  # the target's path stays private
    assert len(connections) == 1  # only the first hop connected
    assert [p for p, _ in Handler.hits] == [path]


@pytest.mark.usefixtures("public_test_server")
def test_a_redirect_to_a_file_url_is_refused(server: str, connections: list) -> None:
    with pytest.raises(MediaError, match="only http:// and https:// URLs") as info:
        fetch.fetch_bytes(f"{server}/to-file")
    assert "/etc/passwd" not in str(info.value)
    assert len(connections) == 1


@pytest.mark.usefixtures("public_test_server")
def test_redirects_are_capped(server: str) -> None:
    with pytest.raises(MediaError, match=f"more than {fetch.MAX_REDIRECTS} redirects"):
        fetch.fetch_bytes(f"{server}/loop")
    assert len(Handler.hits) == fetch.MAX_REDIRECTS + 1


@pytest.mark.usefixtures("public_test_server")
def test_the_connection_goes_to_the_address_that_was_checked(server: str, connections: list,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: a name that answers 127.0.0.1 (here: "public") first and the metadata address
    afterwards. The fetcher looks it up once per hop and connects to the checked answer."""
    port = int(server.rsplit(":", 1)[1])
    answers = iter(["127.0.0.1", "169.254.169.254", "169.254.169.254"])
    lookups: list[str] = []

    real_dns = socket.getaddrinfo

    def rebinding_dns(host: str, *args: object, **kwargs: object) -> list:
        if host != "media.example":
            return real_dns(host, *args, **kwargs)  # type: ignore[arg-type]
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(fetch.socket, "getaddrinfo", rebinding_dns)
    assert fetch.fetch_bytes(f"http://media.example:{port}/ok") == BODY
    assert lookups == ["media.example"]
    assert connections == [("127.0.0.1", port)]
    assert Handler.hits == [("/ok", f"media.example:{port}")]  # the name still goes in the Host header


# --------------------------------------------------------------------------- budget and size


@pytest.mark.parametrize("path", ["/drip-body", "/drip-headers"])
def test_a_slow_drip_is_cut_at_the_total_budget(server: str, path: str) -> None:
    Handler.drips.clear()
    Handler.drip_done.clear()
    with pytest.raises(MediaError, match=r"took longer than 0.6 s") as info:
        fetch.fetch_bytes(f"{server}{path}", allow_private=True, budget_s=0.6, timeout=5)
    assert "\n" not in str(info.value)
    # Each read is fast (one byte per 50 ms, far under the 5 s read timeout), so only the total budget can
    # stop it; and it stops the download mid-drip: the client hangs up long before the server's last byte.
    assert Handler.drip_done.wait(DRIP_STEP_S * DRIP_MAX_STEPS + 10)  # the server notices the hang-up
    [(sent, hung_up)] = Handler.drips
    assert hung_up and sent < DRIP_MAX_STEPS


def test_the_budget_comes_from_the_environment(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(fetch.BUDGET_ENV, "0.4")
    with pytest.raises(MediaError, match=r"took longer than 0.4 s"):
        fetch.fetch_bytes(f"{server}/drip-body", allow_private=True)
    monkeypatch.setenv(fetch.BUDGET_ENV, "soon")
    with pytest.raises(UserError, match=fetch.BUDGET_ENV):
        fetch.fetch_bytes(f"{server}/ok", allow_private=True)
    monkeypatch.delenv(fetch.BUDGET_ENV)
    assert fetch.download_budget() == fetch.DEFAULT_BUDGET_S == 60


@pytest.mark.parametrize("path", ["/huge-declared", "/huge-streamed"])
def test_a_body_over_the_size_cap_is_refused(server: str, path: str) -> None:
    with pytest.raises(MediaError, match="limit"):
        fetch.fetch_bytes(f"{server}{path}", allow_private=True, max_bytes=2000)
    assert fetch.fetch_bytes(f"{server}{path}", allow_private=True, max_bytes=20_000).startswith(b"xxx")


def test_http_errors_are_one_line(server: str) -> None:
    with pytest.raises(MediaError, match=r"HTTP 404$"):
        fetch.fetch_bytes(f"{server}/missing", allow_private=True)
    with pytest.raises(MediaError, match="could not fetch .*ConnectionRefusedError"):
        fetch.fetch_bytes("http://127.0.0.1:9/x.jpg", allow_private=True)  # port 9: nothing listens
