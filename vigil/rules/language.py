"""The rules file: YAML rules whose conditions are a safe subset of Python, compiled at load.

A rules file::

    rules:
      - name: link_burst            # unique; letters, digits, _
        version: 3                  # logged with every effect
        when: [post, reply]         # the actions the rule (and its counters) look at
        expr: distinct("link", "user", "10m") >= 5 and not label("user", "trusted")
        mode: live                  # live (default) or shadow: effects logged, tagged, not applied
        cooldown: 1h                # an effect fires at most once per entity per cooldown
        effects:
          - {do: label, entity: user, label: campaign, expires: 1d}
          - {do: review, entity: user}
    tests:                          # `vigil rules test FILE`: given events -> expected effects
      - name: five users, one link
        events: [{t: 0, user: 1, action: post, text: "see https://x.example/1"}, ...]
        expect: [{rule: link_burst, do: label, entity: user, id: 5}]

``expr`` allows literals, comparisons (``== != < <= > >= in not in is is not``), ``and or not``,
``+ - * / %`` and calls of these functions, with string literals for their names:

``count(entity, window)``
    events of the rule's ``when`` actions with this event's entity value in the window, this one
    included (``entity``: user, target, post, link, fingerprint).
``distinct(entity, of, window)``
    distinct values of field ``of`` among those events (e.g. users posting this link).
``label(entity, name)``
    True while the event's entity carries the label (set by a live rule, not yet expired).
``score(name)``
    the acting user's feature from the stream's state (the features pushed to Feast).
``len(x)``, ``contains(text, part)``
    None-safe length; case-insensitive substring test.

Event fields are names: ``ts`` (ms), ``user``, ``action``, ``target``, ``country``, ``post``,
``text``, ``link`` (the first URL in the text, lowercased) and ``fingerprint`` (None unless the
event carries one). Windows are ``<n>s|m|h|d`` up to 30 days.

A bad file is refused with one :class:`RuleError` naming the file, the rule and its line: YAML or
expression syntax, unknown function, field, entity, feature, effect or key, a label cycle (rule
A reads a label that rule B sets while B reads one that A sets, or A reads its own).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from vigil.contracts import ACTIONS
from vigil.errors import UserError

# the event context the engine builds per event: these names index it
FIELDS = ("event_id", "ts", "user", "action", "target", "country", "post", "text", "link")
FIELDS += ("fingerprint",)
FIELD_INDEX = {name: i for i, name in enumerate(FIELDS)}
ENTITIES = ("user", "target", "post", "link", "fingerprint")
EFFECTS = ("label", "review", "throttle", "suspend")
MODES = ("live", "shadow")
FUNCTIONS = ("count", "distinct", "label", "score", "len", "contains")
MAX_WINDOW_MS = 30 * 86_400_000
# labels the engine sets for throttle and suspend, so rules can read them
IMPLIED_LABEL = {"throttle": "throttled", "suspend": "suspended"}
_UNITS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"([0-9]+)([smhd])")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_RULE_KEYS = {"name", "version", "when", "expr", "mode", "cooldown", "effects", "description"}
_EFFECT_KEYS = {"do", "entity", "label", "expires", "from"}
_ALLOWED_NODES = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.BinOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.Mod,
    ast.Compare,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.In,
    ast.NotIn,
    ast.Is,
    ast.IsNot,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.Call,
    ast.Tuple,
    ast.List,
)


class RuleError(UserError):
    """A rules file that cannot be used: one sentence naming the file, rule, line and fix."""


@dataclass(frozen=True)
class CounterSpec:
    """A windowed counter: ``kind`` count or distinct, keyed by ``entity``, over ``actions``."""

    kind: str
    entity: str
    of: str | None
    window_ms: int
    actions: tuple[str, ...]

    @property
    def key(self) -> str:
        """Stable name: the checkpoint keys the counter's state by it."""
        return (
            f"{self.kind}|{self.entity}|{self.of or ''}|{self.window_ms}|{','.join(self.actions)}"
        )

    @property
    def bucket_ms(self) -> int:
        """Counts are kept per bucket of 1/60 of the window (at least 1 s): the window is the 60
        buckets ending with the event's bucket."""
        return max(1000, self.window_ms // 60)

    @property
    def n_buckets(self) -> int:
        return -(-self.window_ms // self.bucket_ms)


@dataclass(frozen=True)
class Effect:
    do: str
    entity: str
    label: str | None = None  # the label set (label, throttle, suspend)
    expires_ms: int | None = None  # None: no expiry
    source: str | None = None  # `from`: every value in the rule's distinct(source, entity, w)
    via: int | None = None  # index of that distinct counter in the rule's counters


@dataclass
class Rule:
    name: str
    version: int
    when: tuple[str, ...]
    expr: str
    mode: str
    cooldown_ms: int
    effects: tuple[Effect, ...]
    line: int
    counters: list[CounterSpec] = field(default_factory=list)
    reads: set[tuple[str, str]] = field(default_factory=set)  # labels read: (entity, name)
    features: set[str] = field(default_factory=set)
    code: object = None  # the compiled expression (a code object over the event context)

    @property
    def sets(self) -> set[tuple[str, str]]:
        return {(e.entity, e.label) for e in self.effects if e.label and self.mode == "live"}


@dataclass
class RuleTest:
    name: str
    events: list[dict]
    expect: list[dict]
    line: int


@dataclass
class RuleSet:
    path: Path
    rules: list[Rule]
    tests: list[RuleTest]

    @property
    def counters(self) -> list[CounterSpec]:
        seen: dict[str, CounterSpec] = {}
        for rule in self.rules:
            for spec in rule.counters:
                seen.setdefault(spec.key, spec)
        return list(seen.values())


def parse_duration(text: object) -> int | None:
    """``"10m"`` -> 600000 ms; None when it is not a duration."""
    m = _DURATION.fullmatch(str(text).strip())
    if m is None or int(m.group(1)) == 0:
        return None
    return int(m.group(1)) * _UNITS[m.group(2)]


# ---------------------------------------------------------------------------------------------
# loading


def load_rules(path: Path, features: frozenset[str] | set[str] = frozenset()) -> RuleSet:
    """Read, check and compile a rules file; ``features``: the names ``score()`` may use."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleError(f"{path}: cannot read the rules file ({exc.strerror}); check the path.")
    return parse_rules(text, path, features)


def parse_rules(
    text: str, path: Path, features: frozenset[str] | set[str] = frozenset()
) -> RuleSet:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        doc = YAML(typ="rt").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RuleError(f"{path}:{line}: not valid YAML ({problem}); fix the file.") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        raise RuleError(
            f"{path}:1: no `rules:` list; a rules file is a mapping with `rules: [...]`."
        )
    rules = []
    names: dict[str, int] = {}
    for i, raw in enumerate(doc["rules"]):
        line = _item_line(doc["rules"], i)
        rule = _parse_rule(raw, path, line, features)
        if rule.name in names:
            raise RuleError(
                f"{path}:{line}: rule {rule.name!r}: the name is already used at line "
                f"{names[rule.name]}; give each rule its own name."
            )
        names[rule.name] = line
        rules.append(rule)
    _check_cycles(rules, path)
    tests = _parse_tests(doc.get("tests") or [], path)
    return RuleSet(path, rules, tests)


def _item_line(seq, i: int) -> int:
    try:
        return seq.lc.item(i)[0] + 1
    except (AttributeError, KeyError, TypeError):
        return 1


def _key_line(mapping, key: str, default: int) -> int:
    try:
        return mapping.lc.key(key)[0] + 1
    except (AttributeError, KeyError, TypeError):
        return default


def _parse_rule(raw, path: Path, line: int, features) -> Rule:
    if not isinstance(raw, dict):
        raise RuleError(f"{path}:{line}: a rule is a mapping (name, version, when, expr, effects).")
    name = raw.get("name")
    label = f"{path}:{line}: rule {name!r}"
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise RuleError(f"{label}: `name` must be letters, digits and _ (at most 64).")
    unknown = sorted(set(raw) - _RULE_KEYS)
    if unknown:
        raise RuleError(
            f"{path}:{_key_line(raw, unknown[0], line)}: rule {name!r}: unknown key "
            f"{unknown[0]!r}; use {', '.join(sorted(_RULE_KEYS))}."
        )
    version = raw.get("version")
    if type(version) is not int or version < 1:
        raise RuleError(f"{label}: `version` must be a whole number >= 1; bump it on each change.")
    when = raw.get("when")
    when = (when,) if isinstance(when, str) else tuple(when or ())
    bad = [a for a in when if a not in ACTIONS]
    if not when or bad:
        raise RuleError(
            f"{path}:{_key_line(raw, 'when', line)}: rule {name!r}: `when` "
            f"{'is missing' if not when else f'names unknown action {bad[0]!r}'}; "
            f"use actions from: {', '.join(ACTIONS)}."
        )
    mode = raw.get("mode", "live")
    if mode not in MODES:
        raise RuleError(f"{label}: mode {mode!r} is unknown; use live or shadow.")
    cooldown = parse_duration(raw.get("cooldown", "1h"))
    if cooldown is None:
        raise RuleError(f"{label}: cooldown {raw.get('cooldown')!r} is not a duration like 10m.")
    effects = _parse_effects(raw, name, path, line)
    expr = raw.get("expr")
    expr_line = _key_line(raw, "expr", line)
    if not isinstance(expr, str) or not expr.strip():
        raise RuleError(f"{path}:{expr_line}: rule {name!r}: `expr` must be a non-empty string.")
    rule = Rule(name, version, tuple(sorted(set(when))), expr, mode, cooldown, effects, line)
    _compile(rule, path, expr_line, features)
    rule.effects = tuple(_link_sources(rule, path, _key_line(raw, "effects", line)))
    return rule


def _link_sources(rule: Rule, path: Path, line: int) -> list[Effect]:
    """An effect ``from: link`` on ``entity: user`` acts on every user in the rule's
    ``distinct("link", "user", w)``: find that counter."""
    out = []
    for eff in rule.effects:
        if eff.source is None:
            out.append(eff)
            continue
        via = next(
            (
                i
                for i, s in enumerate(rule.counters)
                if s.kind == "distinct" and s.entity == eff.source and s.of == eff.entity
            ),
            None,
        )
        if via is None:
            raise RuleError(
                f"{path}:{line}: rule {rule.name!r}: effect from {eff.source!r} on {eff.entity!r} "
                f"needs distinct({eff.source!r}, {eff.entity!r}, window) in the rule's expr."
            )
        out.append(replace(eff, via=via))
    return out


def _parse_effects(raw, name: str, path: Path, line: int) -> tuple[Effect, ...]:
    items = raw.get("effects")
    eline = _key_line(raw, "effects", line)
    if not isinstance(items, list) or not items:
        raise RuleError(f"{path}:{eline}: rule {name!r}: `effects` must be a non-empty list.")
    out = []
    for i, item in enumerate(items):
        at = f"{path}:{_item_line(items, i)}: rule {name!r}"
        if not isinstance(item, dict):
            raise RuleError(f"{at}: an effect is a mapping like {{do: review, entity: user}}.")
        unknown = sorted(set(item) - _EFFECT_KEYS)
        if unknown:
            raise RuleError(
                f"{at}: unknown effect key {unknown[0]!r}; use do, entity, label, expires, from."
            )
        do = item.get("do")
        if do not in EFFECTS:
            raise RuleError(f"{at}: unknown effect {do!r}; use one of {', '.join(EFFECTS)}.")
        entity = item.get("entity", "user")
        if entity not in ENTITIES:
            raise RuleError(f"{at}: unknown entity {entity!r}; use one of {', '.join(ENTITIES)}.")
        expires = None
        if "expires" in item:
            expires = parse_duration(item["expires"])
            if expires is None:
                raise RuleError(f"{at}: expires {item['expires']!r} is not a duration like 1d.")
        label = item.get("label")
        if do == "label":
            if not isinstance(label, str) or not _NAME.fullmatch(label):
                raise RuleError(f"{at}: a label effect needs `label:` (letters, digits, _).")
        elif label is not None:
            raise RuleError(f"{at}: only a label effect takes `label:`.")
        else:
            label = IMPLIED_LABEL.get(do)
        if do == "throttle" and expires is None:
            expires = 3_600_000
        source = item.get("from")
        if source is not None and source not in ENTITIES:
            raise RuleError(f"{at}: from {source!r} is not an entity; use {', '.join(ENTITIES)}.")
        out.append(Effect(do, entity, label, expires, source))
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# the expression language


class _Compiler(ast.NodeTransformer):
    """Checks the expression's nodes and rewrites names and calls over the event context ``e``:
    a field -> ``e[i]``; ``count/distinct`` -> ``Q[k](e)``; ``label`` -> ``L(e, i, name)``;
    ``score`` -> ``S(e, name)``."""

    def __init__(self, rule: Rule, where: str, features) -> None:
        self.rule, self.where, self.features = rule, where, features

    def fail(self, node: ast.AST, problem: str) -> None:
        raise RuleError(f"{self.where}: {problem}")

    def generic_visit(self, node: ast.AST) -> ast.AST:
        if not isinstance(node, _ALLOWED_NODES):
            self.fail(
                node,
                f"{type(node).__name__} is not allowed in a rule expression; use "
                "comparisons, and/or/not, arithmetic, literals and the rule functions.",
            )
        return super().generic_visit(node)

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in ("True", "False", "None"):
            return node
        if node.id not in FIELD_INDEX:
            kind = "function used without a call" if node.id in FUNCTIONS else "field"
            self.fail(node, f"unknown {kind} {node.id!r}; fields are {', '.join(FIELDS)}.")
        return ast.Subscript(
            ast.Name("e", ast.Load()), ast.Constant(FIELD_INDEX[node.id]), ast.Load()
        )

    def _literals(self, node: ast.Call, n: int, fname: str) -> list[str]:
        if node.keywords or len(node.args) != n:
            self.fail(node, f"{fname}() takes {n} positional arguments.")
        vals = []
        for a in node.args:
            if not (isinstance(a, ast.Constant) and isinstance(a.value, str)):
                self.fail(node, f"{fname}()'s arguments must be string literals.")
            vals.append(a.value)
        return vals

    def _entity(self, node: ast.Call, entity: str, fname: str) -> None:
        if entity not in ENTITIES:
            self.fail(node, f"{fname}(): unknown entity {entity!r}; use {', '.join(ENTITIES)}.")

    def _window(self, node: ast.Call, text: str, fname: str) -> int:
        ms = parse_duration(text)
        if ms is None or ms > MAX_WINDOW_MS:
            self.fail(node, f"{fname}(): window {text!r} is not a duration like 10m (at most 30d).")
        return ms

    def visit_Call(self, node: ast.Call) -> ast.AST:
        fname = node.func.id if isinstance(node.func, ast.Name) else None
        if fname not in FUNCTIONS:
            self.fail(
                node,
                f"unknown function {fname or ast.unparse(node.func)!r}; use "
                f"{', '.join(FUNCTIONS)}.",
            )
        if fname in ("count", "distinct"):
            args = self._literals(node, 2 if fname == "count" else 3, fname)
            self._entity(node, args[0], fname)
            of = args[1] if fname == "distinct" else None
            if of is not None and (of not in FIELD_INDEX or of in ("ts", "event_id")):
                self.fail(node, f"distinct(): unknown field {of!r}; use {', '.join(FIELDS[2:])}.")
            spec = CounterSpec(
                fname, args[0], of, self._window(node, args[-1], fname), self.rule.when
            )
            self.rule.counters.append(spec)
            k = len(self.rule.counters) - 1
            fn = ast.Subscript(ast.Name("Q", ast.Load()), ast.Constant(k), ast.Load())
            return ast.Call(fn, [ast.Name("e", ast.Load())], [])
        if fname == "label":
            entity, name = self._literals(node, 2, fname)
            self._entity(node, entity, fname)
            self.rule.reads.add((entity, name))
            args = [
                ast.Name("e", ast.Load()),
                ast.Constant(FIELD_INDEX[entity]),
                ast.Constant(name),
            ]
            return ast.Call(ast.Name("L", ast.Load()), args, [])
        if fname == "score":
            (name,) = self._literals(node, 1, fname)
            if name not in self.features:
                known = ", ".join(sorted(self.features)) or "none: run with the stream's features"
                self.fail(node, f"score(): unknown feature {name!r}; known: {known}.")
            self.rule.features.add(name)
            args = [ast.Name("e", ast.Load()), ast.Constant(name)]
            return ast.Call(ast.Name("S", ast.Load()), args, [])
        if node.keywords or len(node.args) != (1 if fname == "len" else 2):
            self.fail(node, f"{fname}() takes {1 if fname == 'len' else 2} positional arguments.")
        args = [self.visit(a) for a in node.args]
        return ast.Call(ast.Name("_" + fname, ast.Load()), args, [])


def _compile(rule: Rule, path: Path, line: int, features) -> None:
    where_base = f"{path}:{line}: rule {rule.name!r}"
    source = rule.expr.strip()
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        at = line + (exc.lineno or 1) - 1
        raise RuleError(
            f"{path}:{at}: rule {rule.name!r}: expr is not valid ({exc.msg}, column "
            f"{exc.offset}); write a Python-like condition."
        ) from None
    tree = _Compiler(rule, where_base, features).visit(tree)
    ast.fix_missing_locations(tree)
    lam = ast.Expression(
        ast.Lambda(
            ast.arguments([], [ast.arg("e")], None, [], [], None, []),
            tree.body,
        )
    )
    ast.fix_missing_locations(lam)
    rule.code = compile(lam, f"<rule {rule.name}>", "eval")


def _check_cycles(rules: list[Rule], path: Path) -> None:
    """Refuse rules that read labels set (directly or through other rules) by themselves."""
    setters: dict[tuple[str, str], list[Rule]] = {}
    for r in rules:
        for lab in r.sets:
            setters.setdefault(lab, []).append(r)
    # rule -> the rules it reads from (live label setters)
    deps = {
        r.name: [(lab, s) for lab in sorted(r.reads) for s in setters.get(lab, [])] for r in rules
    }
    by_name = {r.name: r for r in rules}
    state: dict[str, int] = {}

    def visit(name: str, trail: list[tuple[str, tuple[str, str]]]) -> None:
        state[name] = 1
        for lab, setter in deps[name]:
            step = [*trail, (name, lab)]
            if state.get(setter.name) == 1:
                start = next(i for i, (n, _) in enumerate(step) if n == setter.name)
                cycle = step[start:]
                text = ", ".join(
                    f"rule {n!r} (line {by_name[n].line}) reads {lab[0]}:{lab[1]}"
                    for n, lab in cycle
                )
                first = by_name[cycle[0][0]]
                raise RuleError(
                    f"{path}:{first.line}: rule {first.name!r}: label cycle: {text}, set by "
                    f"rule {cycle[0][0]!r}; a rule may not depend on labels it causes."
                )
            if state.get(setter.name) is None:
                visit(setter.name, step)
        state[name] = 2

    for r in rules:
        if r.name not in state:
            visit(r.name, [])


def _parse_tests(items, path: Path) -> list[RuleTest]:
    if not isinstance(items, list):
        raise RuleError(f"{path}:1: `tests:` must be a list of {{name, events, expect}}.")
    out = []
    for i, t in enumerate(items):
        line = _item_line(items, i)
        if not isinstance(t, dict) or not isinstance(t.get("events"), list):
            raise RuleError(
                f"{path}:{line}: a rule test is a mapping with `events:` and `expect:`."
            )
        expect = t.get("expect") or []
        if not isinstance(expect, list):
            raise RuleError(f"{path}:{line}: test `expect:` must be a list of effects.")
        out.append(
            RuleTest(str(t.get("name", f"test {i + 1}")), _plain(t["events"]), _plain(expect), line)
        )
    return out


def _plain(obj):
    """ruamel's commented containers as plain dicts and lists."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    return obj
