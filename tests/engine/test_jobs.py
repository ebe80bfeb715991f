"""Background training jobs: liveness, commands, event storage, and real worker processes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine import jobs
from engine.training.config import TrainConfig
from engine.errors import EngineError, JobError
from engine.events import BatchEnded, CommandKind, EpochEnded, Message, RunStarted
from engine.ingest.importing import import_folder
from engine.runs import RunFolder, create_run, get_run, update_run
from engine.worker import DatabaseCommandSource, DatabaseEventSink
from engine.workspace import Workspace
from tests.engine.training_helpers import TINY_VARIANT
from tests.factories import make_class_tree
from tests.waiting import wait_until

POLL_TIMEOUT_SECONDS = 420
FINE_TUNE_EPOCHS_TO_KILL = 20


def _queued_run(workspace: Workspace) -> str:
    return create_run(workspace, "B0", TrainConfig(weights="none").to_dict()).id


def _sleeper(*argv: str) -> subprocess.Popen:
    """A real process whose command line names the run (as a worker's does)."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", *argv],
                            start_new_session=True)


# -- liveness -------------------------------------------------------------------------------

def test_dead_worker_is_marked_interrupted_with_a_note(workspace: Workspace) -> None:
    run_id = _queued_run(workspace)
    process = subprocess.Popen([sys.executable, "-c", "pass", run_id])
    process.wait()
    update_run(workspace, run_id, status="running", pid=process.pid, heartbeat_at=time.time())

    status = jobs.job_status(workspace, run_id)

    assert status.run.status == "interrupted"
    assert not status.is_active
    assert f"pid {process.pid}" in status.run.error
    notes = [e.event for e in jobs.read_events(workspace, run_id, kinds=("Message",))]
    assert notes and notes[-1].level == "warning" and "Resume" in notes[-1].text
    assert jobs.active_job(workspace) is None


def test_live_worker_stays_running_until_its_heartbeat_goes_stale(workspace: Workspace) -> None:
    run_id = _queued_run(workspace)
    process = _sleeper(run_id)
    try:
        now = time.time()
        update_run(workspace, run_id, status="running", pid=process.pid, heartbeat_at=now)
        assert jobs.job_status(workspace, run_id, now=now + 5).run.status == "running"
        assert jobs.active_job(workspace).id == run_id

        later = now + jobs.STALE_HEARTBEAT_SECONDS + 1
        status = jobs.job_status(workspace, run_id, now=later)

        assert status.run.status == "interrupted"
        assert "stopped responding" in status.run.error
        assert process.wait(timeout=10) == -signal.SIGKILL   # a hung worker is stopped
    finally:
        if process.poll() is None:
            process.kill()


def test_a_reused_pid_of_another_program_does_not_count_as_the_worker(workspace: Workspace) -> None:
    run_id = _queued_run(workspace)
    other = _sleeper("not-the-run")
    try:
        update_run(workspace, run_id, status="running", pid=other.pid, heartbeat_at=time.time())
        assert jobs.job_status(workspace, run_id).run.status == "interrupted"
        assert other.poll() is None          # the unrelated program was left alone
    finally:
        other.kill()


def test_a_queued_run_without_pid_gets_a_start_grace(workspace: Workspace) -> None:
    run_id = _queued_run(workspace)
    assert jobs.job_status(workspace, run_id).run.status == "queued"
    later = time.time() + jobs.START_GRACE_SECONDS + 1
    assert jobs.job_status(workspace, run_id, now=later).run.status == "interrupted"


# -- commands and events -------------------------------------------------------------------

def test_send_command_validates_and_the_worker_source_consumes_each_once(workspace: Workspace) -> None:
    run_id = _queued_run(workspace)
    process = _sleeper(run_id)
    try:
        update_run(workspace, run_id, status="running", pid=process.pid, heartbeat_at=time.time())
        with pytest.raises(JobError, match="Valid commands"):
            jobs.send_command(workspace, run_id, "pause")
        with pytest.raises(JobError, match="1 to 1000"):
            jobs.send_command(workspace, run_id, "continue")
        with pytest.raises(JobError, match="takes no number"):
            jobs.send_command(workspace, run_id, "halt", 3)

        jobs.send_command(workspace, run_id, "continue", 2)
        jobs.send_command(workspace, run_id, CommandKind.HALT)
        assert [c.kind for c in jobs.job_status(workspace, run_id).pending_commands] == \
            ["continue", "halt"]

        source = DatabaseCommandSource(workspace, run_id)
        received = source()
        assert [(c.kind, c.argument) for c in received] == \
            [(CommandKind.CONTINUE, 2), (CommandKind.HALT, None)]
        assert all(c.sent_at is not None and c.sent_at <= time.time() for c in received)
        assert source() == []
        source.close()
        assert jobs.pending_commands(workspace, run_id) == []
    finally:
        process.kill()


