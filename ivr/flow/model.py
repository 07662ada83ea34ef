"""The call-flow format that designers write, as pydantic models.

One flow file holds one flow: a named graph of nodes. Each node does exactly
one thing (play, ask, action, set, branch, call, return, transfer, hangup),
named by its kind key. These models define the structure only; cross-checks
(targets exist, prompts exist, every turn can reach a human...) live in
`ivr.flow.validate`. The JSON Schema published by `ivr schema` is generated
from these models, so editors and the validator never disagree.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    PlainValidator,
    Tag,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from ivr.prompts import LANGUAGES

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
PROMPT_KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$"
DTMF_PATTERN = r"^[0-9*#]{1,4}$"

NODE_KINDS = ("play", "ask", "action", "set", "branch", "call", "return", "transfer", "hangup")
ASK_MODES = ("choices", "digits", "confirm")
BACKEND_OUTCOMES = ("ok", "declined", "error", "timeout")
# Outcomes every action can end with, and the `defaults` key that says where each goes
# for the actions of a flow that do not say themselves.
DEFAULTED_OUTCOMES = {"error": "backend_error", "timeout": "backend_timeout"}
if TYPE_CHECKING:
    Language = str  # a Literal built from a tuple at run time is not a static type; pydantic checks it
else:
    Language = Literal[LANGUAGES]  # the languages the IVR speaks, from their one list (ivr.prompts)


def _seconds(value: Any) -> Any:
    """Accept 5, 0.8, "5s", "800ms" for durations; designers write all of these."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*", value)
        if not match:
            raise ValueError(f"not a duration: {value!r} (write 5s, 800ms or a number of seconds)")
        number = float(match.group(1))
        return number / 1000 if match.group(2) == "ms" else number
    return value


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


# The JSON Schema describes what designers may write (json_schema_input_type), not what it becomes.
Duration = Annotated[str, Field(pattern=r"^\s*\d+(\.\d+)?\s*(ms|s)?\s*$", description="5s, 800ms or 5")]
Seconds = Annotated[Annotated[float, Field(ge=0, le=600)],
                    BeforeValidator(_seconds, json_schema_input_type=Annotated[float, Field(ge=0, le=600)] | Duration)]
PromptKey = Annotated[str, Field(pattern=PROMPT_KEY_PATTERN, description="A prompt key such as payment.offer")]
Prompts = Annotated[list[PromptKey], BeforeValidator(_as_list, json_schema_input_type=PromptKey | list[PromptKey]),
                    Field(description="One prompt key or a list")]
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Expression = Annotated[str, Field(min_length=1, description="A safe expression over call data")]

# Variables the whole call shares: every flow sees them, and a sub-flow's changes to them stay when it
# returns (`call`: what the controller knows of the call; `routing`: the routing decision applied;
# `language`: the language the caller chose in this call). Every other variable belongs to its flow.
SHARED_VARIABLES = ("call", "routing", "language")

EXPRESSION_MARK = "="  # a value written `=expression` is worked out from call data; any other is taken as written


@dataclass(frozen=True, slots=True)
class Computed:
    """A value worked out from call data when its node runs: written `=attempts + 1`."""

    expression: str


@dataclass(frozen=True, slots=True)
class Fixed:
    """A value taken as written: `zh`, `3`, `null`, `[a, b]`."""

    value: Any


def _value(raw: Any) -> Computed | Fixed:
    if isinstance(raw, (Computed, Fixed)):
        return raw
    if isinstance(raw, str) and raw.startswith(EXPRESSION_MARK):
        expression = raw.removeprefix(EXPRESSION_MARK).strip()
        if not expression:
            raise PydanticCustomError("value", "write an expression after = (or the value itself, without =)")
        return Computed(expression)
    return Fixed(raw)


def _written(value: Computed | Fixed) -> Any:
    return f"{EXPRESSION_MARK}{value.expression}" if isinstance(value, Computed) else value.value


