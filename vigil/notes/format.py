"""The public Community Notes download format, defined once.

File names, each file's columns in order with their types, and the value vocabularies, as the
reference scorer reads them (github twitter/communitynotes, ``scoring/src/scoring/constants.py``:
``noteTSVColumnsAndTypes``, ``ratingTSVColumnsAndTypes`` + ``publicRatingTSVColumnsAndTypes``,
``noteStatusHistoryTSVColumnsAndTypes``, ``userEnrollmentTSVColumnsAndTypes``; vocabularies from
the same file and ``documentation/under-the-hood/download-data.md``). Every file is tab separated
with a header row. The simulator writes these columns in this order; the scorer reads them by name
and ignores extra trailing columns, as the reference drops the ones it does not use.

Types: ``"int64"`` (whole number, required), ``"int8"`` (0/1 flag, may be empty), ``"float64"``
(number, may be empty: the reference's nullable millisecond timestamps), ``"string"``
(identifier or vocabulary value), ``"text"`` (free text; tabs already replaced by spaces).
"""

from __future__ import annotations

# --- file names (constants.py: notesInputPath, ratingsInputPath, ...) -----------------------------
NOTES_FILE = "notes-00000.tsv"
RATINGS_FILE = "ratings-00000.tsv"
STATUS_HISTORY_FILE = "noteStatusHistory-00000.tsv"
ENROLLMENT_FILE = "userEnrollment-00000.tsv"

# --- vocabularies ---------------------------------------------------------------------------------
# ratings.helpfulnessLevel (constants.py: helpfulValueTsv, somewhatHelpfulValueTsv, ...) and the
# number the scorer fits (process_data.compute_helpful_num).
HELPFUL = "HELPFUL"
SOMEWHAT_HELPFUL = "SOMEWHAT_HELPFUL"
NOT_HELPFUL = "NOT_HELPFUL"
HELPFULNESS_LEVELS = (HELPFUL, SOMEWHAT_HELPFUL, NOT_HELPFUL)
HELPFUL_NUM = {HELPFUL: 1.0, SOMEWHAT_HELPFUL: 0.5, NOT_HELPFUL: 0.0}
# Ratings from the 2021 form (version 1) leave helpfulnessLevel empty and set helpful=1 or
# notHelpful=1 instead; compute_helpful_num maps those to 1 and 0.

# notes.classification (constants.py: notesSaysTweetIsMisleadingKey, ...)
MISLEADING = "MISINFORMED_OR_POTENTIALLY_MISLEADING"
NOT_MISLEADING = "NOT_MISLEADING"
CLASSIFICATIONS = (MISLEADING, NOT_MISLEADING)

# Deprecated note-form answers (download-data.md); empty in new rows.
BELIEVABLE_VALUES = ("BELIEVABLE_BY_FEW", "BELIEVABLE_BY_MANY")
HARMFUL_VALUES = ("LITTLE_HARM", "CONSIDERABLE_HARM")
VALIDATION_DIFFICULTY_VALUES = ("EASY", "CHALLENGING")

# ratings.ratingSourceBucketed (constants.py: ratingSourceDefaultValueTsv, ...)
RATING_SOURCES = ("DEFAULT", "POPULATION_SAMPLED")

# Note statuses (constants.py: currentlyRatedHelpful, currentlyRatedNotHelpful, needsMoreRatings)
CURRENTLY_RATED_HELPFUL = "CURRENTLY_RATED_HELPFUL"
CURRENTLY_RATED_NOT_HELPFUL = "CURRENTLY_RATED_NOT_HELPFUL"
NEEDS_MORE_RATINGS = "NEEDS_MORE_RATINGS"
STATUSES = (CURRENTLY_RATED_HELPFUL, CURRENTLY_RATED_NOT_HELPFUL, NEEDS_MORE_RATINGS)

# userEnrollment.enrollmentState (constants.py: earnedIn, atRisk, ..., enrollmentStateToThrift)
ENROLLMENT_STATES = (
    "earnedIn",
    "atRisk",
    "earnedOutNoAcknowledge",
    "earnedOutAcknowledged",
    "newUser",
    "removed",
    "apiTestUser",
    "apiEarnedIn",
    "apiEarnedOut",
)
# userEnrollment.modelingPopulation (constants.py: core, expansion)
MODELING_POPULATIONS = ("CORE", "EXPANSION")

# --- tag columns (constants.py, in TSV order) -----------------------------------------------------
HELPFUL_TAGS = (
    "helpfulOther",
    "helpfulInformative",
    "helpfulClear",
    "helpfulEmpathetic",
    "helpfulGoodSources",
    "helpfulUniqueContext",
    "helpfulAddressesClaim",
    "helpfulImportantContext",
    "helpfulUnbiasedLanguage",
)
NOT_HELPFUL_TAGS = (
    "notHelpfulOther",
    "notHelpfulIncorrect",
    "notHelpfulSourcesMissingOrUnreliable",
    "notHelpfulOpinionSpeculationOrBias",
    "notHelpfulMissingKeyPoints",
    "notHelpfulOutdated",
    "notHelpfulHardToUnderstand",
    "notHelpfulArgumentativeOrBiased",
    "notHelpfulOffTopic",
    "notHelpfulSpamHarassmentOrAbuse",
    "notHelpfulIrrelevantSources",
    "notHelpfulOpinionSpeculation",
    "notHelpfulNoteNotNeeded",
)
MISLEADING_TAGS = (
    "misleadingOther",
    "misleadingFactualError",
    "misleadingManipulatedMedia",
    "misleadingOutdatedInformation",
    "misleadingMissingImportantContext",
    "misleadingUnverifiedClaimAsFact",
    "misleadingSatire",
)
NOT_MISLEADING_TAGS = (
    "notMisleadingOther",
    "notMisleadingFactuallyCorrect",
    "notMisleadingOutdatedButNotWhenWritten",
    "notMisleadingClearlySatire",
    "notMisleadingPersonalOpinion",
)

