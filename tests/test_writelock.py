"""Writers of a SQLite store take turns on a lock file (store/sql/writelock.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from datatrail.store.sql.writelock import WriterLock


def test_the_next_writer_starts_once_the_lock_is_released(tmp_path: Path) -> None:
    first, second = WriterLock(tmp_path / "trail.db"), WriterLock(tmp_path / "trail.db")
    order: list[str] = []
    try:
        with first.held():
            waiting = threading.Thread(target=lambda: _hold(second, order))
            waiting.start()
            time.sleep(0.2)
            assert order == []  # still waiting: the lock is taken
            order.append("first done")
        waiting.join(10)
        assert order == ["first done", "second in"]
    finally:
        first.close()
        second.close()


def _hold(lock: WriterLock, order: list[str]) -> None:
    with lock.held():
        order.append("second in")


def test_a_writer_gives_up_waiting_and_leaves_it_to_sqlite(tmp_path: Path) -> None:
    holder, impatient = WriterLock(tmp_path / "trail.db"), WriterLock(tmp_path / "trail.db", timeout=0.05)
    try:
        with holder.held(), impatient.held():  # does not wait forever: SQLite's busy timeout takes over
            pass
    finally:
        holder.close()
        impatient.close()


def test_no_lock_file_possible_means_sqlite_locking_alone(tmp_path: Path) -> None:
    lock = WriterLock(tmp_path / "missing-folder" / "trail.db")
    with lock.held():
        pass
    assert not (tmp_path / "missing-folder").exists()


def test_the_lock_of_a_killed_writer_is_released(tmp_path: Path) -> None:
    db = tmp_path / "trail.db"
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from datatrail.store.sql.writelock import WriterLock\n"
        f"lock = WriterLock(Path({str(db)!r}))\n"
        "with lock.held():\n"
        "    print('held', flush=True)\n"
        "    time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        waiter = WriterLock(db, timeout=30)
        got: list[bool] = []
        thread = threading.Thread(target=lambda: got.append(_acquired(waiter)))
        thread.start()
        time.sleep(0.2)
        assert got == []
        proc.send_signal(signal.SIGKILL)
        thread.join(30)
        assert got == [True]
        waiter.close()
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def _acquired(lock: WriterLock) -> bool:
    fd = lock._open()
    return fd is not None and lock._acquire(fd)
