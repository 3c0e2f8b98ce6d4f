"""Live capture back ends: frames from a network interface, as the file reader yields them.

``tcpdump`` or ``dumpcap`` run as a child process writing a capture to a pipe that the
streaming reader (:mod:`.reader`) consumes: they need no privileges beyond their own (file
capabilities or root) and libpcap's kernel ring buffer absorbs bursts. scapy's packet socket is
the fallback when neither is installed. pyshark's live capture is not offered: it parses every
packet into dissector fields in tshark and would only hand back the bytes these two give.

Order of preference (``backend="auto"``): dumpcap, then tcpdump, then scapy. dumpcap reads
the kernel's TPACKET_V3 ring in blocks (packets reach the analysis within its 250 ms read
timeout) and kept up with 50k packets/s here with no drop; tcpdump needs ``--immediate-mode``
for a packet to arrive promptly, and libpcap then uses a ring of snaplen-sized slots that
overflows at that rate (10% lost writing to /dev/null on this machine). tcpdump does report
its kernel drops while running (SIGUSR1); dumpcap only when it stops.

Every failure to start (no such interface, no capture tool, missing capability, a filter that
does not compile) is a :class:`LiveCaptureError` with one line naming the cause.
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Protocol

from .bpf import LINKTYPE_OF_ARPHRD, arphrd
from .model import CaptureError
from .reader import Frame, open_capture_stream

BACKENDS = ("auto", "tcpdump", "dumpcap", "scapy")
CAP_NET_ADMIN = 12
CAP_NET_RAW = 13
_CAP_NAMES = {CAP_NET_RAW: "CAP_NET_RAW", CAP_NET_ADMIN: "CAP_NET_ADMIN"}
START_TIMEOUT = 10.0  # seconds for the capture tool to open the interface
STOP_TIMEOUT = 5.0
# Kernel buffer asked of libpcap: 32 MiB holds about 0.5 s of 50k packets/s at 1400 bytes.
BUFFER_MIB = 32
F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (Python 3.10+ on Linux; spelled out for typing)
PIPE_BYTES = 1 << 20
QUEUE_CHUNKS = 32  # chunks read from the pipe, not parsed yet: at most 32 MiB (~0.8 s at 50k/s)
COALESCE_BYTES = 64 << 10
COALESCE_SECONDS = 0.005


class LiveCaptureError(CaptureError):
    """The live capture could not start or failed (one line; exit status 2)."""


# ------------------------------------------------------------------------ preconditions


def check_interface(interface: str) -> None:
    """``LiveCaptureError`` unless ``interface`` exists in this network namespace."""
    if interface == "any":
        return
    try:
        socket.if_nametoindex(interface)
    except OSError:
        names = ", ".join(sorted(n for _, n in socket.if_nameindex())) or "none"
        raise LiveCaptureError(f"interface {interface!r} does not exist (interfaces here: {names})") from None


def _effective_caps() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _file_caps(path: str) -> int:
    """Permitted capabilities a file grants (security.capability xattr, VFS_CAP_REVISION 2/3)."""
    try:
        raw = os.getxattr(path, "security.capability")
    except (OSError, AttributeError):
        return 0
    if len(raw) < 12:
        return 0
    words = struct.unpack_from(f"<{len(raw) // 4}I", raw)
    lo, hi = words[1], (words[3] if len(words) > 3 else 0)
    return lo | hi << 32


def missing_capabilities(tool: str | None) -> list[str]:
    """Capabilities neither this process nor the capture tool's file has (root has all).

    Opening a packet socket needs CAP_NET_RAW; libpcap also wants CAP_NET_ADMIN (promiscuous
    mode, kernel buffer size), which is what Wireshark's installer grants dumpcap."""
    have = _effective_caps() | (_file_caps(tool) if tool else 0)
    return [name for bit, name in sorted(_CAP_NAMES.items(), reverse=True) if not have >> bit & 1]