# --- columns in file order: (name, type) ----------------------------------------------------------
NOTE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("noteId", "int64"),
    ("noteAuthorParticipantId", "string"),
    ("createdAtMillis", "int64"),
    ("tweetId", "int64"),
    ("classification", "string"),
    ("believable", "string"),
    ("harmful", "string"),
    ("validationDifficulty", "string"),
    *((tag, "int8") for tag in MISLEADING_TAGS),
    *((tag, "int8") for tag in NOT_MISLEADING_TAGS),
    ("trustworthySources", "int8"),
    ("summary", "text"),
    ("isMediaNote", "int8"),
    ("isCollaborativeNote", "int8"),
)

RATING_COLUMNS: tuple[tuple[str, str], ...] = (
    ("noteId", "int64"),
    ("raterParticipantId", "string"),
    ("createdAtMillis", "int64"),
    ("version", "int8"),
    ("agree", "int8"),
    ("disagree", "int8"),
    ("helpful", "int8"),
    ("notHelpful", "int8"),
    ("helpfulnessLevel", "string"),
    *((tag, "int8") for tag in HELPFUL_TAGS),
    *((tag, "int8") for tag in NOT_HELPFUL_TAGS),
    ("ratedOnTweetId", "int64"),
    ("ratingSourceBucketed", "string"),
    # publicRatingTSVColumnsAndTypes: trailing columns the reference reads and drops.
    ("suggestion", "text"),
    ("suggestionId", "float64"),
)

STATUS_HISTORY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("noteId", "int64"),
    ("noteAuthorParticipantId", "string"),
    ("createdAtMillis", "int64"),
    ("timestampMillisOfFirstNonNMRStatus", "float64"),
    ("firstNonNMRStatus", "string"),
    ("timestampMillisOfCurrentStatus", "float64"),
    ("currentStatus", "string"),
    ("timestampMillisOfLatestNonNMRStatus", "float64"),
    ("mostRecentNonNMRStatus", "string"),
    ("timestampMillisOfStatusLock", "float64"),
    ("lockedStatus", "string"),
    ("timestampMillisOfRetroLock", "float64"),
    ("currentCoreStatus", "string"),
    ("currentExpansionStatus", "string"),
    ("currentGroupStatus", "string"),
    ("currentDecidedBy", "string"),
    ("currentModelingGroup", "float64"),
    ("timestampMillisOfMostRecentStatusChange", "float64"),
    ("timestampMillisOfNmrDueToMinStableCrhTime", "float64"),
    ("currentMultiGroupStatus", "string"),
    ("currentModelingMultiGroup", "float64"),
    ("timestampMinuteOfFinalScoringOutput", "float64"),
    ("timestampMillisOfFirstNmrDueToMinStableCrhTime", "float64"),
    ("abovePcrhThresholdTime", "float64"),
)

ENROLLMENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("participantId", "string"),
    ("enrollmentState", "string"),
    ("successfulRatingNeededToEarnIn", "int64"),
    ("timestampOfLastStateChange", "int64"),
    ("timestampOfLastEarnOut", "float64"),
    ("modelingPopulation", "string"),
    ("modelingGroup", "float64"),
    ("numberOfTimesEarnedOut", "int64"),
)

# Which vocabulary each string column must come from ("" / empty allowed where marked nullable).
STATUS_COLUMNS_WITH_STATUS_VALUES = (
    "firstNonNMRStatus",
    "currentStatus",
    "mostRecentNonNMRStatus",
    "lockedStatus",
    "currentCoreStatus",
    "currentExpansionStatus",
    "currentGroupStatus",
    "currentMultiGroupStatus",
)
VOCABULARIES: dict[str, dict[str, tuple[str, ...]]] = {
    NOTES_FILE: {
        "classification": CLASSIFICATIONS,
        "believable": BELIEVABLE_VALUES,
        "harmful": HARMFUL_VALUES,
        "validationDifficulty": VALIDATION_DIFFICULTY_VALUES,
    },
    RATINGS_FILE: {
        "helpfulnessLevel": HELPFULNESS_LEVELS,
        "ratingSourceBucketed": RATING_SOURCES,
    },
    STATUS_HISTORY_FILE: {col: STATUSES for col in STATUS_COLUMNS_WITH_STATUS_VALUES},
    ENROLLMENT_FILE: {
        "enrollmentState": ENROLLMENT_STATES,
        "modelingPopulation": MODELING_POPULATIONS,
    },
}

# The columns the scorer needs from each file; the rest may be absent (older downloads).
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    NOTES_FILE: ("noteId", "noteAuthorParticipantId", "createdAtMillis", "classification"),
    RATINGS_FILE: ("noteId", "raterParticipantId", "createdAtMillis", "helpfulnessLevel"),
    STATUS_HISTORY_FILE: ("noteId", "createdAtMillis", "currentStatus"),
    ENROLLMENT_FILE: ("participantId", "enrollmentState"),
}

COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    NOTES_FILE: NOTE_COLUMNS,
    RATINGS_FILE: RATING_COLUMNS,
    STATUS_HISTORY_FILE: STATUS_HISTORY_COLUMNS,
    ENROLLMENT_FILE: ENROLLMENT_COLUMNS,
}


def column_names(file_name: str) -> list[str]:
    """The column names of one download file, in file order."""
    return [name for name, _ in COLUMNS[file_name]]
