"""Bad rules files are refused at load with one error naming the file, the rule and the line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from vigil.errors import UserError
from vigil.rules.language import RuleError, load_rules, parse_duration
from vigil.stream.rules import FEATURE_NAMES

GOOD_RULE = """\
rules:
  - name: ok
    version: 1
    when: post
    expr: count("user", "1m") >= 3
    effects:
      - {do: review, entity: user}
"""


def _load(tmp_path: Path, text: str):
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(text))
    return load_rules(path, FEATURE_NAMES)


def _refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(RuleError) as info:
        _load(tmp_path, text)
    message = str(info.value)
    assert message.startswith(str(tmp_path / "rules.yaml") + ":")
    assert "\n" not in message and "Traceback" not in message
    return message


def _rule(expr: str = 'count("user", "1m") >= 3', effects: str = "{do: review, entity: user}"):
    return f"""\
rules:
  - name: ok
    version: 1
    when: post
    expr: {expr}
    effects:
      - {effects}
  - name: bad
    version: 2
    when: [post, reply]
    expr: {expr}
    effects:
      - {effects}
"""


def test_a_good_file_loads_and_is_a_user_error_type():
    assert issubclass(RuleError, UserError)


def test_good_rule_compiles(tmp_path):
    rs = _load(tmp_path, GOOD_RULE)
    assert [r.name for r in rs.rules] == ["ok"]
    assert [c.key for c in rs.counters] == ["count|user||60000|post"]


@pytest.mark.parametrize(
    ("expr", "needle"),
    [
        ('count("user", "1m") >=', "expr is not valid"),
        ('counts("user", "1m") > 1', "unknown function 'counts'"),
        ("usr == 3", "unknown field 'usr'"),
        ('score("no_such_feature") > 1', "unknown feature 'no_such_feature'"),
        ('count("account", "1m") > 1', "unknown entity 'account'"),
        ('count("user", "ten minutes") > 1', "not a duration"),
        ('distinct("link", "colour", "1m") > 1', "unknown field 'colour'"),
        ("__import__('os')", "unknown function '__import__'"),
        ("text.upper() == 'A'", "unknown function 'text.upper'"),
        ("len([x for x in text]) > 1", "ListComp is not allowed"),
        ("user if user else 1", "IfExp is not allowed"),
        ('count(user, "1m") > 1', "arguments must be string literals"),
    ],
)
def test_bad_expressions_name_the_rule_and_line(tmp_path, expr, needle):
    text = f"""\
rules:
  - name: ok
    version: 1
    when: post
    expr: count("user", "1m") >= 3
    effects:
      - {{do: review, entity: user}}
  - name: bad
    version: 2
    when: post
    expr: {expr}
    effects:
      - {{do: review, entity: user}}
"""
    message = _refused(tmp_path, text)
    assert ":11: rule 'bad':" in message  # the expr line of the second rule, by hand
    assert needle in message


@pytest.mark.parametrize(
    ("effect", "needle"),
    [
        ("{do: ban, entity: user}", "unknown effect 'ban'"),
        ("{do: review, entity: account}", "unknown entity 'account'"),
        ("{do: label, entity: user}", "needs `label:`"),
        ("{do: label, entity: user, label: x, expires: soon}", "not a duration"),
        ("{do: review, entity: user, why: x}", "unknown effect key 'why'"),
        ("{do: review, entity: user, from: link}", "needs distinct('link', 'user', window)"),
    ],
)
def test_bad_effects_are_refused(tmp_path, effect, needle):
    message = _refused(tmp_path, GOOD_RULE.replace("{do: review, entity: user}", effect))
    assert "rule 'ok'" in message and needle in message


def test_label_cycle_between_two_rules_names_both(tmp_path):
    text = """\
rules:
  - name: a
    version: 1
    when: post
    expr: label("user", "x")
    effects:
      - {do: label, entity: user, label: y}
  - name: b
    version: 1
    when: post
    expr: label("user", "y")
    effects:
      - {do: label, entity: user, label: x}
"""
    message = _refused(tmp_path, text)
    assert ":2: rule 'a': label cycle" in message
    assert "rule 'a' (line 2) reads user:x" in message
    assert "rule 'b' (line 8) reads user:y" in message


def test_a_rule_reading_its_own_label_is_a_cycle_but_shadow_labels_are_not(tmp_path):
    own = GOOD_RULE.replace('count("user", "1m") >= 3', 'not label("user", "z")').replace(
        "{do: review, entity: user}", "{do: label, entity: user, label: z}"
    )
    assert "label cycle" in _refused(tmp_path, own)
    # a shadow rule sets no labels, so it cannot close a cycle
    _load(tmp_path, own.replace("    when: post", "    when: post\n    mode: shadow"))


def test_throttle_and_suspend_imply_labels_that_close_cycles(tmp_path):
    text = GOOD_RULE.replace('count("user", "1m") >= 3', 'label("user", "suspended")').replace(
        "{do: review, entity: user}", "{do: suspend, entity: user}"
    )
    assert "reads user:suspended" in _refused(tmp_path, text)


def test_file_level_errors(tmp_path):
    assert ":3: not valid YAML" in _refused(tmp_path, "rules:\n  - name: [a\n    x: : :\n")
    assert ":1: no `rules:` list" in _refused(tmp_path, "rule: []\n")
    dup = GOOD_RULE + GOOD_RULE.split("rules:\n", 1)[1]
    assert ":8: rule 'ok': the name is already used at line 2" in _refused(tmp_path, dup)
    message = _refused(tmp_path, GOOD_RULE.replace("when: post", "when: posting"))
    assert ":4: rule 'ok': `when` names unknown action 'posting'" in message
    message = _refused(tmp_path, GOOD_RULE.replace("version: 1", "version: one"))
    assert "`version` must be a whole number" in message
    message = _refused(
        tmp_path, GOOD_RULE.replace("    version: 1\n", "    version: 1\n    prio: 3\n")
    )
    assert ":4: rule 'ok': unknown key 'prio'" in message
    with pytest.raises(RuleError, match="cannot read the rules file"):
        load_rules(tmp_path / "missing.yaml")


def test_durations():
    assert parse_duration("10m") == 600_000
    assert parse_duration("1d") == 86_400_000
    assert parse_duration("45s") == 45_000
    assert parse_duration("0m") is None and parse_duration("1w") is None
