"""A tiny RESP2 client (stdlib only): one connection, one command at a
time, replies as Python values (bytes decoded as UTF-8 with
surrogateescape; an error reply is returned as RespError, never raised,
so a caller sees what Redis said)."""
import socket


def encode(args):
    """One command in RESP: an array of bulk strings (str as UTF-8, other
    values through str())."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode("utf-8", "surrogateescape")
        elif not isinstance(a, bytes):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class RespError(str):
    """An error reply ("-ERR ...")."""


class Redis:
    def __init__(self, host="127.0.0.1", port=6379, password=None,
                 timeout=10.0):
        self.host, self.port, self.password = host, port, password
        self.timeout = timeout
        self.sock = None
        self.buf = b""

    def connect(self):
        self.close()
        self.sock = socket.create_connection((self.host, self.port),
                                             timeout=self.timeout)
        self.buf = b""
        if self.password:
            r = self._call(["AUTH", self.password])
            if isinstance(r, RespError):
                raise ConnectionError("AUTH: " + r)

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None

    def _line(self):
        while b"\r\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise ConnectionError("connection closed")
            self.buf += d
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            d = self.sock.recv(max(65536, n + 2 - len(self.buf)))
            if not d:
                raise ConnectionError("connection closed")
            self.buf += d
        v, self.buf = self.buf[:n], self.buf[n + 2:]
        return v

    def _reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode("utf-8", "surrogateescape")
        if t == b"-":
            return RespError(rest.decode("utf-8", "surrogateescape"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            return self._exact(n).decode("utf-8", "surrogateescape")
        if t == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self._reply() for _ in range(n)]
        raise ConnectionError("bad reply type %r" % line[:20])

    def _call(self, args):
        self.sock.sendall(encode(args))
        return self._reply()

    def call(self, *args):
        """One command; connects first when needed. A lost connection
        raises ConnectionError (the command may or may not have run)."""
        if self.sock is None:
            self.connect()
        try:
            return self._call(args)
        except (OSError, ConnectionError):
            self.close()
            raise ConnectionError("lost the connection to %s:%d" %
                                  (self.host, self.port))

    def pipeline(self, cmds):
        """Several commands in one write; their replies in order."""
        if self.sock is None:
            self.connect()
        try:
            self.sock.sendall(b"".join(encode(args) for args in cmds))
            return [self._reply() for _ in cmds]
        except (OSError, ConnectionError):
            self.close()
            raise ConnectionError("lost the connection")


def pairs(flat):
    """A flat [k, v, k, v] reply as a dict."""
    return {flat[i]: flat[i + 1] for i in range(0, len(flat or []) - 1, 2)}