def permission_message(interface: str, tool: str | None) -> str:
    missing = missing_capabilities(tool) or ["CAP_NET_RAW", "CAP_NET_ADMIN"]
    who = os.path.basename(tool) if tool else "this process"
    grant = f"setcap cap_net_raw,cap_net_admin=eip {tool}" if tool else "run as root"
    return (
        f"permission denied capturing on {interface}: {who} lacks {' and '.join(missing)} "
        f"(run as root, or grant it: {grant})"
    )


# ------------------------------------------------------------------------ drop counters


@dataclass
class DropCounts:
    """Packets lost before the analysis saw them, as the capture tool reports them.

    ``None`` means the tool did not (yet) say; ``final`` is set once the numbers are the
    tool's closing statistics rather than a running report."""

    received: int | None = None  # packets that passed the filter
    kernel: int | None = None  # dropped by the kernel: the socket buffer was full
    interface: int | None = None  # dropped by the interface/driver (ps_ifdrop)
    capture_process: int | None = None  # dropped inside the capture tool (dumpcap)
    final: bool = False

    @property
    def total(self) -> int:
        return sum(n or 0 for n in (self.kernel, self.interface, self.capture_process))

    def describe(self) -> str:
        parts = []
        for label, n in (
            ("kernel", self.kernel),
            ("interface", self.interface),
            ("capture process", self.capture_process),
        ):
            if n is not None:
                parts.append(f"{n} by the {label}")
        if not parts:
            return "drops not reported yet"
        return f"{self.total} dropped ({', '.join(parts)})"


_TCPDUMP_STATS = {
    "received": re.compile(r"(\d+) packets? received by filter"),
    "kernel": re.compile(r"(\d+) packets? dropped by kernel"),
    "interface": re.compile(r"(\d+) packets? dropped by interface"),
}
# Packets received/dropped on interface 'eth0': 5/0 (pcap:0/dumpcap:0/flushed:0/ps_ifdrop:0)
_DUMPCAP_STATS = re.compile(
    r"received/dropped on interface .*: (\d+)/\d+ \(pcap:(\d+)/dumpcap:(\d+)/flushed:\d+/ps_ifdrop:(\d+)\)"
)


def parse_tcpdump_stats(line: str, drops: DropCounts) -> bool:
    """Update ``drops`` from a tcpdump statistics line (SIGUSR1 or exit); True if it was one."""
    hit = False
    for name, rx in _TCPDUMP_STATS.items():
        m = rx.search(line)
        if m:
            setattr(drops, name, int(m.group(1)))
            hit = True
    return hit


def parse_dumpcap_stats(line: str, drops: DropCounts) -> bool:
    m = _DUMPCAP_STATS.search(line)
    if not m:
        return False
    drops.received, drops.kernel, drops.capture_process, drops.interface = (int(g) for g in m.groups())
    drops.final = True
    return True


# ------------------------------------------------------------------------ back ends


class LiveBackend(Protocol):
    name: str
    interface: str
    drops: DropCounts

    def start(self) -> None: ...
    def frames(self, before_wait: Callable[[], None] | None = None) -> Iterator[Frame]: ...
    def request_stats(self) -> None: ...
    def ended_note(self) -> str: ...
    def stop(self) -> None: ...
    def close(self) -> None: ...


