"""Dialplan parsing and expressions the simulator runs."""
from __future__ import annotations

from ivr.sim import parse_queues_conf
from ivr.sim.dialplan import Dialplan, pattern_matches
from ivr.sim.expressions import evaluate, function_regex, substitute

CONF = """
[general]
static=yes
[globals]
APP=ivr
[in]
exten => _X.,1,NoOp(number ${EXTEN}) ; a comment
 same => n(again),Set(A=1\\;2)
 same => n,Goto(in,s,1)
exten => 100,1,NoOp(exact)
exten => _+X.,1,NoOp(plus)
[in]
exten => s,1,Hangup()
include => other
[other]
exten => 7,1,NoOp(included)
"""


def test_parses_extensions_priorities_labels_and_merges_sections():
    plan = Dialplan.from_text(CONF)
    assert plan.globals == {"APP": "ivr"}
    assert plan.step("in", "555", 2).app == "Set" and plan.step("in", "555", 2).data == "A=1;2"
    assert plan.label("in", "555", "again") == 2
    assert plan.step("in", "100", 1).data == "exact"          # literal beats pattern
    assert plan.step("in", "+4420", 1).data == "plus"
    assert plan.step("in", "s", 1).app == "Hangup"            # second [in] section merged
    assert plan.step("in", "7", 1).data == "included"
    assert plan.step("in", "abc", 1) is None


def test_patterns():
    assert pattern_matches("_X.", "12") and not pattern_matches("_X.", "1")
    assert pattern_matches("_NXX", "212") and not pattern_matches("_NXX", "112")
    assert pattern_matches("_[13-5]Z", "49") and not pattern_matches("_[13-5]Z", "20")


def test_expressions_like_asterisk():
    values = {"W": "", "CW": "3", "I": "17", "NAME": "custom/caller1"}

    def lookup(expr: str) -> str:
        from ivr.sim.expressions import function_if
        return function_if(expr[3:-1]) if expr.startswith("IF(") else values.get(expr, "")
    assert substitute('${IF($["${W}" = ""]?3:${W})}', lookup) == "3"
    assert substitute("$[${CW} > 0]?Playback(silence/${CW})", lookup) == "1?Playback(silence/3)"
    assert substitute("$[${I} + 1]", lookup) == "18"
    assert substitute("$[${I} < 18]", lookup) == "1"
    assert substitute('$["${NAME}" != ""]', lookup) == "1"
    assert evaluate("2 * (3 + 4)") == "14" and evaluate("10 / 4") == "2.5"
    assert evaluate("1 & 0") == "0" and evaluate("0 | 5") == "5" and evaluate("!0") == "1"
    assert function_regex('"^[0-9]+$" 42') == "1" and function_regex('"^[0-9]+$" 4x') == "0"


def test_queues_conf_with_templates():
    queues = parse_queues_conf("""
[general]
[defaults](!)
strategy = rrmemory
setinterfacevar = yes
[sales](defaults)
member => PJSIP/a,0,Agent A
member => PJSIP/b
[vip](defaults)
strategy = ringall
""")
    assert set(queues) == {"sales", "vip"}
    assert queues["sales"].strategy == "rrmemory" and queues["vip"].strategy == "ringall"
    assert [(m.interface, m.name) for m in queues["sales"].members] == [("PJSIP/a", "Agent A"), ("PJSIP/b", "PJSIP/b")]
    queues["sales"].answer_with("PJSIP/b", after=2.0)
    assert [m.answer_after for m in queues["sales"].members] == [None, 2.0]
