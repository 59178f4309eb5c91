"""The run folder's lock (semiyolo.runfiles.RunLock): one process at a time, re-entrant within one."""

import os
import subprocess
import sys

from semiyolo.runfiles import RunLock

TRY = "import sys; from semiyolo.runfiles import RunLock; print(RunLock(sys.argv[1]).try_acquire())"


def _other_process_claims(folder) -> str:
    return subprocess.run([sys.executable, "-c", TRY, str(folder)], capture_output=True, text=True).stdout.strip()


def test_another_process_is_refused_while_held_and_gets_it_after(tmp_path):
    lock = RunLock(tmp_path)
    assert lock.try_acquire() is None
    assert _other_process_claims(tmp_path) == str(os.getpid())  # refused, naming this process
    lock.release()
    assert not (tmp_path / ".semiyolo.lock").exists()
    assert _other_process_claims(tmp_path) == "None"  # free: the other process took it (and ended)


def test_a_killed_holder_frees_the_claim_though_its_file_stays(tmp_path):
    hold = "import sys, time; from semiyolo.runfiles import RunLock; RunLock(sys.argv[1]).acquire(); "
    hold += "print('held', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert RunLock(tmp_path).try_acquire() == holder.pid
    finally:
        holder.kill()
        holder.wait()
    assert (tmp_path / ".semiyolo.lock").read_text() == str(holder.pid)  # what a kill leaves
    lock = RunLock(tmp_path)
    assert lock.try_acquire() is None and (tmp_path / ".semiyolo.lock").read_text() == str(os.getpid())
    lock.release()


def test_the_claim_is_reentrant_within_a_process(tmp_path):
    outer, inner = RunLock(tmp_path), RunLock(tmp_path)
    assert outer.try_acquire() is None and inner.try_acquire() is None
    inner.release()
    assert (tmp_path / ".semiyolo.lock").exists()  # the outer holder still has it
    assert _other_process_claims(tmp_path) == str(os.getpid())
    outer.release()
    assert not (tmp_path / ".semiyolo.lock").exists()
