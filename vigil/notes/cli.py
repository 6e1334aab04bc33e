"""``vigil notes score|ingest|run|show``: Community Notes in the public download format.

``score`` scores files directly; ``ingest``, ``run`` and ``show`` are the pipeline
(:mod:`vigil.notes.pipeline`, docs/notes.md).

Writes to ``--out``: prescoring_note_model_output.tsv (first round), scored_notes.tsv,
helpfulness_scores.tsv, note_status_history.tsv, quarantine.tsv (rows set aside),
scoring_run.json (the resolved config, counts and solver timings) and, beyond the reference,
colluding_raters.tsv, colluding_pairs.tsv and contributor_reputation.tsv.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path

from vigil.errors import UserError
from vigil.notes.files import OUTPUT_FILES, contributor_files

log = logging.getLogger(__name__)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    score = sub.add_parser("score", help="score notes and raters (both rounds, statuses, history)")
    score.add_argument("--notes", type=Path, required=True, help="notes-00000.tsv")
    score.add_argument("--ratings", type=Path, required=True, help="ratings-00000.tsv")
    score.add_argument("--status", type=Path, help="noteStatusHistory-00000.tsv of the last run")
    score.add_argument("--enrollment", type=Path, help="userEnrollment-00000.tsv")
    score.add_argument("--out", type=Path, required=True, help="output directory")
    score.add_argument(
        "--solver",
        choices=("als", "adam"),
        default="als",
        help="als: exact alternating ridge solves (fast); adam: the reference's full-batch Adam",
    )
    score.add_argument("--seed", type=int, default=0, help="seed of the factor initialization")
    score.add_argument(
        "--now-millis",
        type=int,
        help="the run's time (ms since epoch; default: the latest createdAtMillis in the input)",
    )
    score.add_argument("--config", type=Path, help="JSON object overriding ScoringConfig fields")
    _pipeline_parsers(sub)


def _pipeline_parsers(sub) -> None:
    """The pipeline's commands: ingest, run, show (vigil.notes.lake, pipeline, show)."""
    from vigil.notes import lake, pipeline, show

    lake.configure_parser(
        sub.add_parser("ingest", help="validate the download files into lake/notes (quarantine)")
    )
    pipeline.configure_run_parser(
        sub.add_parser("run", help="ingest -> dbt -> gates -> score -> features -> Feast")
    )
    show.configure_parser(
        sub.add_parser("show", help="a note's (or a post's shown note's) status, scores, history")
    )


def load_config(path: Path | None):
    from vigil.notes.config import ScoringConfig

    cfg = ScoringConfig()
    if path is None:
        return cfg
    try:
        overrides = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(
            f"{path}: not a readable JSON object ({exc}); fix or drop --config."
        ) from exc
    known = {f.name for f in dataclasses.fields(ScoringConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise UserError(
            f"{path}: unknown setting {unknown[0]!r}; the settings are the fields of "
            "vigil.notes.config.ScoringConfig (docs/notes.md)."
        )
    return cfg.replace(**overrides)


def score_files(args: argparse.Namespace) -> dict[str, object]:
    from vigil.notes import io, scoring

    started = time.perf_counter()
    cfg = load_config(args.config)
    quarantine = io.Quarantine()
    notes = io.read_notes(args.notes, quarantine)
    ratings = io.read_ratings(args.ratings, quarantine)
    history = io.read_status_history(args.status, quarantine) if args.status else None
    if args.enrollment:
        # Read and validated; the core scorer's stable initialization by modeling group is not
        # reproduced (docs/notes.md), so the enrollment states are not used further.
        io.read_enrollment(args.enrollment, quarantine)
    if ratings.empty:
        raise UserError(
            f"{args.ratings}: no usable ratings; check the file (quarantine: {quarantine.counts()})."
        )
    now = args.now_millis
    if now is None:
        now = int(max(ratings["createdAtMillis"].max(), notes["createdAtMillis"].max()))
    result = scoring.score(
        notes,
        ratings,
        cfg,
        previous_history=history,
        solver=args.solver,
        seed=args.seed,
        now_millis=now,
    )
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    io.write_tsv(result.prescoring_notes, out / OUTPUT_FILES["prescoring"])
    io.write_tsv(result.scored_notes, out / OUTPUT_FILES["scored"])
    io.write_tsv(result.helpfulness_scores, out / OUTPUT_FILES["helpfulness"])
    io.write_tsv(result.status_history, out / OUTPUT_FILES["history"])
    io.write_quarantine(quarantine, out)
    extras = contributor_files(ratings, result, out)
    summary = {
        "solver": args.solver,
        "seed": args.seed,
        "now_millis": now,
        "counts": result.counts,
        "quarantined": quarantine.counts(),
        "statuses": result.scored_notes["finalRatingStatus"].value_counts().to_dict(),
        "rounds": [
            {
                "ratings": r.n_ratings,
                "loss": r.fit.loss,
                "iterations": r.fit.iterations,
                "seconds": r.fit.seconds,
            }
            for r in result.rounds
        ],
        "collusion": extras["collusion"],
        "reputation": extras["reputation"],
        "seconds": round(time.perf_counter() - started, 2),
        "config": cfg.as_dict(),
    }
    (out / "scoring_run.json").write_text(json.dumps(summary, indent=2, default=str))
    if quarantine.rows:
        log.warning(
            "%d rows quarantined (%s): see %s",
            len(quarantine.rows),
            quarantine.counts(),
            out / io.QUARANTINE_FILE,
        )
    return summary


def run(args: argparse.Namespace) -> int:
    if args.action == "ingest":
        from vigil.notes import lake

        c = lake.ingest(args.raw)
        per_file = ", ".join(
            f"{t} {v['loaded']:,}/{v['read']:,}" for t, v in c.get("tables", {}).items()
        )
        print(
            f"notes ingest: {c['read']:,} rows read, {c['loaded']:,} loaded, {c['quarantined']:,} "
            f"quarantined ({per_file})"
            + ("; unchanged since the last ingest, nothing written" if c["unchanged"] else "")
            + f"; lake {lake.lake_dir()}"
        )
    elif args.action == "run":
        from vigil.notes import pipeline

        steps = pipeline.run(args.raw, seed=args.seed, materialize=not args.no_feast)
        pipeline.print_run(steps)
    elif args.action == "show":
        from vigil.notes import show

        print("\n".join(show.run(args)))
    elif args.action == "score":
        summary = score_files(args)
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(summary["statuses"].items()))
        print(
            f"scored {summary['counts']['notes']} notes from {summary['counts']['ratings']} ratings "
            f"in {summary['seconds']} s ({summary['solver']}): {statuses}; outputs in {args.out}"
        )
    return 0