Value = Annotated[
    Computed | Fixed,
    PlainValidator(_value),
    PlainSerializer(_written),
    WithJsonSchema({"description": "A value as written (zh, 3, null, [a, b]); "
                                   "=expression works it out from call data (=attempts + 1, =caller.id)"}),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(Strict):
    """Per-turn timing; any field left out comes from the flow defaults."""

    noinput: Seconds | None = Field(None, description="Silence after the prompt before a noinput")
    end_silence: Seconds | None = Field(None, description="Silence that ends the caller's speech")
    max_speech: Seconds | None = Field(None, description="Longest utterance before it is cut")
    interdigit: Seconds | None = Field(None, description="Wait between keys in a digits turn")


# What a turn waits when neither it nor its flow's defaults say. Short on purpose: after a silent
# noinput or a pause in keying the caller hears nothing until the next prompt, and no silence may
# last over 3 s (the validator's dead-air check, ivr/flow/validate.py).
DEFAULT_TIMEOUTS = Timeouts(noinput=2.0, end_silence=0.8, max_speech=15, interdigit=2.5)


class TransferTarget(Strict):
    """Hand the caller to a person: a queue, why, and how urgent."""

    transfer: Name = Field(description="Queue name, e.g. payments")
    reason: Name = Field("ivr_request", description="Why the caller is routed; shown to the agent")
    priority: int = Field(5, ge=0, le=10, description="Higher is answered sooner")
    prompt: Prompts | None = Field(None, description="Played before the transfer")


class HangupTarget(Strict):
    hangup: Name = Field(description="Outcome recorded for the call, e.g. completed")
    prompt: Prompts | None = None


class ReturnTarget(Strict):
    """Inline end of a sub-flow, returning a value to the calling node."""

    return_: Name = Field(alias="return")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _target_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "node"
    if isinstance(value, dict):
        for kind in ("transfer", "hangup", "return"):
            if kind in value:
                return kind
    if isinstance(value, (TransferTarget, HangupTarget, ReturnTarget)):
        return {TransferTarget: "transfer", HangupTarget: "hangup", ReturnTarget: "return"}[type(value)]
    return None


Target = Annotated[
    Annotated[Name, Tag("node")] | Annotated[TransferTarget, Tag("transfer")] | Annotated[HangupTarget, Tag("hangup")] | Annotated[ReturnTarget, Tag("return")],
    Discriminator(
        _target_kind,
        custom_error_type="target",
        custom_error_message="a target is a node name, or {transfer: queue}, {hangup: outcome} or {return: value}",
    ),
]

Phrases = Annotated[
    list[str] | dict[str, list[str]],
    Field(description="Spoken phrases: a list (first language), or a list per language"),
]


class Choice(Strict):
    """One thing the caller can pick, by voice or by key."""

    say: Phrases = Field(default_factory=list)
    dtmf: Annotated[str, Field(pattern=DTMF_PATTERN)] | None = Field(None, description="Key(s) that pick it")
    label: PromptKey | None = Field(
        None, description="Prompt whose text is read in 'Did you say ...?' instead of the words heard")


class GlobalChoice(Choice):
    """A choice offered on every turn of the flow, such as 'agent' on 0."""

    goto: Target


class Digits(Strict):
    min: int = Field(1, ge=1, le=32)
    max: int = Field(32, ge=1, le=32)
    terminator: Literal["#", "*", ""] = "#"
    readback: bool = Field(True, description="Read the digits back and ask the caller to confirm")
    terminator_required: bool = Field(
        False, description="Fewer than max keys end only with the terminator: a pause before it is asked again "
                           "(a date of birth's year is not taken for four ID digits)")


class Ask(Strict):
    """One turn: a prompt, then the caller answers by voice or keys.

    Exactly one of `choices`, `digits` or `confirm` says what is expected.
    """

    prompt: Prompts
    choices: dict[Name, Choice] | None = None
    digits: Digits | None = None
    confirm: bool | None = Field(None, description="A yes/no question; outcomes yes and no")
    save_as: Name | None = Field(None, description="Variable that keeps the answer")
    speech: bool = True
    dtmf: bool = True
    barge_in: bool | None = None
    noinput: Prompts | None = Field(None, description="Reprompts after silence, one per attempt")
    nomatch: Prompts | None = Field(None, description="Reprompts after an answer not understood")
    timeouts: Timeouts | None = None
    confirm_below: float | None = Field(None, ge=0, le=1, description="Confirm a choice heard below this")
    reject_below: float | None = Field(None, ge=0, le=1, description="Treat speech below this as nomatch")


def _not_a_target(value: dict[str, Any]) -> dict[str, Any]:
    """`next: {transfer: claims}` is an inline target, not an outcome named 'transfer'."""
    for terminal in (TransferTarget, HangupTarget, ReturnTarget):
        fields = {info.alias or name for name, info in terminal.model_fields.items()}
        if set(value) <= fields and set(value) & {"transfer", "hangup", "return"}:
            raise PydanticCustomError("target", "a target is a node name, or {transfer: queue}, {hangup: outcome} or {return: value}")
    return value


Outcomes = Annotated[dict[Name, Target], AfterValidator(_not_a_target)]


class NodeBase(Strict):
    note: str | None = Field(None, description="Free text for designers; ignored by the engine")


class PlayNode(NodeBase):
    play: Prompts
    barge_in: bool | None = None
    next: Target


class AskNode(NodeBase):
    ask: Ask
    next: Outcomes | Target
    escape: Target | None = Field(None, description="Where to go when reprompts run out")


class ActionSpec(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z_]+(\.[a-z_]+)*$")]
    args: dict[Name, Value] = Field(default_factory=dict, description="Values sent to the action: "
                                    "as written, or =expression from call data")
    save_as: Name | None = None
    timeout: Seconds = 8.0


class ActionNode(NodeBase):
    action: ActionSpec
    next: Outcomes


class SetNode(NodeBase):
    set: dict[Name, Value] = Field(description="Variables and their new values: as written, or =expression")
    next: Target


class Condition(Strict):
    if_: Expression = Field(alias="if")
    then: Target
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class BranchNode(NodeBase):
    branch: list[Condition] = Field(min_length=1)
    else_: Target = Field(alias="else")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CallNode(NodeBase):
    call: Name = Field(description="Sub-flow to run; where it returns, next says where to go")
    with_: dict[Name, Value] = Field(
        default_factory=dict, alias="with",
        description="Values for the sub-flow's `takes`: as written, or =expression from this flow's variables")
    next: Outcomes | Target | None = None
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ReturnNode(NodeBase):
    return_: Name = Field(alias="return")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TransferNode(NodeBase, TransferTarget):
    pass


class HangupNode(NodeBase, HangupTarget):
    pass


def node_kind(value: Any) -> str | None:
    """The kind of a node: the first kind key it has."""
    if isinstance(value, dict):
        for kind in NODE_KINDS:
            if kind in value:
                return kind
        return None
    return _MODEL_KINDS.get(type(value))


Node = Annotated[
    Annotated[PlayNode, Tag("play")] | Annotated[AskNode, Tag("ask")] | Annotated[ActionNode, Tag("action")] | Annotated[SetNode, Tag("set")] | Annotated[BranchNode, Tag("branch")] | Annotated[CallNode, Tag("call")] | Annotated[ReturnNode, Tag("return")] | Annotated[TransferNode, Tag("transfer")] | Annotated[HangupNode, Tag("hangup")],
    Discriminator(
        node_kind,
        custom_error_type="node_kind",
        custom_error_message="a node needs one kind: " + ", ".join(NODE_KINDS),
    ),
]

_MODEL_KINDS: dict[type, str] = {
    PlayNode: "play",
    AskNode: "ask",
    ActionNode: "action",
    SetNode: "set",
    BranchNode: "branch",
    CallNode: "call",
    ReturnNode: "return",
    TransferNode: "transfer",
    HangupNode: "hangup",
}


class Defaults(Strict):
    """Flow-wide settings that every turn inherits unless it says otherwise."""

    escape: Target | None = Field(None, description="Where callers go when a turn runs out of retries")
    backend_error: Target | None = Field(
        None, description="Where an action's error outcome goes when its own next does not say")
    backend_timeout: Target | None = Field(
        None, description="Where an action's timeout outcome goes when its own next does not say")
    noinput: Prompts | None = None
    nomatch: Prompts | None = None
    timeouts: Timeouts = DEFAULT_TIMEOUTS
    confirm_below: float = Field(0.6, ge=0, le=1)
    reject_below: float = Field(0.25, ge=0, le=1)
    barge_in: bool = True


class Routes(Strict):
    """Where the routing rules (flows/routing.yaml) send callers; the engine follows them itself.

    Each key is a destination a rule names (`to:`), each value the target it means in this flow.
    """

    start: Outcomes = Field(default_factory=dict, description="Destinations of rules decided at call start: "
                                                              "taken instead of the start node")
    intent_turn: Name | None = Field(None, description="The turn where callers say what they want: "
                                                       "the choice they make is the intent")
    intent: Outcomes = Field(default_factory=dict, description="Destinations of rules decided on the intent: "
                                                               "taken instead of the intent turn's next")


# What a designer may write, bounded: an experiment's arms, and the experiments of one flow.
MAX_ARMS = 10
MAX_EXPERIMENTS = 5
# What an arm may change, one kind per experiment: an order arm may also name the prompt that
# reads its choices in their new order (the keys follow the order, so the words must too).
ARM_CHANGES = ("prompt", "order", "call")


class Arm(Strict):
    """One version of an experiment's node. The first arm is the control: the flow as written."""

    arm: Name = Field(description="The arm's name, as call records, reports and the agent's screen show it")
    share: int | None = Field(None, description="Percent of callers in this arm; leave it out on every arm "
                                                "for equal shares")
    prompt: Prompts | None = Field(None, description="The node's prompt in this arm: a turn's prompt, "
                                                     "or what a play node plays")
    order: list[Name] | None = Field(None, max_length=32, description="The turn's choices in this order; "
                                     "the keys follow it: the first choice takes the first key")
    call: Name | None = Field(None, description="The sub-flow a call node runs in this arm")
    note: str | None = Field(None, description="Free text for designers; ignored by the engine")


class Experiment(Strict):
    """An A/B test: callers are shared out between arms, each the same caller always in the same one."""

    node: Name = Field(description="The node that differs between the arms")
    start: dt.datetime = Field(description="When the experiment starts: 2025-03-01 or 2025-03-01 09:00 "
                                           "(the call's local time unless an offset such as +08:00 is written)")
    stop: dt.datetime | None = Field(None, description="When it stops; outside start-stop every caller "
                                                       "gets the control (the first arm)")
    arms: list[Arm] = Field(max_length=MAX_ARMS, description="The control first, then the arms to compare with it")
    note: str | None = Field(None, description="Free text for designers: what the experiment asks")


def arm_changes(arm: Arm) -> list[str]:
    """The kinds of thing an arm changes (`ARM_CHANGES`); a prompt that reads an order is part of the order."""
    changes = [kind for kind in ARM_CHANGES if getattr(arm, kind) is not None]
    if "order" in changes and "prompt" in changes:
        changes.remove("prompt")
    return changes


def arm_shares(experiment: Experiment) -> list[int]:
    """Each arm's weight: its share as written, or 1 each when no arm gives one (equal shares)."""
    if all(arm.share is None for arm in experiment.arms):
        return [1] * len(experiment.arms)
    return [max(arm.share or 0, 0) for arm in experiment.arms]


class Flow(Strict):
    """A call flow: its name, version, languages, variables and nodes."""

    flow: Name
    version: int | str = Field(1, description="Designer's version label; calls keep the version they started on")
    description: str | None = None
    languages: list[Language] = Field(default_factory=lambda: ["en"], min_length=1)
    start: Name
    variables: dict[Name, Any] = Field(default_factory=dict, description="This flow's variables and their "
                                       "starting values; a sub-flow has its own and cannot see its caller's")
    shared: dict[Name, Any] = Field(default_factory=dict, description="Variables of the whole call this flow "
                                    "reads or sets (the caller's identity...): kept when the flow returns and seen "
                                    "by every flow that lists them here; the value is the starting one")
    takes: list[Name] = Field(default_factory=list, description="Variables a calling flow may set with `with:` "
                                                                "(each declared under variables: its value if not given)")
    gives: list[Name] = Field(default_factory=list, description="Variables handed back to the calling flow, under "
                                                                "the same names, when this flow returns")
    defaults: Defaults = Defaults()
    globals: dict[Name, GlobalChoice] = Field(default_factory=dict, description="Choices offered on every turn")
    routes: Routes = Field(Routes(), description="Where routing rules send callers, for the flow calls start on")
    nodes: dict[Name, Node] = Field(min_length=1)
    experiments: dict[Name, Experiment] = Field(
        default_factory=dict, max_length=MAX_EXPERIMENTS,
        description="A/B tests: each shares callers out between versions (arms) of one node")


def experiment_on(flow: Flow, node: str) -> tuple[str, Experiment] | None:
    """The experiment that changes `node` (the validator allows one per node), with its name."""
    for name, experiment in flow.experiments.items():
        if experiment.node == node:
            return name, experiment
    return None


def phrases_for(choice: Choice, language: str, languages: list[str]) -> list[str]:
    """The phrases a choice accepts in `language` (a plain list belongs to the first language)."""
    if isinstance(choice.say, dict):
        return list(choice.say.get(language, []))
    return list(choice.say) if language == languages[0] else []


def turn_timeouts(flow: Flow, ask: Ask) -> dict[str, float]:
    """A turn's timing, field by field: its own, else the flow's defaults, else DEFAULT_TIMEOUTS.

    One reading for everything that runs a turn, so a field a flow leaves out never falls back to
    a number of its own somewhere else (the validator checks each value where it is written).
    """
    layers = [ask.timeouts or Timeouts(), flow.defaults.timeouts, DEFAULT_TIMEOUTS]
    return {name: next(v for layer in layers if (v := getattr(layer, name)) is not None)
            for name in Timeouts.model_fields}


def ask_mode(ask: Ask) -> str | None:
    modes = [mode for mode in ASK_MODES if getattr(ask, mode)]
    return modes[0] if len(modes) == 1 else None


def keypad_only(ask: Ask) -> bool:
    """A digits turn that may only be keyed (card numbers): never recognised, logged or kept at rest."""
    return ask_mode(ask) == "digits" and not ask.speech


def keypad_only_variables(flow: Flow) -> set[str]:
    """The variables a flow's keypad-only turns save: the engine wipes them once an action that
    uses them returns, and when the flow returns."""
    return {node.ask.save_as for node in flow.nodes.values()
            if isinstance(node, AskNode) and node.ask.save_as and keypad_only(node.ask)}


def json_schema() -> dict[str, Any]:
    schema = Flow.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "IVR call flow"
    return schema