def test_commands_to_a_finished_run_are_refused(workspace: Workspace) -> None:
    run_id = _queued_run(workspace)
    update_run(workspace, run_id, status="finished")
    with pytest.raises(JobError, match="finished"):
        jobs.send_command(workspace, run_id, "halt")
    with pytest.raises(JobError, match="nothing to resume"):
        jobs.resume_job(workspace, run_id)


def test_event_sink_stores_typed_events_and_throttles_batches(workspace: Workspace) -> None:
    from engine.training.callbacks import BatchThrottle

    run_id = _queued_run(workspace)
    sink = DatabaseEventSink(workspace, run_id)
    throttle = BatchThrottle(sink, interval=60.0)   # the one throttle: the training callback's
    sink(RunStarted(run_id, "B0", 32, 8, 2, 2, ("cat", "dog"), "CPU"))
    for batch in range(1, 6):   # within one interval: only the first and the epoch's last pass
        throttle(BatchEnded("head", 1, batch, 5, 0.5, 0.5))
    sink(EpochEnded("head", 1, 3, 0.5, 0.6, 0.7, 0.5, 1e-3, 1e-3, "accuracy", 1.5, True))

    stored = jobs.read_events(workspace, run_id)
    assert [type(s.event).__name__ for s in stored] == \
        ["RunStarted", "BatchEnded", "BatchEnded", "EpochEnded"]
    assert [s.event.batch for s in stored[1:3]] == [1, 5]
    assert stored[0].event.class_names == ("cat", "dog")
    assert jobs.read_events(workspace, run_id, after_id=stored[2].id)[0].event == stored[3].event
    assert [s.id for s in jobs.read_events(workspace, run_id, kinds=("EpochEnded",))] == [stored[3].id]


def test_read_events_skips_rows_of_unknown_kinds(workspace: Workspace) -> None:
    run_id = _queued_run(workspace)
    with workspace.connect() as connection:
        connection.execute("INSERT INTO run_events(run_id, kind, payload_json, created_at) "
                           "VALUES (?, 'FromTheFuture', '{}', 0)", (run_id,))
    DatabaseEventSink(workspace, run_id)(Message("hello"))
    assert [s.event for s in jobs.read_events(workspace, run_id)] == [Message("hello")]


# -- real worker processes -----------------------------------------------------------------

@pytest.fixture
def tiny_workspace(workspace: Workspace, tmp_path: Path) -> Workspace:
    import_folder(workspace, make_class_tree(tmp_path / "photos", per_class=10), workers=1)
    return workspace


def _head_only(**changes) -> TrainConfig:
    """Phase 1 only (cached features: fast on a CPU), trained epoch by epoch (these tests
    count, continue and interrupt its epochs), tiny images, no early stop."""
    settings = dict(variant="B0", weights="none", image_size_px=32, epochs=3, fine_tune_epochs=0,
                    batch_size=8, patience=100, stop_patience=100, head_patience=1000,
                    dwell=False, head_fit="gradient")
    return TrainConfig(**{**settings, **changes})


def _wait_until(condition, timeout: float = POLL_TIMEOUT_SECONDS, what: str = ""):
    return wait_until(condition, timeout, what, interval=0.2)


