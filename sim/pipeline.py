"""``vigil pipeline``: the main job behind ``make run``.

1. Simulate 30 days of raw logs (skipped when the raw dir already holds the same simulation),
   and a Community Notes world on its posts (sim.notes_pipeline).
2. Run the platform THROUGH AIRFLOW: ``airflow dags test vigil_daily <last day>`` with
   ``{"backfill": true}`` (one ingest, one dbt build per stage, one materialize for the whole
   history), against the metadata DB under the data root (migrated automatically).
   Then ``airflow dags test vigil_notes``: the notes pipeline on the simulated download.
   Then ``airflow dags test vigil_accounts`` on the accounts world (sim.accounts_pipeline: bots,
   evaders, campaigns in their own data root ``<data root>/accounts_world``, simulated and run
   through the stream's rules in the background while vigil_daily runs).
3. ``airflow dags test vigil_train <last day>``: training set, models, evaluation, registry.
4. Print a summary read back from what the runs produced: ingest counts, the UAM histogram, gate
   results, a served feature vector, model metrics and where the HTML reports are. A part whose
   stage is not available says so ("not available: <reason>"); nothing is made up.
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import re
import subprocess
import threading
import time
from datetime import date, timedelta
from pathlib import Path

from vigil import config
from vigil.errors import UserError
from vigil.orchestration import airflow_env

log = logging.getLogger(__name__)

SIM_MARKER = ".vigil-simulation.json"
DEFAULTS = {"users": 20000, "days": 30, "start": "2026-10-01", "seed": 7, "drift_day": None}


# -- step 1: simulate -----------------------------------------------------------------------------


def _sim_params(args: argparse.Namespace) -> dict:
    return {
        "users": args.users,
        "days": args.days,
        "start": args.start,
        "seed": args.seed,
        "drift_day": args.drift_day,
    }


def ensure_simulation(raw_dir: Path, params: dict, force: bool = False) -> dict:
    """Simulate into ``raw_dir`` unless its marker says it already holds this simulation."""
    marker = raw_dir / SIM_MARKER
    if not force and marker.exists():
        saved = json.loads(marker.read_text())
        if saved.get("params") == params and (raw_dir / "events").is_dir():
            print(f"[1/4] simulate: {raw_dir} already holds this simulation, skipped", flush=True)
            return saved.get("counts", {})
    try:
        from sim.world import simulate
    except ImportError as exc:
        if (raw_dir / "events").is_dir():
            print(f"[1/4] simulate: not available ({exc}); using the logs in {raw_dir}")
            return {}
        raise UserError(f"The simulator is not available ({exc}) and {raw_dir} holds no logs.")
    print(
        f"[1/4] simulate: {params['users']} users x {params['days']} days from {params['start']}"
        f" (seed {params['seed']}) -> {raw_dir}",
        flush=True,
    )
    started = time.monotonic()
    counts = simulate(
        raw_dir,
        users=params["users"],
        days=params["days"],
        start=date.fromisoformat(params["start"]),
        seed=params["seed"],
        drift_day=params["drift_day"],
        world=params.get("world"),  # a named world (sim.params.WORLDS); absent: the default
    )
    counts = json.loads(json.dumps(counts or {}, default=str))
    marker.write_text(json.dumps({"params": params, "counts": counts}, indent=2))
    print(f"      done in {time.monotonic() - started:.0f}s: {_short(counts)}", flush=True)
    return counts


# -- step 2/3: airflow dags test ------------------------------------------------------------------

_START = re.compile(r"\[DAG TEST\] start(?:ing)? (?:task )?task_id=(\S+)")
_END = re.compile(r"\[DAG TEST\] end task task_id=(\S+)")
_STATE = re.compile(r"new_state=(\w+)")
_ERROR = re.compile(r"\[error\s*\]|Traceback|Exception", re.IGNORECASE)


def dags_test(
    dag_id: str, logical_date: str, conf: dict | None = None, env: dict | None = None
) -> dict:
    """``airflow dags test`` with live progress; the full log goes to a file under the data root.

    Returns ``{"ok", "seconds", "tasks": {task: {"state", "seconds"}}, "log"}``.
    """
    env = env or airflow_env.build_env()
    log_dir = airflow_env.airflow_home() / "logs" / "vigil-pipeline"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{dag_id}.log"
    cmd = [str(airflow_env.airflow_bin()), "dags", "test", dag_id, logical_date]
    if conf:
        cmd += ["-c", json.dumps(conf)]
    started = time.monotonic()
    tasks: dict[str, dict] = {}
    current: str | None = None
    task_started = started
    last_error = ""
    lines: queue.Queue = queue.Queue()
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=str(airflow_env.airflow_home()),
        )

        def pump() -> None:
            for line in proc.stdout:  # type: ignore[union-attr]
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        last_beat = time.monotonic()
        while True:
            try:
                line = lines.get(timeout=5)
            except queue.Empty:
                if current and time.monotonic() - last_beat > 30:
                    elapsed = time.monotonic() - task_started
                    print(f"      {current} ... still running ({elapsed:.0f}s)", flush=True)
                    last_beat = time.monotonic()
                continue
            if line is None:
                break
            log_file.write(line)
            if m := _START.search(line):
                current, task_started, last_beat = m.group(1), time.monotonic(), time.monotonic()
                tasks[current] = {"state": "running", "seconds": None}
            elif (m := _STATE.search(line)) and current:
                tasks[current]["state"] = m.group(1)
            elif m := _END.search(line):
                name = m.group(1)
                info = tasks.setdefault(name, {"state": "?"})
                info["seconds"] = round(time.monotonic() - task_started, 1)
                mark = "ok" if info["state"] == "success" else info["state"].upper()
                print(f"      {name:<24} {mark:<8} {info['seconds']:>6.1f}s", flush=True)
                if info["state"] != "success" and last_error:
                    print(f"        {last_error.strip()[:300]}", flush=True)
                current = None
            elif _ERROR.search(line) and "warning" not in line[:60]:
                last_error = line
        proc.wait()
    return {
        "ok": proc.returncode == 0,
        "seconds": round(time.monotonic() - started, 1),
        "tasks": tasks,
        "log": str(log_path),
    }


def run_results(dag_id: str) -> dict:
    """The latest run of ``dag_id`` as recorded by Airflow: task states and returned values."""
    import sqlalchemy as sa

    engine = sa.create_engine(airflow_env.sql_alchemy_conn())
    try:
        with engine.connect() as conn:
            run = conn.execute(
                sa.text(
                    "select id, run_id, state from dag_run where dag_id = :d order by id desc limit 1"
                ),
                {"d": dag_id},
            ).first()
            if run is None:
                return {}
            states = dict(
                conn.execute(
                    sa.text(
                        "select task_id, state from task_instance where dag_id = :d and run_id = :r"
                    ),
                    {"d": dag_id, "r": run.run_id},
                ).all()
            )
            values = {}
            for task_id, value in conn.execute(
                sa.text(
                    "select task_id, value from xcom where dag_run_id = :i and key = 'return_value'"
                ),
                {"i": run.id},
            ).all():
                values[task_id] = json.loads(value) if isinstance(value, (str, bytes)) else value
    finally:
        engine.dispose()
    return {"run_id": run.run_id, "state": run.state, "states": states, "values": values}


# -- step 4: summary ------------------------------------------------------------------------------


def _short(value, limit: int = 200) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 70 - len(title)), flush=True)


def _unavailable(reason: object) -> None:
    print(f"  not available: {reason}", flush=True)


def _score_with_a_new_champion(day: str) -> None:
    """On a clean data root vigil_daily's score task ran before vigil_train made the first
    champion (it skipped: no champion model): score the day with it now, as the next daily run
    would, so the world leaves `make run` with its champion's scores."""
    try:
        score = (run_results("vigil_daily").get("values") or {}).get("score") or {}
    except Exception:  # noqa: BLE001 - no Airflow record: nothing to complete
        return
    if score.get("skipped") != "no champion model":
        return
    from training.score import score_day

    result = score_day(day)
    print(
        f"      score {day}: vigil_daily ran before the first champion; scored now with "
        f"{result.get('model_id', '?')}: {result.get('posts', 0):,} posts"
    )


