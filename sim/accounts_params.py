"""Every rate of the accounts world (`vigil simulate-accounts`, :mod:`sim.accounts`), in one place.

Shares are of all accounts unless said otherwise; times are in days or minutes as named.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date


@dataclass(frozen=True)
class AccountsParams:
    users: int = 3000  # accounts that exist or sign up in the window (evaders come on top)
    days: int = 14
    start: date = date(2026, 10, 1)
    seed: int = 21

    # -- populations -----------------------------------------------------------------------
    bot_share: float = 0.08  # bots (scheduled or human-mimicking)
    mimic_share: float = 0.25  # of bots: imitate human session rhythms
    bot_new_share: float = 0.7  # of bots: created during the window (the rest before it)
    operators: int = 10  # bot farms: each shares devices, networks, link and text pools
    # when set, the number of farms follows the population instead: round(users / this), at
    # least 1 (a larger platform has more farms, not bigger ones; `operators` is then unused)
    accounts_per_operator: int | None = None
    operator_devices: int = 4  # devices per farm
    operator_networks: int = 3  # networks per farm
    news_share: float = 0.01  # scheduled news accounts (legitimate)
    heavy_share: float = 0.04  # heavy human users (legitimate)
    abusive_share: float = 0.03  # humans who harass a few targets (suspended for it)
    new_human_share: float = 0.08  # humans who sign up during the window

    # -- human rhythms ---------------------------------------------------------------------
    sessions_per_day: float = 1.2  # mean; per user Gamma(shape 1.5) * this
    session_dispersion: float = 1.2  # gamma-Poisson shape of the daily count (bursty days)
    events_per_session_p: float = 0.28  # geometric: 1 + Geom(p) events after the login
    in_session_gap_s: float = 75.0  # mean exponential gap inside a session
    heavy_factor: float = 3.0  # heavy users: sessions and events x this
    peak_shift_sd_h: float = 2.0  # personal shift of the diurnal profile (hours)
    # post reply like view follow unfollow
    human_mix: tuple = (0.26, 0.14, 0.34, 0.20, 0.035, 0.025)
    p_news_link: float = 0.06  # a human post that shares a recent news link
    p_mention: float = 0.15  # a human post that mentions one of their friends

    # -- bots -------------------------------------------------------------------------------
    bot_period_min: tuple = (12.0, 90.0)  # scheduled cadence, uniform range (minutes)
    bot_jitter: float = 0.03  # sd of a tick as a share of the period
    p_bot_schedule: float = 0.5  # scheduled bots active only in a daily window (else 24 h)
    bot_window_h: tuple = (10, 16)  # that window's length, uniform range (hours)
    p_bot_burst_day: float = 0.3  # a day with a burst
    bot_burst_posts: tuple = (6, 14)
    bot_burst_gap_s: tuple = (15.0, 40.0)
    bot_mix: tuple = (0.45, 0.05, 0.12, 0.0, 0.25, 0.13)  # post reply like view follow unfollow
    mimic_mix: tuple = (0.40, 0.05, 0.20, 0.10, 0.16, 0.09)
    operator_links: int = 4  # links per farm
    operator_texts: int = 3  # text templates per farm

    # -- news accounts ----------------------------------------------------------------------
    news_period_min: tuple = (30, 60)
    news_hours_local: tuple = (6, 23)
    news_jitter_s: float = 60.0

    # -- friends sharing one link ----------------------------------------------------------
    friend_groups: int = 40
    friend_group_size: tuple = (3, 6)
    p_friend_link_day: float = 0.15  # a day on which a group shares one link (within hours)

    # -- coordinated campaigns --------------------------------------------------------------
    campaigns: int = 4
    campaign_bots: tuple = (6, 10)
    campaign_humans: tuple = (3, 5)  # paid humans (existing accounts)
    campaign_waves: tuple = (4, 8)
    wave_delay_min: float = 3.0  # mean exponential delay of a member's post after a wave starts
    p_wave_post: float = 0.9  # a member posts in a wave
    p_amplify: float = 0.6  # a member likes/shares another member's wave post

    # -- enforcement and evasion ------------------------------------------------------------
    p_bot_suspended: float = 0.55  # bots the platform suspends (reason bot) in the window
    bot_suspend_after_days: tuple = (1.0, 6.0)
    p_abusive_suspended: float = 0.8
    abusive_suspend_window: tuple = (0.1, 0.6)  # share of the window
    p_evade: float = 0.7  # suspended accounts that re-register
    evade_delay_days: tuple = (0.1, 1.5)
    p_evader_shares_fp: float = 0.5  # evaders that ever log in with an old fingerprint
    p_reuse_device: float = 0.5  # per login, for those that share
    p_reuse_network: float = 0.5
    p_similar_handle: float = 0.3  # evader's handle = the old one with another number
    p_household: float = 0.05  # humans sharing a home network with another human

    # -- labels and corrupt lines -------------------------------------------------------------
    p_audit: float = 0.02  # posts audited at random (queue random)
    p_report_harassment: float = 0.5  # harassing posts reported and labeled (queue reported)
    p_corrupt: float = 0.002  # corrupt lines in enforcement.jsonl and devices.jsonl

    @property
    def n_operators(self) -> int:
        """The number of bot farms: ``operators``, or ``round(users / accounts_per_operator)``
        (at least 1) when that is set."""
        if self.accounts_per_operator is None:
            return self.operators
        if self.accounts_per_operator <= 0:
            raise ValueError(
                f"accounts_per_operator must be positive: {self.accounts_per_operator}"
            )
        return max(1, round(self.users / self.accounts_per_operator))

    def resolved(self) -> dict:
        """Every field as used: ``operators`` is the farm count in effect, and
        ``accounts_per_operator`` is listed only when set (so a world without it writes the
        same record as before the field existed)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.accounts_per_operator is None:
            del out["accounts_per_operator"]
        else:
            out["operators"] = self.n_operators
        return out
