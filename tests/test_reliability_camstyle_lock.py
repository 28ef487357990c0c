"""Two generate_camstyle runs into one folder (issue 13, item 18): the second is refused, naming the
holder of the folder's lock file; a lock left by a dead process on this host is removed with a note;
the lock goes at the end of a run, also when the run fails. The refusal tests fail on the code
before the fix, which had no lock and did the work twice."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest
from test_camstyle import CAMS, make_checkpoint, make_market

from reid_stargan.camstyle import generate as gen
from reid_stargan.camstyle.generate import GenerateOptions, generate_camstyle
from reid_stargan.camstyle.naming import lock_name
from reid_stargan.cli.generate_camstyle import cli
from reid_stargan.data.datasets import build_dataset
from reid_stargan.utils.lock import FolderLock, LockHeldError

OPTS = dict(progress=False, judge=False, workers=1, batch_size=4)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("rel_lock")
    root = make_market(base / "market", ids=2, per_cam=1)
    return root, make_checkpoint(base / "ckpt"), build_dataset("market_layout", root)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid  # exited and reaped: no such process (pids are not reused this fast)


def write_lock(path, pid, host=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"tool": "generate_camstyle", "pid": pid, "host": host or socket.gethostname(),
                                "started": time.time() - 5}))


def fakes(folder):
    return sorted(p.name for p in folder.glob("*_fake_*"))


def test_a_second_run_into_a_held_folder_is_refused_naming_the_holder(setup, tmp_path, capsys):
    root, ckpt, ds = setup
    out = tmp_path / "camstyle"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # the "first run"
    try:
        write_lock(out / lock_name(), holder.pid)
        with pytest.raises(LockHeldError, match=rf"being written by another run \(generate_camstyle pid {holder.pid} "
                                                rf"on {socket.gethostname()}, started .*\.generate\.lock"):
            generate_camstyle(ckpt, ds.train, out, CAMS, GenerateOptions(**OPTS))
        assert fakes(out) == []  # no work done twice
        code = cli(["--checkpoint", str(ckpt), "--data-root", str(root), "--out", str(out), "--no-progress",
                    "--no-judge"])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
        assert f"pid {holder.pid}" in err and "if that run is dead, remove" in err
        assert (out / lock_name()).is_file()  # the holder's lock is left alone
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_of_another_host_is_never_taken_over(setup, tmp_path):
    _, ckpt, ds = setup
    out = tmp_path / "camstyle"
    write_lock(out / lock_name(), dead_pid(), host="some-other-node")
    with pytest.raises(LockHeldError, match="on some-other-node"):
        generate_camstyle(ckpt, ds.train, out, CAMS, GenerateOptions(**OPTS))


def test_a_stale_lock_is_removed_with_a_note_and_the_run_goes_on(setup, tmp_path, capsys):
    _, ckpt, ds = setup
    out = tmp_path / "camstyle"
    pid = dead_pid()
    write_lock(out / lock_name(), pid)
    summary = generate_camstyle(ckpt, ds.train, out, CAMS, GenerateOptions(**OPTS))
    assert summary["images_out"] == len(ds.train) * (CAMS - 1) and summary["complete"] is True
    assert f"removed stale lock {out / lock_name()} (generate_camstyle pid {pid}" in capsys.readouterr().err
    assert not (out / lock_name()).exists()  # released at the end


def test_the_lock_is_released_when_a_run_fails(setup, tmp_path, monkeypatch):
    _, ckpt, ds = setup
    out = tmp_path / "camstyle"

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gen, "_write_output", full_disk)
    with pytest.raises(OSError, match="No space left"):
        generate_camstyle(ckpt, ds.train, out, CAMS, GenerateOptions(**OPTS))
    assert not (out / lock_name()).exists()
    monkeypatch.undo()
    assert generate_camstyle(ckpt, ds.train, out, CAMS, GenerateOptions(**OPTS))["complete"] is True


def test_shards_hold_their_own_locks_and_a_lock_is_only_its_owners(tmp_path):
    assert lock_name(0, 2) != lock_name(1, 2) != lock_name()
    path = tmp_path / ".generate.lock"
    with FolderLock(path, "a"):
        with pytest.raises(LockHeldError):
            FolderLock(path, "b").acquire()
        path.unlink()  # a user removed it and another run took it: ours must not delete theirs
        other = FolderLock(path, "c").acquire()
    assert path.is_file()
    other.release()
    assert not path.exists()
