"""A fault-injecting HTTP/1.1 proxy for the test suite: a bad network between a client and the store.

It listens on loopback and forwards each request to the upstream server, reading HTTP framing
(Content-Length or chunked bodies, HEAD / 1xx / 204 / 304 without one) so that a fault can hit a
chosen request at a chosen byte of its body. Faults are added at run time by the test:

    proxy = FaultProxy(server.port)
    rule = proxy.add(Error(503, "SlowDown", retry_after=1), method="PUT", path=r"partNumber=", times=2)
    ... run a client against proxy.endpoint ...
    assert rule.hits == 2

A rule applies to the requests it matches (method, or several as "DELETE,POST"; a regex searched
in the request target; the nth match on: first, for times matches; times=None: for ever). The first rule whose window
covers a request decides its fault; every other request is forwarded untouched. Faults:

    Latency(s)                      wait s before forwarding the request
    Bandwidth(bytes_per_s)          forward both bodies at most that fast
    Stall(s, after, direction, then)  stop forwarding for s seconds after `after` body bytes,
                                    then go on ("forward": what was sent meanwhile arrives
                                    late) or reset both connections ("reset")
    Reset(after, direction)         after `after` body bytes, reset both connections (RST)
    Truncate(after)                 send the response head (full Content-Length) and `after`
                                    bytes of its body, then close the connection (FIN)
    Error(status, code, retry_after)  answer an S3 XML error itself, never asking upstream

direction is "request" (client to store: an upload's body) or "response" (a download's); with
after=0 a request-direction fault strikes before any of the body is forwarded, so it hits
requests without a body too.
Besides rules: go_down() / go_down_after(n) (every connection dropped and new ones closed at
once, the second after n more client bytes) and go_up(). Counters: requests (list of
(method, target, fault name or None)), rule.hits, connections.
"""
import re
import socket
import threading
import time

_CHUNK = 16384


class Latency:
    def __init__(self, seconds):
        self.seconds = seconds


class Bandwidth:
    def __init__(self, bytes_per_s):
        self.bytes_per_s = bytes_per_s


class Stall:
    def __init__(self, seconds, after=0, direction="response", then="forward"):
        assert direction in ("request", "response") and then in ("forward", "reset")
        self.seconds, self.after, self.direction, self.then = seconds, after, direction, then


class Reset:
    def __init__(self, after=0, direction="response"):
        assert direction in ("request", "response")
        self.after, self.direction = after, direction


class Truncate:
    def __init__(self, after=0):
        self.after = after


class Error:
    REASONS = {500: "Internal Server Error", 503: "Slow Down"}
    MESSAGES = {"SlowDown": "Please reduce your request rate.",
                "InternalError": "We encountered an internal error. Please try again.",
                "ServiceUnavailable": "Service is unable to handle request."}

    def __init__(self, status=503, code="SlowDown", retry_after=None):
        self.status, self.code, self.retry_after = status, code, retry_after

    def answer(self, keep_alive):
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>'
                "<RequestId>faultproxy</RequestId></Error>"
                % (self.code, self.MESSAGES.get(self.code, "Injected fault."))).encode()
        head = "HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n" % (
            self.status, self.REASONS.get(self.status, "Error"), len(body))
        if self.retry_after is not None:
            head += "Retry-After: %s\r\n" % self.retry_after
        head += "Connection: %s\r\n\r\n" % ("keep-alive" if keep_alive else "close")
        return head.encode() + body


class Rule:
    def __init__(self, fault, method=None, path=None, first=1, times=1):
        self.fault = fault
        self.methods = set(method.upper().split(",")) if method else None
        self.path = re.compile(path) if path else None
        self.first, self.times = first, times
        self.matched = 0  # requests this rule matched, inside its window or not
        self.hits = 0  # requests it applied its fault to

    def _covers(self, method, target):
        """Called under the proxy's lock for every request: counts it when it matches, and says
        whether it falls in the rule's window."""
        if self.methods and method not in self.methods:
            return False
        if self.path and not self.path.search(target):
            return False
        self.matched += 1
        n = self.matched - self.first
        return n >= 0 and (self.times is None or n < self.times)


