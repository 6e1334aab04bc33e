"""``vigil appeals``: list appeals, decide one, apply moderators' verdicts, report the rates.

``list`` and ``report`` read the appeals table and the decision log directly; ``verdict`` and
``sync`` go through the running service (``--url``, token from ``VIGIL_SERVE_TOKEN``) so that a
reversal's new decision reaches the service's decision history.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request

from vigil import config
from vigil.errors import UserError


def configure_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    lst = sub.add_parser("list", help="appeals and their status")
    lst.add_argument("--status", choices=("pending", "reversed", "upheld"))
    verdict = sub.add_parser("verdict", help="reverse or uphold one appeal (through the service)")
    verdict.add_argument("appeal_id", type=int)
    verdict.add_argument("outcome", choices=("reverse", "uphold"))
    verdict.add_argument("--reviewer", required=True)
    verdict.add_argument("--url", default="http://127.0.0.1:8700")
    sync = sub.add_parser("sync", help="apply the moderators' verdict files (through the service)")
    sync.add_argument("--url", default="http://127.0.0.1:8700")
    rep = sub.add_parser("report", help="appeal and reversal rates per model and slice")
    rep.add_argument("--markdown", action="store_true", help="a Markdown table instead of JSON")


def _post(url: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        url.rstrip("/") + path, data=json.dumps(body).encode(), method="POST"
    )
    request.add_header("Content-Type", "application/json")
    token = config.serve_token()
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        try:
            detail = json.loads(detail)["detail"]
        except (ValueError, KeyError, TypeError):
            pass
        raise UserError(f"the service refused ({exc.code}): {detail}") from None
    except OSError as exc:
        raise UserError(
            f"no scoring service at {url} ({exc}): start it with `vigil serve` or pass --url."
        ) from None


def run(args: argparse.Namespace) -> int:
    if args.action == "verdict":
        out = _post(
            args.url,
            f"/v1/appeals/{args.appeal_id}/verdict",
            {"outcome": args.outcome, "reviewer": args.reviewer},
        )
    elif args.action == "sync":
        out = _post(args.url, "/v1/appeals/sync", {})
    elif args.action == "list":
        from vigil.moderation.appeals import AppealStore

        out = AppealStore().list(args.status)
    else:
        from vigil.moderation import appeals_report

        out = appeals_report.report()
        path = config.paths().reports / "appeals.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2))
        (path.with_suffix(".md")).write_text(appeals_report.markdown(out))
        if args.markdown:
            print(appeals_report.markdown(out), end="")
            return 0
    print(json.dumps(out, indent=2))
    return 0
