"""The quality gate's report: one JSON file and one self-contained HTML page per stage and day.

GX's Data Docs load bootstrap/jQuery/vega from CDNs and render empty offline, so the page is our
own: inline CSS, no scripts, readable from a file:// URL or an e-mail attachment.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from vigil.quality.results import GateResult

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2327}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.verdict{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff;font-weight:600}
.pass{background:#1a7f37}.fail{background:#cf222e}.warn{background:#9a6700}
table{border-collapse:collapse;width:100%;margin-bottom:12px}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f6f8fa}tr.bad td{background:#ffebe9}tr.warning td{background:#fff8c5}
code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}
pre{margin:0;white-space:pre-wrap;word-break:break-all;max-height:12em;overflow:auto}
.muted{color:#57606a}
"""


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _sample(values: list) -> str:
    if not values:
        return ""
    return f"<pre>{_e(json.dumps(values, indent=None, default=str)[:2000])}</pre>"


def render_html(gate: GateResult) -> str:
    verdict = "pass" if gate.success else "fail"
    failures, warnings = gate.failures, gate.warnings
    rows = []
    for r in gate.results:
        css = "" if r.success else ("bad" if r.severity == "critical" else "warning")
        status = "ok" if r.success else ("FAIL" if r.severity == "critical" else "warn")
        rows.append(
            f"<tr class='{css}'><td>{status}</td><td>{_e(r.table)}</td><td><code>{_e(r.expectation)}</code>"
            f"<br><span class='muted'>{_e(r.check)}</span></td><td>{_e(r.column)}</td>"
            f"<td>{_e('' if r.success else r.unexpected_count)}</td>"
            f"<td>{_sample(r.unexpected_sample)}</td><td>{_e(r.message)}</td></tr>"
        )
    tables = "".join(
        f"<tr><td>{_e(name)}</td><td>{_e(info.get('rows'))}</td><td><code>{_e(info.get('location'))}</code></td>"
        f"<td>{_e(info.get('note'))}</td></tr>"
        for name, info in gate.tables.items()
    )
    head = "<tr><th>status</th><th>table</th><th>expectation</th><th>column</th><th>unexpected</th><th>sample</th><th>message</th></tr>"
    failed_block = ""
    if failures or warnings:
        failed_rows = [row for row, r in zip(rows, gate.results) if not r.success]
        failed_block = f"<h2>Failed checks</h2><table>{head}{''.join(failed_rows)}</table>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Vigil quality: {_e(gate.stage)} {_e(gate.run_date)}</title>
<style>{_CSS}</style></head><body>
<h1>Quality gate <code>{_e(gate.stage)}</code> for {_e(gate.run_date)}
 <span class="verdict {verdict}">{"PASSED" if gate.success else "FAILED"}</span></h1>
<p class="muted">{len(gate.results)} checks, {len(failures)} failed, {len(warnings)} warnings, {gate.seconds:.1f} s.
Critical failures stop the pipeline; warnings are reported only.</p>
{failed_block}
<h2>Tables</h2><table><tr><th>table</th><th>rows</th><th>location</th><th>note</th></tr>{tables}</table>
<h2>All checks</h2><table>{head}{"".join(rows)}</table>
</body></html>
"""


def write_reports(gate: GateResult, directory: Path) -> tuple[Path, Path]:
    """Write ``<stage>_<date>.html`` and ``.json`` under ``directory``; return both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{gate.stage}_{gate.run_date}"
    html_path, json_path = directory / f"{stem}.html", directory / f"{stem}.json"
    gate.report_path, gate.json_path = str(html_path), str(json_path)
    payload = gate.to_dict()
    payload["failures"] = [r.message for r in gate.failures]
    payload["warnings"] = [r.message for r in gate.warnings]
    json_path.write_text(json.dumps(payload, indent=2))
    html_path.write_text(render_html(gate))
    return html_path, json_path
