"""The diversity and health re-rank on hand-made lists."""

from types import SimpleNamespace

import numpy as np

from vigil.ranking.rank import RankConfig, rerank


def _ctx(topics, authors):
    # the re-rank reads only each post row's main topic and author
    return SimpleNamespace(main_topic=np.array(topics), author=np.array(authors))


def test_harmful_dropped_and_demoted():
    ctx = _ctx([0, 1, 2, 3], [1, 2, 3, 4])
    scores = np.array([10.0, 9.0, 8.0, 7.0])
    harm = np.array([0.9, 0.2, 0.0, 0.0])  # row 0 above the cut, row 1 demoted by 4 x 0.2
    top = rerank(ctx, np.arange(4), scores, harm, k=3, cfg=RankConfig(topic_penalty=0))
    assert 0 not in top
    # standardized: sd = 1.118, so rows 1 and 2 are 0.894 apart; row 1's demotion is 4 x 0.2 = 0.8
    assert list(top[:2]) == [1, 2]
    harm[1] = 0.25  # demotion 1.0 > 0.894: row 2 goes first
    top = rerank(ctx, np.arange(4), scores, harm, k=3, cfg=RankConfig(topic_penalty=0))
    assert list(top[:2]) == [2, 1]


def test_topic_and_author_penalties_diversify():
    # five posts of topic 0 by author 1 score highest; topic 1 and 2 posts slightly lower
    ctx = _ctx([0, 0, 0, 0, 0, 1, 2], [1, 1, 1, 1, 1, 2, 3])
    scores = np.array([1.0, 0.99, 0.98, 0.97, 0.96, 0.9, 0.89])
    harm = np.zeros(7)
    plain = rerank(ctx, np.arange(7), scores, harm, k=3,
                   cfg=RankConfig(topic_penalty=0, author_penalty=0))  # fmt: skip
    assert list(plain) == [0, 1, 2]
    # standardized, row 1 is 2.09 above row 5 (sd 0.0432): penalties of 3 per repeat reverse it
    diverse = rerank(ctx, np.arange(7), scores, harm, k=3,
                     cfg=RankConfig(topic_penalty=3, author_penalty=3))  # fmt: skip
    assert list(diverse) == [0, 5, 6]


def test_camp_cap():
    # ten posts by camp +1 authors score above five by camp -1: at most 8 of 10 from one camp
    ctx = _ctx(list(range(15)), list(range(15)))
    camps = np.array([1] * 10 + [-1] * 5)
    scores = np.linspace(2, 1, 15)
    top = rerank(ctx, np.arange(15), scores, np.zeros(15), camps, user_lean=0.5, k=10)
    assert (camps[top] == 1).sum() == 8
    # a user whose follows are 95% camp +1 keeps their lean
    top = rerank(ctx, np.arange(15), scores, np.zeros(15), camps, user_lean=0.95, k=10)
    assert (camps[top] == 1).sum() == 9


def test_too_few_topics_redo_the_pass_with_the_penalty_doubled():
    # rows 0-5 topic 0 (scores 1.0 .. 0.95), rows 6, 7, 8 topics 1, 2, 3 (0.5, 0.49, 0.48);
    # 12 rows in all, rows 9-11 topic 0 at 0.0 (they only widen the spread)
    ctx = _ctx([0] * 6 + [1, 2, 3] + [0] * 3, list(range(12)))
    scores = np.array([1.0, 0.99, 0.98, 0.97, 0.96, 0.95, 0.5, 0.49, 0.48, 0.0, 0.0, 0.0])
    harm = np.zeros(12)
    sd = scores.std()  # 0.4042: row 1 is (0.99 - 0.5) / sd = 1.21 above row 6
    cfg = RankConfig(topic_penalty=0.5, author_penalty=0, min_topics=1)
    # penalty 0.5: slot 2, row 1 (1.21 - 0.5 x 1 above row 6) wins; slot 3, row 2 (1.19 - 0.5 x 2)
    # still wins; slot 4, row 3 (1.16 - 1.5 < 0) loses to row 6
    assert (0.98 - 0.5) / sd > 2 * 0.5 > (0.97 - 0.5) / sd - 1.0
    assert list(rerank(ctx, np.arange(12), scores, harm, k=4, cfg=cfg)) == [0, 1, 2, 6]
    # asking for 4 topics: 0.5 gives 2, 1.0 gives 3 ([0, 1, 6, 7]), 2.0 gives 4
    floor = RankConfig(topic_penalty=0.5, author_penalty=0, min_topics=4)
    assert list(rerank(ctx, np.arange(12), scores, harm, k=4, cfg=floor)) == [0, 6, 7, 8]
    # with no retries the base pass stands
    none = RankConfig(topic_penalty=0.5, author_penalty=0, min_topics=4, topic_retries=0)
    assert list(rerank(ctx, np.arange(12), scores, harm, k=4, cfg=none)) == [0, 1, 2, 6]
