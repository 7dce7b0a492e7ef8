"""The ``fastbert`` command run as a user runs it, in a fresh process: with its output captured, or with its stderr a
terminal, where progress bars are drawn."""

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

# the hub unreachable, and no GPU visible, so that the CUDA devices are absent on every machine
ENVIRONMENT = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}


def fastbert_command(*args, stdin: str = "") -> subprocess.CompletedProcess:
    """``fastbert ARGS``, its stdout and stderr captured."""
    return subprocess.run([sys.executable, "-m", "fastbert.cli", *map(str, args)], input=stdin, capture_output=True,
                          text=True, timeout=120, cwd=REPO_ROOT, env=ENVIRONMENT, check=False)


def fastbert_command_on_a_terminal(*args, stdin: str = "") -> subprocess.CompletedProcess:
    """``fastbert ARGS`` with stdout captured and stderr a terminal 120 columns wide (a new pseudo-terminal has 0,
    where tqdm draws nothing); ``stderr`` is what the terminal showed."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    try:
        run = subprocess.run([sys.executable, "-m", "fastbert.cli", *map(str, args)], input=stdin,
                             stdout=subprocess.PIPE, stderr=follower, text=True, timeout=120, cwd=REPO_ROOT,
                             env=ENVIRONMENT, check=False)
    finally:
        os.close(follower)
    run.stderr = _read_all(leader)
    return run


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the terminal's other end is closed: all was read
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode(errors="replace")