class _Closed(Exception):
    pass


class _Conn:
    """Buffered reads from a socket, for HTTP heads and bodies."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise _Closed()
        self.buf += data

    def head(self):
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 1 << 20:
                raise _Closed()
            self.fill()
        end = self.buf.index(b"\r\n\r\n") + 4
        head, self.buf = self.buf[:end], self.buf[end:]
        return head

    def some(self, limit):
        if not self.buf:
            self.fill()
        out, self.buf = self.buf[:limit], self.buf[limit:]
        return out

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        end = self.buf.index(b"\r\n") + 2
        out, self.buf = self.buf[:end], self.buf[end:]
        return out


def _headers(head):
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            fields[k.strip().lower()] = v.strip()
    return lines[0], fields


def _reset(sock):
    """Close with RST (SO_LINGER 0), as a middlebox or a crashed peer would."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    sock.close()


class FaultProxy:
    def __init__(self, upstream_port, upstream_host="127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.lock = threading.Lock()
        self.rules = []
        self.requests = []
        self.connections = 0
        self._down, self._down_after = False, None
        self._socks = set()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    # ---- control ----

    def add(self, fault, method=None, path=None, first=1, times=1):
        rule = Rule(fault, method, path, first, times)
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self):
        with self.lock:
            self.rules = []

    def go_down(self):
        with self.lock:
            self._down, self._down_after = True, None
            socks, self._socks = list(self._socks), set()
        for s in socks:
            _reset(s)

    def go_down_after(self, client_bytes):
        with self.lock:
            self._down_after = client_bytes

    def go_up(self):
        with self.lock:
            self._down, self._down_after = False, None

    @property
    def down(self):
        with self.lock:
            return self._down

    def count(self, method=None, path=None):
        """Requests seen (faulted or not) with that method and a target matching path."""
        with self.lock:
            return sum(1 for m, t, _ in self.requests
                       if (not method or m == method) and (not path or re.search(path, t)))

    def close(self):
        self._closing = True
        self.listener.close()
        self.go_down()

    # ---- forwarding ----

    def _accept(self):
        while not self._closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                down = self._down
                self.connections += 1
            if down:
                client.close()
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _track(self, sock):
        with self.lock:
            self._socks.add(sock)

    def _count_client_bytes(self, n):
        """Counts bytes the client sent; goes down when a go_down_after budget runs out."""
        with self.lock:
            if self._down_after is None:
                return
            self._down_after -= n
            if self._down_after > 0:
                return
        self.go_down()
        raise _Closed()

    def _pick(self, method, target):
        with self.lock:
            fault = None
            for rule in self.rules:
                if rule._covers(method, target) and fault is None:
                    fault = rule.fault
                    rule.hits += 1
            self.requests.append((method, target, type(fault).__name__ if fault else None))
            return fault

    def _serve(self, client):
        self._track(client)
        upstream = None
        cin = _Conn(client)
        try:
            while True:
                head = cin.head()
                self._count_client_bytes(len(head))
                request_line, fields = _headers(head)
                parts = request_line.split(" ")
                if len(parts) != 3:
                    raise _Closed()
                method, target = parts[0].upper(), parts[1]
                fault = self._pick(method, target)
                if isinstance(fault, Error):
                    self._discard_body(cin, fields)
                    keep = fields.get("connection", "").lower() != "close"
                    client.sendall(fault.answer(keep))
                    if not keep:
                        break
                    continue
                if isinstance(fault, Latency):
                    time.sleep(fault.seconds)
                if upstream is None:
                    upstream = socket.create_connection(self.upstream)
                    self._track(upstream)
                    uin = _Conn(upstream)
                upstream.sendall(head)
                req = fault if getattr(fault, "direction", None) == "request" else None
                if not self._body(cin, upstream, fields, req, fault, counts=True):
                    break
                while True:  # interim 1xx answers come before the real one
                    rhead = uin.head()
                    status_line, rfields = _headers(rhead)
                    status = int(status_line.split(" ")[1])
                    if status >= 200 or status == 101:
                        break
                    client.sendall(rhead)
                if isinstance(fault, Truncate):
                    client.sendall(rhead)
                    length = int(rfields.get("content-length", fault.after))
                    self._pass(uin, client, min(fault.after, length), None, None, counts=False)
                    break  # a clean close short of Content-Length
                client.sendall(rhead)
                resp = fault if getattr(fault, "direction", None) == "response" else None
                if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
                    rfields = {"content-length": "0"}
                if not self._body(uin, client, rfields, resp, fault, counts=False, to_close=True):
                    break
                if "close" in (fields.get("connection", "").lower(), rfields.get("connection", "").lower()):
                    break
        except (_Closed, OSError, ValueError, IndexError):
            pass
        for s in (client, upstream):
            if s is None:
                continue
            with self.lock:
                self._socks.discard(s)
            try:
                s.close()
            except OSError:
                pass

    def _discard_body(self, cin, fields):
        n = int(fields.get("content-length", "0") or 0)
        while n > 0:
            got = cin.some(min(n, 65536))
            self._count_client_bytes(len(got))
            n -= len(got)

    def _body(self, src, dst, fields, fault, any_fault, counts, to_close=False):
        """Forwards one body by its framing, applying fault (Stall or Reset in this direction)
        and any_fault (Bandwidth). False when the connection must end."""
        rate = any_fault.bytes_per_s if isinstance(any_fault, Bandwidth) else None
        if "chunked" in fields.get("transfer-encoding", "").lower():
            return self._chunked(src, dst, fault, rate, counts)
        if "content-length" in fields:
            n = int(fields["content-length"])
            return self._pass(src, dst, n, fault, rate, counts)
        if to_close:  # a response without a length ends with its connection
            self._pass(src, dst, None, fault, rate, counts)
            return False
        return self._pass(src, dst, 0, fault, rate, counts)  # no body: only a fault at byte 0

    def _chunked(self, src, dst, fault, rate, counts):
        sent = [0]
        while True:
            line = src.line()
            size = int(line.split(b";")[0].strip(), 16)
            dst.sendall(line)
            if size == 0:
                while True:  # trailers, up to the empty line
                    t = src.line()
                    dst.sendall(t)
                    if t == b"\r\n":
                        return True
            if not self._pass(src, dst, size + 2, fault, rate, counts, sent):
                return False

    def _pass(self, src, dst, n, fault, rate, counts, sent=None):
        """Forwards n bytes (None: until src closes) from src to dst. sent carries the body's
        byte count across chunks so that `after` counts body bytes."""
        sent = sent if sent is not None else [0]
        stalled = False
        start, moved = time.monotonic(), 0
        while True:
            cap = _CHUNK if n is None else min(n, _CHUNK)
            if isinstance(fault, (Stall, Reset)):
                left = fault.after - sent[0]
                if left <= 0:
                    if isinstance(fault, Reset) or stalled and fault.then == "reset":
                        _reset(src.sock)
                        _reset(dst if isinstance(dst, socket.socket) else dst.sock)
                        raise _Closed()
                    if not stalled:
                        stalled = True
                        time.sleep(fault.seconds)
                        continue
                else:
                    cap = min(cap, left)
            if n is not None and n <= 0:
                break
            try:
                data = src.some(cap)
            except _Closed:
                if n is None:
                    return False
                raise
            if counts:
                self._count_client_bytes(len(data))
            dst.sendall(data)
            sent[0] += len(data)
            moved += len(data)
            if n is not None:
                n -= len(data)
            if rate:
                ahead = moved / rate - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)
        return True