def _guard(title: str, fn) -> None:
    _section(title)
    try:
        fn()
    except ImportError as exc:
        _unavailable(f"{exc.name or exc} is not installed yet")
    except Exception as exc:  # noqa: BLE001 - one summary part must not hide the others
        _unavailable(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}")


def _print_ingest(daily: dict) -> None:
    counts = daily.get("values", {}).get("ingest")
    if counts is None:
        state_log = config.paths().ingest_state / "ingest_log.jsonl"
        if not state_log.exists():
            _unavailable("the ingest task returned nothing and no ingest log exists")
            return
        counts = json.loads(state_log.read_text().strip().splitlines()[-1])
        print("  (from the lake's ingest log)")
    for key in ("read", "loaded", "quarantined", "duplicates"):
        if key in counts:
            print(f"  {key:<12} {counts[key]:>12,}")
    extra = {
        k: v for k, v in counts.items() if k not in ("read", "loaded", "quarantined", "duplicates")
    }
    if extra:
        print(f"  {_short(extra, 300)}")


def _needs(daily: dict, task: str) -> bool:
    """True when vigil_daily's ``task`` succeeded; otherwise say why this part is missing (so the
    summary never builds anything outside Airflow to fill the gap)."""
    state = (daily.get("states") or {}).get(task)
    if state == "success":
        return True
    _unavailable(f"vigil_daily's {task} task did not succeed (state: {state or 'not run'})")
    return False


