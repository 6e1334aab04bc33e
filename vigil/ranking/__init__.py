"""Discovery: a topic model on post text, trends for Explore and a ranked home timeline (issue 23).

Reads the lake (events, users, labels) only; see docs/ranking.md.
"""
