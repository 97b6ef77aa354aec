"""The real-time guard puts a SCHED_FIFO child back on SCHED_OTHER."""

import os
import subprocess

import pytest

from tests import rt_guard


def test_sweep_resets_a_realtime_child():
    child = subprocess.Popen(["sleep", "30"])
    try:
        try:
            os.sched_setscheduler(child.pid, os.SCHED_FIFO, os.sched_param(1))
        except PermissionError:
            pytest.skip("setting SCHED_FIFO needs root or CAP_SYS_NICE")
        assert os.sched_getscheduler(child.pid) == os.SCHED_FIFO
        assert rt_guard.sweep() >= 1
        assert os.sched_getscheduler(child.pid) == os.SCHED_OTHER
    finally:
        child.kill()
        child.wait()