@pytest.mark.slow
def test_real_worker_trains_to_the_end_and_a_second_launch_is_refused(tiny_workspace: Workspace) -> None:
    workspace = tiny_workspace
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def press_train() -> None:   # two browser sessions pressing Train at the same moment
        barrier.wait()
        try:
            outcomes.append(jobs.start_training_job(workspace, _head_only()))
        except EngineError as err:
            outcomes.append(err)

    threads = [threading.Thread(target=press_train) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run_ids = [o for o in outcomes if isinstance(o, str)]
    refusals = [o for o in outcomes if isinstance(o, JobError)]
    assert len(run_ids) == 1 and len(refusals) == 1, outcomes
    assert "already running" in refusals[0].user_message
    run_id = run_ids[0]
    with pytest.raises(JobError, match="already running"):
        jobs.start_training_job(workspace, _head_only())
    jobs.send_command(workspace, run_id, "continue", 1)   # queued: the worker reads it on start

    status = _wait_until(lambda: (s := jobs.job_status(workspace, run_id)).is_active is False and s,
                         what="the run to end")

    assert status.run.status == "finished", status.run.error
    assert status.run.heartbeat_at is not None and status.run.pid is not None
    kinds = [type(s.event).__name__ for s in jobs.read_events(workspace, run_id)]
    assert kinds.index("RunStarted") < kinds.index("EpochEnded") < kinds.index("RunFinished")
    epochs = [s.event for s in jobs.read_events(workspace, run_id, kinds=("EpochEnded",))]
    assert [e.epoch for e in epochs] == [1, 2, 3, 4]          # 3 planned + "continue 1"
    assert epochs[-1].planned_epochs == 4
    assert (RunFolder(status.run.run_dir).model).is_file()
    assert "RunFinished" in status.log_path.read_text()
    assert jobs.pending_commands(workspace, run_id) == []
    assert jobs.active_job(workspace) is None


@pytest.mark.slow
def test_sigkill_mid_run_marks_interrupted_and_resume_completes(tiny_workspace: Workspace) -> None:
    workspace = tiny_workspace
    run_id = jobs.start_training_job(workspace, _head_only(epochs=40))
    _wait_until(lambda: jobs.read_events(workspace, run_id, kinds=("CheckpointSaved",)),
                what="the first checkpoint")
    pid = get_run(workspace, run_id).pid
    os.kill(pid, signal.SIGKILL)
    _wait_until(lambda: not jobs._is_worker_process(pid, run_id), timeout=30, what="the kill")

    status = jobs.job_status(workspace, run_id)
    assert status.run.status == "interrupted"
    assert status.has_checkpoint
    done_before = max(s.event.epoch for s in jobs.read_events(workspace, run_id, kinds=("EpochEnded",)))
    assert done_before < 40, "the run ended before it could be killed"

    assert jobs.resume_job(workspace, run_id) == run_id
    assert jobs.active_job(workspace).id == run_id
    status = _wait_until(lambda: (s := jobs.job_status(workspace, run_id)).is_active is False and s,
                         what="the resumed run to end")

    assert status.run.status == "finished", status.run.error
    stored = jobs.read_events(workspace, run_id)
    notes = [s.event.text for s in stored if isinstance(s.event, Message)]
    assert any("Resumed from the checkpoint" in text for text in notes)
    epochs = sorted({s.event.epoch for s in stored if isinstance(s.event, EpochEnded)})
    assert epochs == list(range(1, 41))
    assert (RunFolder(status.run.run_dir).model).is_file()
    report = json.loads((status.run.run_dir / "report.json").read_text())
    assert report["num_images"] >= 1


@pytest.mark.slow
def test_sigkill_during_fine_tuning_resumes_to_the_end(tiny_workspace: Workspace) -> None:
    workspace = tiny_workspace
    # The tiny backbone (its fine-tuning step builds in seconds, B0's in a minute); enough
    # epochs that the run is still fine-tuning when the first batch's event is seen.
    run_id = jobs.start_training_job(workspace, _head_only(
        variant=TINY_VARIANT, epochs=1, fine_tune_epochs=FINE_TUNE_EPOCHS_TO_KILL))
    _wait_until(lambda: [s for s in jobs.read_events(workspace, run_id, kinds=("BatchEnded",))
                         if s.event.phase == "fine_tune"], what="the first fine-tuning batch")
    pid = get_run(workspace, run_id).pid
    os.kill(pid, signal.SIGKILL)
    _wait_until(lambda: not jobs._is_worker_process(pid, run_id), timeout=30, what="the kill")
    assert jobs.job_status(workspace, run_id).run.status == "interrupted"

    jobs.resume_job(workspace, run_id)
    status = _wait_until(lambda: (s := jobs.job_status(workspace, run_id)).is_active is False and s,
                         what="the resumed run to end")

    assert status.run.status == "finished", status.run.error
    epochs = sorted({s.event.epoch for s in jobs.read_events(workspace, run_id, kinds=("EpochEnded",))})
    assert epochs == list(range(1, 2 + FINE_TUNE_EPOCHS_TO_KILL))
