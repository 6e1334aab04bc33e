"""`vigil score` for a day with no posts says so, naming the days the data covers (issue 19)."""

from datetime import date

import pandas as pd

from training.score import no_posts_message


def test_no_posts_message_names_the_covered_days():
    created = pd.Series(pd.to_datetime(["2026-10-01T05:00Z", "2026-10-30T23:00Z"], utc=True))
    message = no_posts_message(date(2030, 1, 1), created)
    assert message.startswith("no posts were created on 2030-01-01")
    assert "covers 2026-10-01 .. 2026-10-30" in message
    empty = no_posts_message(date(2030, 1, 1), pd.Series([], dtype="datetime64[ns, UTC]"))
    assert "the posts mart is empty" in empty
