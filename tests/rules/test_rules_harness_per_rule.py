"""sim.rules_harness.users_per_rule: each rule's users graded on a hand-made truth."""

import json

from sim.rules_harness import users_per_rule


def test_users_per_rule_on_a_hand_made_truth(tmp_path):
    truth = [
        {"user_id": 1, "kind": "bot", "is_bot": True, "campaign": None, "evader_of": None},
        {"user_id": 2, "kind": "bot", "is_bot": True, "campaign": None, "evader_of": None},
        {"user_id": 3, "kind": "human", "is_bot": False, "campaign": None, "evader_of": 9},
        {"user_id": 4, "kind": "human", "is_bot": False, "campaign": None, "evader_of": None},
        {"user_id": 5, "kind": "abusive_human", "is_bot": False, "campaign": None},
        {"user_id": 6, "kind": "bot", "is_bot": True, "campaign": 0, "evader_of": None},
    ]
    (tmp_path / "_truth").mkdir()
    (tmp_path / "_truth" / "accounts_users.jsonl").write_text(
        "".join(json.dumps(t) + "\n" for t in truth)
    )
    effects = [
        ("shared_device", "user", 1),
        ("shared_device", "user", 1),  # the same user twice counts once
        ("shared_device", "user", 3),  # an evader: violating, not a bot
        ("shared_device", "user", 4),  # a legitimate human
        ("shared_device", "fingerprint", "d-1"),  # not a user effect
        ("post_burst", "user", 5),
    ]
    log = tmp_path / "effects.jsonl"
    log.write_text(
        "".join(
            json.dumps({"rule": r, "entity": e, "entity_id": i, "mode": "shadow"}) + "\n"
            for r, e, i in effects
        )
    )
    assert users_per_rule(tmp_path, log) == {
        # 1 bot of 3, 2 of 3 users violating
        "post_burst": {"users": 1, "precision_violating": 1.0, "bots_reached": 0.0},
        "shared_device": {"users": 3, "precision_violating": 0.6667, "bots_reached": 0.3333},
    }
