"""The simulated world's fixed parameters: units, populations, rates and probabilities.

Module constants are the world's shape (countries, the diurnal cycle, the view-age distribution,
the labeling queue's inclusion probabilities); :data:`P` names every other probability and rate
the simulator draws with. Changing a value changes the world: the same arguments then give other,
but again byte-identical, files.
"""

from __future__ import annotations

import numpy as np

from vigil.contracts import ACTIONS, HARM_TYPES

DAY = 86_400_000
HOUR = 3_600_000
MINUTE = 60_000

KINDS = ("ordinary", "abusive", "spam_bot", "compromised")
ORD, ABU, BOT, CMP = range(4)
KIND_SHARES = (0.9855, 0.0100, 0.0015, 0.0030)
ACT = {name: i for i, name in enumerate(ACTIONS)}
HT_BIT = {name: 1 << i for i, name in enumerate(HARM_TYPES)}

# Countries: (alpha-2, share of users, UTC offset in hours for the diurnal cycle).
COUNTRIES = [
    ("US", 0.28, -5),
    ("IN", 0.11, 5),
    ("BR", 0.08, -3),
    ("GB", 0.07, 0),
    ("DE", 0.05, 1),
    ("FR", 0.04, 1),
    ("CA", 0.04, -5),
    ("MX", 0.04, -6),
    ("JP", 0.04, 9),
    ("AU", 0.03, 10),
    ("NG", 0.03, 1),
    ("PH", 0.03, 8),
    ("ID", 0.03, 7),
    ("ES", 0.02, 1),
    ("IT", 0.02, 1),
    ("KR", 0.02, 9),
    ("TR", 0.02, 3),
    ("PL", 0.015, 1),
    ("NL", 0.015, 1),
    ("SE", 0.01, 1),
    ("ZA", 0.01, 2),
    ("AR", 0.01, -3),
    ("EG", 0.01, 2),
]
# Where account takeovers and bot farms log in from (appended after the home countries).
REMOTE_COUNTRIES = ["RO", "VN", "KZ", "PA", "SC", "MD", "LT", "BY"]
COUNTRY_CODES = [c for c, _, _ in COUNTRIES] + REMOTE_COUNTRIES
N_HOME = len(COUNTRIES)

# Local-hour activity profile (quiet nights, evening peak).
DIURNAL = np.array(
    [
        3.5,
        2.0,
        1.2,
        0.8,
        0.7,
        1.0,
        2.0,
        3.5,
        4.5,
        4.5,
        4.5,
        4.8,
        5.2,
        5.0,
        4.7,
        4.6,
        4.8,
        5.5,
        6.2,
        6.8,
        7.0,
        6.8,
        6.0,
        4.8,
    ]
)
DIURNAL = DIURNAL / DIURNAL.sum()

# Views: post age (hours) ~ Lomax(scale, shape), truncated at a week.
VIEW_SCALE_H = 1.5
VIEW_SHAPE = 1.3
VIEW_HORIZON_H = 7 * 24.0
REACH_BASE = 0.85  # expected views = REACH_BASE * (followers + 1) ** 0.55 * virality
VIEW_SLICE = 300_000  # views generated (and their reactions) per vectorised slice

# Labeling queue: inclusion probabilities (sampling_weight = 1 / p) and moderator accuracy.
P_REPORTED = 0.9
P_RANDOM = 0.004  # audit: a uniform sample of posts nobody reported
P_REACH = 0.025  # audit: posts with at least REACH_VIEWS views in their first 24 h
REACH_VIEWS = 100
P_REPEAT = 0.025  # audit: posts by authors with an earlier post labeled harmful (abusers repeat)
MODERATOR_ACCURACY = 0.99

LATE_RATE = 0.005
DUPLICATE_RATE = 0.002
CORRUPTION_KINDS = (
    "not_json",
    "missing_field",
    "unknown_action",
    "bad_timestamp",
    "far_future_timestamp",
    "negative_id",
    "mistyped_field",
    "oversized_text",
    "invalid_utf8",
)
