"""Smart routing: rules a designer edits (flows/routing.yaml), decided at call start."""

from ivr.routing.router import Router, decide_with
from ivr.routing.rules import RuleSet, load_rules

__all__ = ["Router", "RuleSet", "decide_with", "load_rules"]
