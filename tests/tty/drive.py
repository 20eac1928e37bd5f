#!/usr/bin/env python3
"""Runs a command on a pseudo-terminal, as a person at a terminal would.

usage: drive.py DIR -- COMMAND...

Stdin, stdout and stderr of COMMAND are the terminal, 250 columns wide. Everything the terminal
showed so far is in DIR/screen (rewritten as it grows). To type, write
DIR/type.0, then DIR/type.1, ... (each written whole, e.g. by a rename): the
driver types the content of each, in that order, as soon as it appears. The
exit code of COMMAND is the driver's exit code.
"""
import fcntl
import os
import pty
import select
import struct
import sys
import termios
import time


def main() -> int:
    d = sys.argv[1]
    cmd = sys.argv[sys.argv.index("--") + 1 :]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(cmd[0], cmd)
    # A wide terminal: progress lines are cut at its width.
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 250, 0, 0))
    screen = b""
    typed = 0
    deadline = time.time() + 180
    while time.time() < deadline:
        nxt = os.path.join(d, f"type.{typed}")
        if os.path.exists(nxt):
            with open(nxt, "rb") as f:
                data = f.read()
            try:
                os.write(fd, data)
            except OSError:
                pass
            typed += 1
            continue
        r, _, _ = select.select([fd], [], [], 0.02)
        if fd in r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            screen += data
            tmp = os.path.join(d, "screen.tmp")
            with open(tmp, "wb") as f:
                f.write(screen)
            os.replace(tmp, os.path.join(d, "screen"))
    else:
        os.kill(pid, 9)  # the deadline passed: the test fails on the exit code
    _, status = os.waitpid(pid, 0)
    tmp = os.path.join(d, "screen.tmp")
    with open(tmp, "wb") as f:
        f.write(screen)
    os.replace(tmp, os.path.join(d, "screen"))
    return os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8


if __name__ == "__main__":
    sys.exit(main())
