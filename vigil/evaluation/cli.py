"""``vigil online-eval run --day D``: a day's importance sample, review requests and report."""

from __future__ import annotations

import argparse
import json


def configure_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    run_ = sub.add_parser("run", help="sample a day's impressions, request labels, estimate")
    run_.add_argument("--day", required=True, help="YYYY-MM-DD (UTC)")
    run_.add_argument("--control", required=True, help="model id of the control")
    run_.add_argument("--candidate", required=True, help="model id of the candidate")
    run_.add_argument("--mode", choices=("shadow", "hash"), default="shadow")
    run_.add_argument("--budget", type=float, default=300, help="labels a day (expected)")
    run_.add_argument("--floor", type=float, default=0.002, help="uniform floor of pi")
    run_.add_argument("--exponent", type=float, default=0.5, help="pi ~ score ** exponent")
    run_.add_argument("--salt", default="vigil-online-eval", help="arm hash salt (hash mode)")
    run_.add_argument("--candidate-share", type=float, default=0.5, help="hash mode")
    run_.add_argument("--seed", type=int, default=0)
    run_.add_argument(
        "--design",
        choices=("calibrated", "pps"),
        default="calibrated",
        help="calibrated: sample by the label model learned from the previous days' labels, "
        "prevalence interval from its expected variance; pps: the scores' formula, the sample's "
        "own variance (docs/online_eval.md)",
    )
    add_label_model_options(run_)
    add_reports_option(run_, default="census")
    run_.add_argument(
        "--double-review",
        type=_double_review,
        default=30.0,
        metavar="W|off",
        help="review again every drawn unit labeled harmful whose weight views / pi exceeds W "
        "(a third review on disagreement, the majority wins); default 30 (chosen on simulated "
        "seeds 1-3 and held out on 4-5 and on real-score days: docs/online_eval.md); off: trust "
        "single reviews",
    )

    run_.add_argument(
        "--review-removals",
        choices=("benign", "all", "off"),
        default="benign",
        help="review again the drawn removals whose first verdict is benign (a third review on "
        "disagreement, the majority wins): the arms' precision and prevented views are a census "
        "of the removals that one false benign moves; default benign (chosen on simulated seeds "
        "1-3, held out on 4-7: docs/online_eval.md); all: every removal; off",
    )

    run_.add_argument(
        "--arm-variance",
        choices=("expected", "sample"),
        default="expected",
        help="design calibrated: the arms' precision and prevented-views intervals from the label "
        "model's expected variance over every removal (default; it matters when removals are "
        "sampled, pi < 1) or the sample's own (docs/online_eval.md)",
    )


def _double_review(value: str) -> float | None:
    """``--double-review``: a weight >= 0, or ``off``."""
    if value.strip().lower() in ("off", "none"):
        return None
    try:
        w = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a weight: give views / pi, e.g. 30, or 'off'"
        ) from None
    if not w >= 0:
        raise argparse.ArgumentTypeError(f"{value!r}: the weight must be >= 0, or 'off'")
    return w


def add_label_model_options(parser: argparse.ArgumentParser) -> None:
    """The calibrated design's options, shared with the simulator's grading harness."""
    parser.add_argument("--history", type=int, default=7, help="days the label model learns from")
    parser.add_argument("--ridge", type=float, default=1.0, help="label-model penalty")
    parser.add_argument(
        "--label-error",
        type=float,
        default=0.0,
        help="calibrated design: the moderators' known error rate, corrected for (Rogan-Gladen)",
    )


def add_reports_option(parser: argparse.ArgumentParser, default: str) -> None:
    """``--reports``: user reports in the design (shared with the simulator's grading harness)."""
    parser.add_argument(
        "--reports",
        choices=("off", "model", "census"),
        default=default,
        help="user reports, a signal the models do not give: census (every unit reported that "
        "day is drawn with certainty and the label model has a log(1 + reports) term), model "
        f"(the term only) or off; default {default} (docs/online_eval.md)",
    )


def run(args: argparse.Namespace) -> int:
    from vigil.evaluation.daily import Settings, run_day

    settings = Settings(
        control=args.control,
        candidate=args.candidate,
        mode=args.mode,
        budget=args.budget,
        floor=args.floor,
        exponent=args.exponent,
        salt=args.salt,
        candidate_share=args.candidate_share,
        seed=args.seed,
        design=args.design,
        history=args.history,
        ridge=args.ridge,
        label_error=args.label_error,
        double_review=args.double_review,
        review_removals=args.review_removals,
        arm_variance=args.arm_variance,
        reports=args.reports,
    )
    print(json.dumps(run_day(args.day, settings), indent=2, default=str))
    return 0
