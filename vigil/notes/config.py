"""The scorer's parameters, with the reference's published values as defaults.

Every default names the file of github twitter/communitynotes (``scoring/src/scoring/``) it comes
from. ``ScoringConfig.replace(**overrides)`` gives a changed copy; ``as_dict()`` is what the scorer
writes beside its outputs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

MINUTE_MILLIS = 60 * 1000
DAY_MILLIS = 24 * 60 * MINUTE_MILLIS


@dataclass(frozen=True)
class ScoringConfig:
    # --- filters: mf_base_scorer.py MFBaseScorer.__init__, process_data.filter_ratings ----------
    min_ratings_per_rater: int = 10  # minNumRatingsPerRater
    min_raters_per_note: int = 5  # minNumRatersPerNote
    min_ratings_needed: int = 5  # minRatingsNeeded: ratings a note needs to get a status

    # --- the model: matrix_factorization/matrix_factorization.py MatrixFactorization.__init__ ---
    # Loss = mean squared error over ratings + lambda * mean(param^2) per parameter group (the
    # penalty is a mean over raters / notes, not a sum: _get_reg_loss with no loss ratio).
    num_factors: int = 1  # numFactors (only 1 is supported, as in model.py)
    user_factor_lambda: float = 0.03  # userFactorLambda
    note_factor_lambda: float = 0.03  # noteFactorLambda
    user_intercept_lambda: float = 0.03 * 5  # userInterceptLambda
    note_intercept_lambda: float = 0.03 * 5  # noteInterceptLambda
    global_intercept_lambda: float = 0.03 * 5  # globalInterceptLambda

    # --- the reference's optimizer (the `adam` solver): matrix_factorization.py ---------------
    no_init_learning_rate: float = 1.0  # noInitLearningRate: Adam lr without initial values
    init_learning_rate: float = 0.2  # initLearningRate: Adam lr when warm-started (round 2)
    convergence: float = 1e-7  # convergence: stop when |loss change| <= this
    max_grad_norm: float = 1.0  # _fit_model: clip_grad_norm_(max_norm=1.0)
    min_epochs_before_divergence_stop: int = 100  # _fit_model: stop if loss rises after 100
    max_epochs: int = 20_000  # Vigil's guard; the reference has none

    # --- the fast solver (`als`): Vigil's, same loss --------------------------------------------
    als_tolerance: float = 1e-9  # stop when the relative loss change is below this
    als_max_iterations: int = 3_000

    # --- contributor helpfulness: helpfulness_scores.py, mf_base_scorer.py ----------------------
    min_mean_note_score: float = 0.05  # minMeanNoteScore (author's mean note intercept)
    min_crh_vs_crnh_ratio: float = 0.00  # minCRHVsCRNHRatio (crhCrnhRatioDifference)
    crnh_multiplier: float = 5.0  # author_helpfulness CRNHMultiplier
    min_rater_agree_ratio: float = 0.66  # minRaterAgreeRatio
    # note_ratings.get_ratings_before_note_status_and_public_tsv: a rating is "valid" if made
    # within publicTSVTimeDelay (constants.py) of the note's creation and before its latest
    # non-NMR status.
    public_tsv_delay_millis: int = 48 * 60 * MINUTE_MILLIS

    # --- statuses: mf_base_scorer.py defaults, note_ratings.compute_scored_notes ----------------
    crh_threshold: float = 0.40  # crhThreshold
    crnh_threshold_intercept: float = -0.05  # crnhThresholdIntercept
    crnh_threshold_note_factor_multiplier: float = -0.8  # crnhThresholdNoteFactorMultiplier
    crnh_threshold_nm_intercept: float = -0.15  # crnhThresholdNMIntercept (NOT_MISLEADING notes)
    factor_threshold: float = 0.5  # factorThreshold (scoring_rules.FilterLargeFactor)
    # mf_core_scorer.py: minMinorityNetHelpfulRatings / minMinorityNetHelpfulRatio
    # (scoring_rules.RequireMinMinorityRaters, RequireRaterBalance with its 4..10 window).
    min_minority_net_helpful_ratings: int = 4
    min_minority_net_helpful_ratio: float = 0.05
    rater_balance_max_minority_net_helpful: int = 10
    # note_ratings.is_crnh_ratio defaults (RATIO_CRNH, final round only)
    ratio_crnh_max_helpful_num_per_side: float = 0.4
    ratio_crnh_max_avg_helpful_num_per_side: float = 0.3
    ratio_crnh_min_min_sign_count: int = 3

    # --- status history: scoring_rules.NmrDueToMinStableCrhTime, constants.noteLockMillis -------
    required_stable_crh_minutes: int = 30  # requiredStableCrhMinutesThreshold
    max_stable_crh_minutes: int = 60  # maxStableCrhMinutesThreshold
    note_lock_millis: int = 14 * DAY_MILLIS  # noteLockMillis: statuses lock after 2 weeks

    def replace(self, **changes: object) -> ScoringConfig:
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)