def _print_uam(daily: dict) -> None:
    if not _needs(daily, "dbt_marts"):
        return
    from vigil.uam.query import histogram, split_tail, tail_line

    result = histogram(60)
    bins = result.get("buckets") or []
    if not bins:
        print(f"  {_short(result, 600)}")
        return
    shown, rest = split_tail(bins)
    total = sum(int(b["users"]) for b in shown + rest)
    print(
        f"  as of {result['as_of']}: {total:,} users by active minutes over 30 days "
        "(60-minute bins; empty bins not shown)"
    )
    largest = max((int(b["users"]) for b in shown), default=0) or 1
    for b in shown:
        users = int(b["users"])
        label = f"{b['lower']}-{b['upper']}"
        print(f"  {label:>12} min {users:>9,} {'#' * max(1, 40 * users // largest)}")
    if rest:
        print(f"  {tail_line(rest)}")


def _print_gates(daily: dict) -> None:
    states = daily.get("states", {})
    values = daily.get("values", {})
    gates = [t for t in ("validate_raw", "validate_staging", "validate_marts", "validate_features")]
    if not states:
        _unavailable("vigil_daily has no recorded run")
        return
    for task in gates:
        state = states.get(task) or "not run"
        detail = values.get(task)
        line = f"  {task.removeprefix('validate_'):<10} {state:<16}"
        if isinstance(detail, dict) and detail.get("summary"):
            # "gate marts 2026-10-30: PASSED (57/57 checks passed on 5 tables, 12.3 s); report ..."
            line += " " + str(detail["summary"]).split(": ", 1)[-1]
            failed = [r for r in detail.get("results", []) if not r.get("success")]
            for r in failed[:5]:
                line += f"\n      {r.get('severity', '')}: {r.get('message', '')}"
        elif isinstance(detail, dict):
            line += " " + _short(detail, 120)
        print(line)


