"""The scorer's output files, named once: the reference's four files and, beyond the reference,
colluding raters and contributor reputation (used by ``vigil notes score`` and ``vigil notes run``).
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

OUTPUT_FILES = {
    "prescoring": "prescoring_note_model_output.tsv",
    "scored": "scored_notes.tsv",
    "helpfulness": "helpfulness_scores.tsv",
    "history": "note_status_history.tsv",
}
REPUTATION_FILE = "contributor_reputation.tsv"


def contributor_files(ratings, result, out: Path) -> dict[str, dict]:
    """Beyond the reference: colluding raters (``colluding_raters.tsv``, ``colluding_pairs.tsv``)
    and contributor reputation (``contributor_reputation.tsv``), propagated over the rater-note graph
    towards this run's consensus (a neutral rater's predicted rating, mu + note intercept), with no
    fresh trust for raters the detector flagged."""
    from vigil.notes import collusion, reputation

    found = collusion.detect(ratings)
    collusion.write(found, out)
    flagged = set(found.raters["raterParticipantId"])
    mu = result.rounds[-1].global_intercept if result.rounds else 0.0
    intercepts = result.scored_notes.set_index("noteId")["coreNoteIntercept"].dropna()
    consensus = (mu + intercepts.astype("float64")).clip(0, 1)
    counts = ratings["raterParticipantId"].value_counts().astype("float64")
    counts[counts.index.isin(flagged)] = 0.0
    rep = reputation.reputation(ratings, note_consensus=consensus, personalization=counts)
    io_path = out / REPUTATION_FILE
    rep.raters.to_csv(io_path, sep="\t", index=False)
    log.info(
        "contributors: %d colluding raters in %d groups; reputation of %d raters in %d rounds "
        "(converged %s) -> %s",
        len(flagged),
        found.summary["groups"],
        len(rep.raters),
        rep.iterations,
        rep.converged,
        io_path,
    )
    return {
        "collusion": found.summary,
        "reputation": {
            "raters": len(rep.raters),
            "iterations": rep.iterations,
            "converged": rep.converged,
        },
    }
