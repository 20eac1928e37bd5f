#!/usr/bin/env python3
"""Runs a command on a pseudo-terminal, as a person at a terminal would.

usage: drive.py DIR -- COMMAND...

Stdin, stdout and stderr of COMMAND are the terminal. When the text in
DIR/expect appears on the terminal, DIR/seen is written; the driver then
waits for DIR/answer and types its content. Everything the terminal showed
goes to DIR/screen; the exit code of COMMAND is the driver's exit code.
"""
import os
import pty
import select
import sys
import time


def main() -> int:
    d = sys.argv[1]
    cmd = sys.argv[sys.argv.index("--") + 1 :]
    expect = open(os.path.join(d, "expect")).read().encode()
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(cmd[0], cmd)
    screen = b""
    answered = False
    deadline = time.time() + 120
    while time.time() < deadline:
        if not answered and expect in screen:
            open(os.path.join(d, "seen"), "w").close()
            while not os.path.exists(os.path.join(d, "answer")):
                time.sleep(0.02)
            os.write(fd, open(os.path.join(d, "answer")).read().encode())
            answered = True
        r, _, _ = select.select([fd], [], [], 0.05)
        if fd in r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            screen += data
            with open(os.path.join(d, "screen"), "wb") as f:
                f.write(screen)
    _, status = os.waitpid(pid, 0)
    with open(os.path.join(d, "screen"), "wb") as f:
        f.write(screen)
    return os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8


if __name__ == "__main__":
    sys.exit(main())