def _sample_ids() -> tuple[int | None, int | None]:
    """The most-viewed post of the last day in the lake and its author (read-only, no warehouse)."""
    import duckdb

    days = sorted(config.paths().lake_events.glob("dt=*/events.parquet"))
    if not days:
        return None, None
    con = duckdb.connect()
    try:
        row = con.execute(
            "select post_id, any_value(target_user_id) from read_parquet(?) "
            "where action = 'view' and post_id is not null group by post_id "
            "order by count(*) desc, post_id limit 1",
            [str(days[-1])],
        ).fetchone()
    finally:
        con.close()
    return (int(row[0]), int(row[1]) if row[1] is not None else None) if row else (None, None)


def _print_features(daily: dict) -> None:
    if not _needs(daily, "feast_materialize"):
        return
    from vigil.serving.features import online_features

    post_id, user_id = _sample_ids()
    if post_id is None:
        _unavailable("the lake holds no viewed posts")
        return
    vector = online_features(post_id=post_id, user_id=user_id)
    print(f"  post_id={post_id} (most viewed on the last day), author user_id={user_id}")
    items = vector.items() if isinstance(vector, dict) else []
    for name, value in items:
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        print(f"  {name:<40} {_short(value, 60)}")


def _flat_numbers(value, prefix: str = "") -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    if isinstance(value, dict):
        for key, sub in value.items():
            out += _flat_numbers(sub, f"{prefix}{key}.")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        out.append((prefix.rstrip("."), value))
    return out


def _print_model(train: dict) -> None:
    result = (train.get("values") or {}).get("train_evaluate_register")
    if result is None:
        state = (train.get("states") or {}).get("train_evaluate_register") or "not run"
        _unavailable(f"vigil_train returned no result (task state: {state})")
        return
    for key in ("model_id", "version", "champion", "promoted", "reused", "report", "report_path"):
        if key in result:
            print(f"  {key:<28} {result[key]}")
    numbers = _flat_numbers(result.get("metrics", result))
    # Quality metrics first (AUC, precision/recall, calibration), then the rest, 25 lines at most.
    key_words = ("auc", "ap", "precision", "recall", "f1", "ece", "brier", "prevented_share")
    numbers.sort(key=lambda item: not any(w in item[0].rsplit(".", 1)[-1] for w in key_words))
    for name, value in numbers[:25]:
        print(f"  {name:<40} {value:.4f}" if isinstance(value, float) else f"  {name:<40} {value}")
    if not numbers:
        print(f"  {_short(result, 600)}")


def _print_reports() -> None:
    home = config.paths().home
    found = sorted(p for p in home.rglob("*.html") if "airflow" not in p.parts)
    if not found:
        _unavailable(f"no HTML report under {home} yet")
        return
    for path in found[:15]:
        print(f"  {path}")
    if len(found) > 15:
        print(f"  ... and {len(found) - 15} more")


# -- command --------------------------------------------------------------------------------------


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--raw", type=Path, default=None, help="raw log dir (default DATA/raw)")
    parser.add_argument("--users", type=int, default=DEFAULTS["users"])
    parser.add_argument("--days", type=int, default=DEFAULTS["days"])
    parser.add_argument("--start", default=DEFAULTS["start"], help="first day, YYYY-MM-DD")
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    parser.add_argument("--drift-day", type=int, default=DEFAULTS["drift_day"])
    parser.add_argument("--resimulate", action="store_true", help="simulate even if present")
    parser.add_argument("--skip-train", action="store_true", help="do not run vigil_train")
    parser.add_argument(
        "--skip-accounts", action="store_true", help="no accounts world, no vigil_accounts"
    )