class PipeBackend:
    """A capture tool writing pcap/pcapng to its stdout; its stderr says when it is ready,
    why it failed and how many packets it dropped. Subclasses give the command line and the
    stderr grammar."""

    name = "pipe"
    ready_marker = ""

    def __init__(self, interface: str, bpf: str, *, tool: str, snaplen: int = 0) -> None:
        self.interface = interface
        self.bpf = bpf
        self.tool = tool
        self.snaplen = snaplen
        self.drops = DropCounts()
        self.proc: subprocess.Popen[bytes] | None = None
        self._stderr: deque[str] = deque(maxlen=40)
        self._ready = threading.Event()
        self._stderr_thread: threading.Thread | None = None
        self._pipe: _DrainedPipe | None = None
        self._stop_sent = False

    @property
    def stalls(self) -> int:
        """Times the analysis fell so far behind that the tool's pipe was left full."""
        return self._pipe.stalls if self._pipe is not None else 0

    def argv(self) -> list[str]:
        raise NotImplementedError

    def parse_stats(self, line: str) -> bool:
        raise NotImplementedError

    def start(self, timeout: float = START_TIMEOUT) -> None:
        try:
            # Own session: the terminal's Ctrl-C reaches ipsecdiag only, which then stops the
            # tool itself and still reads what the tool had buffered.
            self.proc = subprocess.Popen(
                self.argv(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as e:
            raise LiveCaptureError(f"cannot run {self.tool}: {e.strerror or e}") from None
        _grow_pipe(self.proc.stdout)
        self._stderr_thread = threading.Thread(target=self._read_stderr, name=f"{self.name}-stderr", daemon=True)
        self._stderr_thread.start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                if self._stderr_thread is not None:
                    self._stderr_thread.join(1.0)
                self.close()
                raise LiveCaptureError(self._failure())
        return

    def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            if self.ready_marker in line:
                self._ready.set()
            if not self.parse_stats(line):
                self._stderr.append(line)

    def _failure(self) -> str:
        text = " ".join(self._stderr)
        low = text.lower()
        if "no such device" in low or "no device named" in low:
            return f"interface {self.interface!r} does not exist ({self.name}: {text})"
        if "permission" in low or "operation not permitted" in low:
            return permission_message(self.interface, self.tool)
        if "filter" in low or "syntax error" in low:
            return f"invalid capture filter ({self.name}: {text})"
        if self.proc is not None and self.proc.poll() is None:
            return f"{self.name} did not start capturing on {self.interface} within {START_TIMEOUT:.0f} s"
        return f"{self.name} failed on {self.interface}: {text or 'no message'}"

    def ended_note(self) -> str:
        """Why the capture ended when nobody asked it to (the tool's last words), else ""."""
        if self.proc is None or self._stop_sent:
            return ""
        try:  # the pipe ends a moment before the tool is gone and its last line read
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            return ""
        if self._stderr_thread is not None:
            self._stderr_thread.join(1.0)
        said = [ln for ln in self._stderr if not ln.startswith(("Capturing on", "File:", "Packets"))]
        return f"{self.name} exited with status {self.proc.returncode}" + (f": {said[-1]}" if said else "")

    def frames(self, before_wait: Callable[[], None] | None = None) -> Iterator[Frame]:
        """The tool's packets as reader frames; ``before_wait`` runs before each read of the
        pipe, i.e. whenever the frames of the previous read have all been yielded."""
        assert self.proc is not None and self.proc.stdout is not None
        src = self._pipe = _DrainedPipe(self.proc.stdout.fileno(), before_wait)
        try:
            cap = open_capture_stream(src, f"{self.name} on {self.interface}")  # type: ignore[arg-type]
        except CaptureError:
            # The tool exited before writing a header: nothing was captured.
            if self.proc.poll() is not None and self.proc.returncode not in (0, -signal.SIGINT):
                raise LiveCaptureError(self._failure()) from None
            return
        yield from cap.frames()

    def request_stats(self) -> None:
        """Ask for a running drop count (tcpdump answers SIGUSR1; others ignore this)."""

    def stop(self) -> None:
        """Ask the tool to finish: it flushes, prints its statistics and closes the pipe."""
        if self.proc is not None and self.proc.poll() is None:
            self._stop_sent = True
            self.proc.send_signal(signal.SIGINT)

    def close(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._stop_sent = True
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
        if self._stderr_thread is not None:
            self._stderr_thread.join(1.0)
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()


def _grow_pipe(pipe: IO[bytes] | None) -> None:
    """Give the pipe from the tool 1 MiB instead of 64 KiB (F_SETPIPE_SZ): 20 ms of 50k
    packets/s, so the tool never waits while the analysis thread holds the interpreter."""
    if pipe is None:
        return
    try:
        fcntl.fcntl(pipe.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
    except OSError:
        pass  # above /proc/sys/fs/pipe-max-size for an unprivileged user: keep the default


class _DrainedPipe:
    """The tool's pipe, emptied by a thread of its own into a bounded queue of chunks.

    ``os.read`` runs without the interpreter lock, so the pipe is drained while the frame
    parser and the analysis hold it; the tool never blocks on a full pipe (its kernel ring
    would overflow). ``QUEUE_CHUNKS`` bound the memory; beyond them the drain waits, which is
    the same back-pressure as a slow reader. ``hook`` runs before a read may wait: the feed
    thread then hands over the frames it has batched."""

    def __init__(self, fd: int, hook: Callable[[], None] | None) -> None:
        self._q: queue.Queue[bytes] = queue.Queue(maxsize=QUEUE_CHUNKS)
        self._hook = hook
        self._rest = b""
        self._eof = False
        self.stalls = 0  # times the queue was full: the analysis, not the tool, was behind
        self._thread = threading.Thread(target=self._drain, args=(fd,), name="capture-pipe", daemon=True)
        self._thread.start()

    def _drain(self, fd: int) -> None:
        while True:
            try:
                data = os.read(fd, PIPE_BYTES)
                if data and len(data) < COALESCE_BYTES:
                    # A trickle (the tool writes packet by packet): let the pipe gather more for
                    # a few milliseconds so that one hand-over, and one take of the interpreter
                    # lock, carries many packets instead of one.
                    time.sleep(COALESCE_SECONDS)
                    if select.select([fd], [], [], 0)[0]:
                        data += os.read(fd, PIPE_BYTES)
            except OSError:
                data = b""
            try:
                self._q.put_nowait(data)
            except queue.Full:
                self.stalls += 1
                self._q.put(data)
            if not data:
                return

    def read1(self, size: int = -1, /) -> bytes:
        if not self._rest:
            if self._eof:
                return b""
            if self._q.empty() and self._hook is not None:
                self._hook()
            self._rest = self._q.get()
            if not self._rest:
                self._eof = True
                return b""
        if 0 <= size < len(self._rest):
            out, self._rest = self._rest[:size], self._rest[size:]
            return out
        out, self._rest = self._rest, b""
        return out

    def read(self, size: int = -1, /) -> bytes:
        parts = []
        want = size
        while want != 0:
            piece = self.read1(want)
            if not piece:
                break
            parts.append(piece)
            want = -1 if size < 0 else want - len(piece)
        return b"".join(parts)


class TcpdumpBackend(PipeBackend):
    name = "tcpdump"
    ready_marker = "listening on"

    def argv(self) -> list[str]:
        return [
            self.tool, "-i", self.interface, "-n", "-s", str(self.snaplen), "-B", str(BUFFER_MIB * 1024),
            "-U", "--immediate-mode", "-w", "-", self.bpf,
        ]  # fmt: skip

    def parse_stats(self, line: str) -> bool:
        hit = parse_tcpdump_stats(line, self.drops)
        if hit and self.proc is not None and self.proc.poll() is not None:
            self.drops.final = True
        return hit

    def request_stats(self) -> None:
        if self.proc is not None and self.proc.poll() is None and self._ready.is_set():
            self.proc.send_signal(signal.SIGUSR1)

    def close(self) -> None:
        super().close()
        if self.drops.kernel is not None:
            self.drops.final = True


class DumpcapBackend(PipeBackend):
    name = "dumpcap"
    ready_marker = "Capturing on"

    def argv(self) -> list[str]:
        argv = [self.tool, "-i", self.interface, "-B", str(BUFFER_MIB), "-f", self.bpf, "-w", "-"]
        return argv + (["-s", str(self.snaplen)] if self.snaplen else [])

    def parse_stats(self, line: str) -> bool:
        return parse_dumpcap_stats(line, self.drops)

    def start(self, timeout: float = START_TIMEOUT) -> None:
        super().start(timeout)
        # dumpcap prints "Capturing on" before opening the device; give a failure a moment.
        time.sleep(0.2)
        if self.proc is not None and self.proc.poll() is not None:
            if self._stderr_thread is not None:
                self._stderr_thread.join(1.0)
            raise LiveCaptureError(self._failure())


class ScapyBackend:
    """scapy's Linux packet socket: the fallback without tcpdump and dumpcap. The kernel filter
    needs tcpdump to compile it; without one every packet comes up and the decoder skips what
    is not IPsec (``filtered_in_kernel`` is then False)."""

    name = "scapy"

    def __init__(self, interface: str, bpf: str) -> None:
        self.interface = interface
        self.bpf = bpf
        self.drops = DropCounts(kernel=0)
        self.filtered_in_kernel = True
        self._stop = threading.Event()
        self._sock: object | None = None

    def start(self) -> None:
        from scapy.arch.linux import L2ListenSocket
        from scapy.error import Scapy_Exception

        if self.interface == "any":
            raise LiveCaptureError("the scapy back end cannot capture on 'any' (mixed link types); name an interface")
        # scapy warns on stderr for link types it cannot name; the frames keep theirs below
        logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
        self.linktype = LINKTYPE_OF_ARPHRD.get(arphrd(self.interface), 1)
        iface = self.interface
        try:
            try:
                self._sock = L2ListenSocket(iface=iface, filter=self.bpf)
            except Scapy_Exception:
                self.filtered_in_kernel = False
                self._sock = L2ListenSocket(iface=iface)
        except PermissionError:
            raise LiveCaptureError(permission_message(self.interface, None)) from None
        except OSError as e:
            raise LiveCaptureError(f"scapy cannot capture on {self.interface}: {e.strerror or e}") from None

    def frames(self, before_wait: Callable[[], None] | None = None) -> Iterator[Frame]:
        from scapy.config import conf

        sock = self._sock
        assert sock is not None
        linktypes = conf.l2types.layer2num
        default = self.linktype
        frame = 0
        while not self._stop.is_set():
            ready, _, _ = select.select([sock], [], [], 0)
            if not ready:
                if before_wait is not None:
                    before_wait()
                ready, _, _ = select.select([sock], [], [], 0.2)
                if not ready:
                    continue
            cls, data, ts = sock.recv_raw()  # type: ignore[attr-defined]
            if data is None:
                continue
            frame += 1
            yield frame, float(ts if ts is not None else time.time()), linktypes.get(cls, default), data, len(data)
        self.request_stats()

    def request_stats(self) -> None:
        """PACKET_STATISTICS: packets and drops since the previous call (the kernel resets them)."""
        ins = getattr(self._sock, "ins", None)
        if ins is None:
            return
        try:
            packets, dropped = struct.unpack("II", ins.getsockopt(263, 6, 8))  # SOL_PACKET, PACKET_STATISTICS
        except OSError:
            return
        self.drops.received = (self.drops.received or 0) + packets
        self.drops.kernel = (self.drops.kernel or 0) + dropped

    def ended_note(self) -> str:
        return ""

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()  # type: ignore[attr-defined]
            self._sock = None
        self.drops.final = True


def open_backend(
    interface: str, bpf: str, backend: str = "auto", *, snaplen: int = 0
) -> LiveBackend:
    """Check the interface, pick a back end (``auto``: dumpcap, tcpdump, scapy) and start it."""
    if backend not in BACKENDS:
        raise LiveCaptureError(f"unknown capture back end {backend!r} (choose from {', '.join(BACKENDS)})")
    check_interface(interface)
    order = ("dumpcap", "tcpdump", "scapy") if backend == "auto" else (backend,)
    for name in order:
        if name == "scapy":
            try:
                import scapy.arch.linux  # noqa: F401
            except ImportError:
                continue
            chosen: LiveBackend = ScapyBackend(interface, bpf)
        else:
            tool = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")
            if tool is None:
                continue
            cls = TcpdumpBackend if name == "tcpdump" else DumpcapBackend
            chosen = cls(interface, bpf, tool=tool, snaplen=snaplen)
        chosen.start()
        return chosen
    wanted = "dumpcap, tcpdump or scapy" if backend == "auto" else backend
    raise LiveCaptureError(f"no capture tool found: install {wanted} (apt-get install tshark or tcpdump)")
