"""The local runner reproduces Argo's semantics on real Hera workflow definitions.

Every step here is a real process (the current Python) so ordering, fan-out, retries, timeouts
and cancellation are observed on actual process runs, not simulated.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest
from hera.workflows import DAG, Container, Parameter, RetryStrategy, Steps, WorkflowTemplate

from tinyforge.workflows.runner import LocalRunner

PY = sys.executable


def py_step(name: str, code: str, inputs=(), outputs=(), **kw) -> Container:
    """A container template whose command runs ``code`` with the current interpreter."""
    return Container(
        name=name,
        image="tinyforge/test",
        command=[PY, "-c", code],
        inputs=[Parameter(name=i) for i in inputs],
        outputs=[Parameter(name=o, value_from={"path": f"/tmp/outputs/{o}"}) for o in outputs],
        **kw,
    )


def write_out(name: str, expr: str) -> str:
    """Python snippet writing ``expr`` to the output parameter file of ``name``."""
    return (
        "import os,pathlib;"
        f"p=pathlib.Path(os.environ['TINYFORGE_OUTPUT_ROOT'])/'tmp/outputs/{name}';"
        f"p.write_text(str({expr}))"
    )


def test_dag_passes_parameters_and_fans_out(tmp_path: Path) -> None:
    with WorkflowTemplate(
        name="fan", entrypoint="main", arguments=[Parameter(name="n", value="4")]
    ) as wf:
        plan = py_step(
            "plan",
            write_out("shards", "__import__('json').dumps(list(range({{inputs.parameters.n}})))"),
            inputs=["n"],
            outputs=["shards"],
        )
        work = py_step(
            "work",
            write_out("double", "int('{{inputs.parameters.i}}')*2"),
            inputs=["i"],
            outputs=["double"],
        )
        total = py_step(
            "total",
            write_out(
                "sum", "sum(map(int, __import__('json').loads('{{inputs.parameters.parts}}')))"
            ),
            inputs=["parts"],
            outputs=["sum"],
        )
        with DAG(name="main"):
            a = plan(name="plan", arguments={"n": "{{workflow.parameters.n}}"})
            b = work(
                name="work",
                arguments={"i": "{{item}}"},
                with_param="{{tasks.plan.outputs.parameters.shards}}",
            )
            c = total(name="total", arguments={"parts": "{{tasks.work.outputs.parameters.double}}"})
            a >> b >> c
    run = LocalRunner(max_parallel=2).run(wf, {"n": "5"})
    assert run.phase == "Succeeded", run.message
    assert len(run.node("work").children) == 5
    assert run.node("total").outputs["sum"] == str(sum(2 * i for i in range(5)))


def test_when_false_skips_and_depends_on_failure_runs_handler(tmp_path: Path) -> None:
    marker = tmp_path / "handled"
    with WorkflowTemplate(name="w", entrypoint="main") as wf:
        fail = py_step("fail", "import sys; print('boom'); sys.exit(3)")
        never = py_step("never", "open('/dev/null')")
        handle = py_step("handle", f"open({str(marker)!r},'w').write('x')")
        with DAG(name="main"):
            f = fail(name="f")
            never(name="skipped", when="1 == 2")
            handle(name="h", depends="f.Failed")
            never(name="after", depends="f")
            _ = f
    run = LocalRunner().run(wf)
    assert run.node("skipped").phase == "Skipped"
    assert run.node("f").phase == "Failed" and "exit code 3" in run.node("f").message
    assert "boom" in run.node("f").message  # the log tail travels with the failure
    assert run.node("after").phase == "Omitted"
    assert marker.exists() and run.node("h").phase == "Succeeded"
    # the failure was handled by a task depending on f.Failed, so the DAG itself succeeds
    assert run.phase == "Succeeded", run.message


def test_failure_fails_workflow_and_exit_handler_sees_status(tmp_path: Path) -> None:
    status_file = tmp_path / "status"
    with WorkflowTemplate(name="w", entrypoint="main", on_exit="record") as wf:
        ok = py_step("ok", "pass")
        bad = py_step("bad", "raise SystemExit(7)")
        py_step("record", f"open({str(status_file)!r},'w').write('{{{{workflow.status}}}}')")
        with DAG(name="main"):
            a = ok(name="a")
            b = bad(name="b")
            c = ok(name="c")
            a >> b >> c
    run = LocalRunner().run(wf)
    assert run.phase == "Failed"
    assert "task 'b' failed: exit code 7" in run.message
    assert run.node("c").phase == "Omitted"
    assert status_file.read_text() == "Failed"


def test_retry_strategy_reruns_until_success(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    code = (
        f"import pathlib,sys; p=pathlib.Path({str(counter)!r});"
        "n=int(p.read_text()) if p.exists() else 0; p.write_text(str(n+1));"
        "sys.exit(0 if n>=2 else 1)"
    )
    with WorkflowTemplate(name="w", entrypoint="main") as wf:
        flaky = py_step("flaky", code, retry_strategy=RetryStrategy(limit="3"))
        with Steps(name="main"):
            flaky(name="try")
    run = LocalRunner().run(wf)
    assert run.phase == "Succeeded", run.message
    assert run.node("try").attempts == 3 and counter.read_text() == "3"


def test_retry_limit_exhausted_fails(tmp_path: Path) -> None:
    with WorkflowTemplate(name="w", entrypoint="main") as wf:
        bad = py_step("bad", "raise SystemExit(1)", retry_strategy=RetryStrategy(limit="1"))
        with Steps(name="main"):
            bad(name="b")
    run = LocalRunner().run(wf)
    assert run.phase == "Failed" and run.node("b").attempts == 2


def test_deadline_stops_a_hanging_step() -> None:
    with WorkflowTemplate(name="w", entrypoint="main") as wf:
        hang = py_step("hang", "import time; time.sleep(60)", active_deadline_seconds=1)
        with Steps(name="main"):
            hang(name="h")
    t0 = time.monotonic()
    run = LocalRunner().run(wf)
    assert time.monotonic() - t0 < 20
    assert run.phase == "Failed" and "deadline of 1 s" in run.node("h").message


def test_cancel_stops_running_step(tmp_path: Path) -> None:
    started = tmp_path / "started"
    child_pid = tmp_path / "pid"
    code = (
        f"import os,time; open({str(child_pid)!r},'w').write(str(os.getpid()));"
        f"open({str(started)!r},'w').write('1'); time.sleep(60)"
    )
    with WorkflowTemplate(name="w", entrypoint="main") as wf:
        long = py_step("long", code)
        with Steps(name="main"):
            long(name="l")
    cancel = threading.Event()

    def cancel_when_started() -> None:
        deadline = time.monotonic() + 30
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.02)  # polling a state (the file), not sleeping in place of it
        cancel.set()

    threading.Thread(target=cancel_when_started, daemon=True).start()
    t0 = time.monotonic()
    run = LocalRunner().run(wf, cancelled=cancel.is_set)
    assert time.monotonic() - t0 < 30
    assert run.phase == "Failed" and run.node("l").message == "cancelled"
    pid = int(child_pid.read_text())
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)


def test_parallelism_is_bounded(tmp_path: Path) -> None:
    log = tmp_path / "spans"
    code = (
        "import time,sys;t0=time.monotonic();time.sleep(0.3);"
        f"open({str(log)!r},'a').write(f'{{t0}} {{time.monotonic()}}\\n')"
    )
    with WorkflowTemplate(name="w", entrypoint="main") as wf:
        s = py_step("s", code)
        with DAG(name="main"):
            for i in range(3):
                s(name=f"s{i}")
    run = LocalRunner(max_parallel=1).run(wf)
    assert run.phase == "Succeeded"
    spans = sorted(tuple(map(float, line.split())) for line in log.read_text().splitlines())
    assert len(spans) == 3
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end - 1e-3, "two steps overlapped despite max_parallel=1"


def test_unknown_variable_and_bad_withparam_are_named() -> None:
    with WorkflowTemplate(name="w", entrypoint="main") as wf:
        s = py_step("s", "print('{{inputs.parameters.x}}')", inputs=["x"])
        with DAG(name="main"):
            s(name="a", arguments={"x": "{{workflow.parameters.nope}}"})
            s(name="b", arguments={"x": "{{item}}"}, with_param="not json")
    run = LocalRunner().run(wf)
    assert run.phase == "Failed"
    assert "workflow.parameters.nope" in run.node("a").message
    assert "not a JSON list" in run.node("b").message


def test_logs_are_streamed_with_node_prefix() -> None:
    with WorkflowTemplate(name="w", entrypoint="main") as wf:
        s = py_step("s", "print('hello'); print('world')")
        with Steps(name="main"):
            s(name="greet")
    lines: list[str] = []
    LocalRunner().run(wf, log=lines.append)
    assert "[greet] hello" in lines and "[greet] world" in lines


def test_unknown_workflow_parameter_rejected() -> None:
    with WorkflowTemplate(
        name="w", entrypoint="main", arguments=[Parameter(name="a", value="1")]
    ) as wf:
        s = py_step("s", "pass")
        with Steps(name="main"):
            s(name="x")
    with pytest.raises(ValueError, match="no parameter 'zzz'"):
        LocalRunner().run(wf, {"zzz": "1"})
    assert json.dumps(wf.to_dict())  # the definition stays a plain Argo object


def test_failure_omits_a_whole_chain_whatever_the_task_names() -> None:
    """Downstream tasks whose names sort before their dependency are omitted too (fail-fast
    settles the DAG in several passes instead of reporting a dependency cycle)."""
    with WorkflowTemplate(name="w", entrypoint="main") as wf:
        bad = py_step("bad", "raise SystemExit(1)")
        ok = py_step("ok", "pass")
        with DAG(name="main"):
            z = bad(name="z-first")
            m = ok(name="m-middle")
            a = ok(name="a-last")
            z >> m >> a
    run = LocalRunner().run(wf)
    assert run.phase == "Failed" and "task 'z-first' failed" in run.message
    assert run.node("m-middle").phase == "Omitted" and run.node("a-last").phase == "Omitted"


def test_retry_expression_skips_retries_for_bad_input(tmp_path: Path) -> None:
    """Exit code 2 (bad input) is not retried; other failures are, up to the limit."""
    counter = tmp_path / "count"
    code = (
        f"import pathlib,sys; p=pathlib.Path({str(counter)!r});"
        "n=int(p.read_text()) if p.exists() else 0; p.write_text(str(n+1));"
        "sys.exit(int(sys.argv[1]))"
    )
    expr = "asInt(lastRetry.exitCode) != 2"
    for exit_code, runs in ((2, 1), (1, 3)):
        counter.unlink(missing_ok=True)
        with WorkflowTemplate(name="w", entrypoint="main") as wf:
            s = Container(
                name="s",
                image="tinyforge/test",
                command=[PY, "-c", code, str(exit_code)],
                retry_strategy=RetryStrategy(limit="2", retry_policy="Always", expression=expr),
            )
            with Steps(name="main"):
                s(name="x")
        run = LocalRunner().run(wf)
        assert run.phase == "Failed" and counter.read_text() == str(runs)
        assert run.node("x").attempts == runs


def test_unsupported_retry_expression_is_an_error() -> None:
    with WorkflowTemplate(name="w", entrypoint="main") as wf:
        s = Container(
            name="s",
            image="tinyforge/test",
            command=[PY, "-c", "pass"],
            retry_strategy=RetryStrategy(limit="1", expression="lastRetry.status == 'Error'"),
        )
        with Steps(name="main"):
            s(name="x")
    run = LocalRunner().run(wf)
    assert run.node("x").phase == "Error" and "not supported" in run.node("x").message