def _train(args: argparse.Namespace, daily_run: dict, last_day: str, env: dict) -> dict | None:
    """``airflow dags test vigil_train`` unless skipped; then the new champion's scores and the
    grading on the truth. The run's result, None when it did not run."""
    if args.skip_train:
        print("[3/4] airflow: vigil_train skipped (--skip-train)")
        return None
    if not daily_run["ok"]:
        print("[3/4] airflow: vigil_train skipped: vigil_daily did not succeed")
        return None
    print(f"[3/4] airflow: vigil_train {last_day}", flush=True)
    train_run = dags_test("vigil_train", last_day, env=env)
    status = "succeeded" if train_run["ok"] else "FAILED"
    print(f"      vigil_train {status} in {train_run['seconds']:.0f}s (log: {train_run['log']})")
    if train_run["ok"]:
        _score_with_a_new_champion(last_day)
        from sim import harness

        _guard("model graded on the simulator's truth", harness.print_after_training)
    return train_run


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    p = config.paths()
    raw_dir = (args.raw or p.raw).resolve()
    try:
        start = date.fromisoformat(args.start)
    except ValueError as exc:
        raise UserError(f"--start {args.start!r} is not a date: use YYYY-MM-DD.") from exc
    last_day = (start + timedelta(days=args.days - 1)).isoformat()
    print(f"vigil pipeline: data root {p.home}", flush=True)
    ensure_simulation(raw_dir, _sim_params(args), force=args.resimulate)
    from sim import notes_pipeline

    notes_pipeline.ensure_notes(raw_dir, notes_pipeline.notes_params(args), args.resimulate)
    from sim import accounts_pipeline as accounts

    accounts_params = accounts.accounts_params(args)
    prep = None if args.skip_accounts else accounts.start(p.home, accounts_params, args.resimulate)

    print(f"[2/4] airflow: vigil_daily {last_day} (backfill: all days in {raw_dir})", flush=True)
    env = airflow_env.build_env()
    env.setdefault("VIGIL_REVIEW_ANSWERER", "sim.moderators:answer")  # moderators answer reviews
    airflow_env.ensure_ready(env)
    daily_run = dags_test(
        "vigil_daily", last_day, {"backfill": True, "raw_dir": str(raw_dir)}, env=env
    )
    status = "succeeded" if daily_run["ok"] else "FAILED"
    print(f"      vigil_daily {status} in {daily_run['seconds']:.0f}s (log: {daily_run['log']})")

    print(f"[2/4] airflow: vigil_notes {last_day} (Community Notes in {raw_dir / 'notes'})")
    notes_run = notes_pipeline.run_dag(dags_test, last_day, raw_dir, env)
    if prep is not None:
        print(f"[2/4] airflow: vigil_accounts (account integrity in {prep.root})", flush=True)
    accounts_run = accounts.run_dag(dags_test, prep, accounts_params, env)

    train_run = _train(args, daily_run, last_day, env)

    print("[4/4] summary", flush=True)
    daily: dict = {}
    train: dict = {}
    notes: dict = {}
    accounts_results: dict = {}
    try:
        notes = run_results("vigil_notes")
        accounts_results = run_results("vigil_accounts") if accounts_run else {}
        daily = run_results("vigil_daily")
        train = run_results("vigil_train") if train_run else {}
    except Exception as exc:  # noqa: BLE001 - the summary still shows what the data root holds
        log.warning("could not read the Airflow run records: %s", exc)
    _guard("ingest (lake)", lambda: _print_ingest(daily))
    _guard("User Active Minutes (30 days)", lambda: _print_uam(daily))
    _guard("quality gates", lambda: _print_gates(daily))
    _guard("served feature vector (Feast online store)", lambda: _print_features(daily))
    _guard(
        "model", lambda: _print_model(train) if train_run else _unavailable("vigil_train not run")
    )
    _guard(
        "Community Notes (vigil_notes)",
        lambda: notes_pipeline.print_summary(notes_run, notes, _unavailable),
    )
    if prep is not None:
        _guard(
            "Account integrity (vigil_accounts, stream rules)",
            lambda: accounts.print_summary(accounts_run, accounts_results, prep.root, _unavailable),
        )
    _guard("HTML reports", _print_reports)
    ok = daily_run["ok"] and notes_run["ok"] and (train_run is None or train_run["ok"])
    ok = ok and (prep is None or bool(accounts_run and accounts_run["ok"]))
    print(
        f"\nvigil pipeline {'finished' if ok else 'FAILED'} in {time.monotonic() - started:.0f}s."
        f" Airflow UI on these runs: make airflow",
        flush=True,
    )
    return 0 if ok else 1
