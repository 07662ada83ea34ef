"""The flow engine: one event in, the next actions and the new state out.

Pure by design: no I/O, no clock, no globals. `start` begins a call on a flow
of a release; `step` feeds it one event. The input state is never modified,
so a controller can retry a step, and tests can replay a call exactly.

Error handling follows VoiceXML: each turn counts noinput and nomatch
separately, plays the next reprompt of the matching list, and once a list
runs out sends the caller to the turn's escape (a human) with the reason.
Low-confidence speech is confirmed ("Did you say ...?"); a "no" tries the
next alternative the recogniser offered before asking again.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ivr import expr
from ivr.backend.catalog import ACTIONS
from ivr.digits import parse_digits
from ivr.engine import actions as act
from ivr.engine import events as ev
from ivr.engine import experiments
from ivr.engine.language import start_language
from ivr.engine.matching import YES_NO_KEYS, match, yes_no_grammar
from ivr.engine.state import CallState, Frame, Pending
from ivr.flow import model
from ivr.flow.catalog import FlowSet
from ivr.flow.structure import action_target, escape_of
from ivr.prompts import TRANSFER_NOTICE

MAX_HOPS = 500  # nodes run in one step before the engine decides the flow is looping
LANGUAGE_VARIABLE = "language"
ROUTING_VARIABLE = "routing"  # the routing rule's decision applied through the flow's routes (rule, to, reason)


@dataclass
class Step:
    state: CallState
    actions: list[act.Action] = field(default_factory=list)


class _Context:
    """The mutable working copy of one step."""

    def __init__(self, release: FlowSet, state: CallState):
        self.release = release
        self.state = state
        self.actions: list[act.Action] = []
        self.hops = 0

    @property
    def flow(self) -> model.Flow:
        return self.release.flow(self.state.flow)

    @property
    def node(self) -> model.Node:
        return self.flow.nodes[self.state.node]

    def emit(self, action: act.Action) -> None:
        self.actions.append(action)


def start(release: FlowSet, flow_name: str, call_id: str, call: dict[str, Any] | None = None,
          variables: dict[str, Any] | None = None, language: str | None = None,
          arms: dict[str, str] | None = None) -> Step:
    """Begin a call at the start node of `flow_name`.

    Without an explicit `language` the call speaks what the call data says
    (`start_language`: the caller's record, then the line's language), so a
    policyholder the caller number identified hears their language from the
    first prompt. `arms` pins experiments' arms (experiment -> arm, scripted
    callers); a live call has none: its arms come from its caller and the dates
    (`ivr.engine.experiments`).
    """
    flow = release.flow(flow_name)
    call = dict(call or {})
    if arms:
        call[experiments.PINNED] = dict(arms)
    language = language or start_language(call) or flow.languages[0]
    if language not in flow.languages:
        language = flow.languages[0]
    state = CallState(
        call_id=call_id, release=release.id, flow=flow_name, node=flow.start, language=language,
        versions={flow_name: str(flow.version)},
        vars={ROUTING_VARIABLE: None, LANGUAGE_VARIABLE: None, **flow.shared, **flow.variables, **(variables or {}),
              "call": {**call, "language": language}},
    )
    ctx = _Context(release, state)
    state.record("start", detail=f"{flow_name}@{flow.version} release {release.id}")
    _goto(ctx, _routed(ctx, "start", flow.routes.start, call.get("route_start"), None) or flow.start)
    return Step(ctx.state, ctx.actions)


def step(release: FlowSet, state: CallState, event: ev.Event) -> Step:
    """Advance a call by one event. The given state is left untouched."""
    if release.id != state.release:
        raise ValueError(f"call {state.call_id} runs on release {state.release}, not {release.id}")
    ctx = _Context(release, _working_copy(state))
    ctx.state.steps += 1
    if ctx.state.status != "running":
        return Step(ctx.state, [])
    if isinstance(event, ev.Hangup):
        _caller_hung_up(ctx)
    else:
        _dispatch(ctx, event)
    return Step(ctx.state, ctx.actions)


def _working_copy(state: CallState) -> CallState:
    """A copy the step may change. The engine only appends to lists and replaces
    values (never edits nested data in place), so copying the containers is enough,
    and far cheaper than a deep copy of the whole path."""
    return state.model_copy(update={
        "path": list(state.path), "vars": dict(state.vars), "stack": list(state.stack),
        "versions": dict(state.versions), "result": dict(state.result), "secret_vars": list(state.secret_vars),
        "experiments": dict(state.experiments),
    })


def _routed(ctx: _Context, when: str, routes: dict[str, model.Target], destination: Any,
            intent: str | None) -> model.Target | None:
    """Where the routing rules send the caller, if the flow's routes say what their destination
    means: at call start (`call.route_start`) or once the caller says what they want
    (`call.route_for[intent]`). The decision (rule, to, reason) is copied to `routing`, for the
    agent's screen and the call's record."""
    if not isinstance(destination, str) or destination not in routes:
        return None
    decisions = _call_data(ctx).get("routing")
    decision = decisions.get(when) if isinstance(decisions, dict) else None
    if intent is not None:
        decision = decision.get(intent) if isinstance(decision, dict) else None
    ctx.state.vars[ROUTING_VARIABLE] = decision
    rule = decision.get("rule") if isinstance(decision, dict) else None
    ctx.state.record("route", matched=destination, detail=f"{when}{' ' + intent if intent else ''}: {rule or '?'}")
    return routes[destination]


def _call_data(ctx: _Context) -> dict[str, Any]:
    call = ctx.state.vars.get("call")
    return call if isinstance(call, dict) else {}


def _intent_route(ctx: _Context, choice: str) -> model.Target | None:
    route_for = _call_data(ctx).get("route_for")
    destination = route_for.get(choice) if isinstance(route_for, dict) else None
    return _routed(ctx, "intents", ctx.flow.routes.intent, destination, choice)


# --- moving through nodes ------------------------------------------------


def _goto(ctx: _Context, target: model.Target | None) -> None:
    """Follow targets until the call waits or ends.

    A loop rather than recursion: a flow may pass through hundreds of nodes
    without waiting for the caller, and the hop guard must fire before Python's
    recursion limit does.
    """
    while target is not None:
        if isinstance(target, model.TransferTarget):
            _transfer(ctx, target, detail="")
            return
        if isinstance(target, model.HangupTarget):
            _hangup(ctx, target.hangup, target.prompt)
            return
        if isinstance(target, model.ReturnTarget):
            target = _return(ctx, target.return_)
            continue
        ctx.state.node = target
        ctx.hops += 1
        if ctx.hops > MAX_HOPS:
            _escape(ctx, "flow_loop", f"more than {MAX_HOPS} nodes without waiting for the caller")
            return
        target = _run(ctx)


def _run(ctx: _Context) -> model.Target | None:
    """Run the current node; return where to go next, or None when the call waits or ends."""
    node = ctx.node
    if isinstance(node, model.PlayNode):
        ctx.emit(_play(ctx, _prompt_of(ctx, node.play), node.barge_in))
        return node.next
    if isinstance(node, model.AskNode):
        _enter_ask(ctx, node)
    elif isinstance(node, model.ActionNode):
        _call_backend(ctx, node)
    elif isinstance(node, model.SetNode):
        return _assign(ctx, node)
    elif isinstance(node, model.BranchNode):
        return _branch(ctx, node)
    elif isinstance(node, model.CallNode):
        return _call(ctx, node)
    elif isinstance(node, model.ReturnNode):
        return _return(ctx, node.return_)
    elif isinstance(node, model.TransferNode):
        _transfer(ctx, node, detail="")
    elif isinstance(node, model.HangupNode):
        _hangup(ctx, node.hangup, node.prompt)
    return None


def _assign(ctx: _Context, node: model.SetNode) -> model.Target | None:
    for name, written in node.set.items():
        try:
            value = _value(ctx, written)
        except expr.ExpressionError as exc:
            _escape(ctx, "flow_error", str(exc))
            return None
        ctx.state.vars[name] = value
        if name == LANGUAGE_VARIABLE and value in ctx.flow.languages and value != ctx.state.language:
            ctx.state.language = value
            ctx.state.record("language", matched=value)
    return node.next


def _branch(ctx: _Context, node: model.BranchNode) -> model.Target | None:
    for condition in node.branch:
        try:
            taken = bool(_evaluate(ctx, condition.if_))
        except expr.ExpressionError as exc:
            _escape(ctx, "flow_error", str(exc))
            return None
        if taken:
            ctx.state.record("branch", matched=condition.if_)
            return condition.then
    return node.else_


def _call(ctx: _Context, node: model.CallNode) -> model.Target | None:
    """Run a sub-flow with variables of its own: its defaults, the values the call node passes
    (`with`) and the call's shared ones; the caller's wait in the stack until it returns."""
    try:
        given = {name: _value(ctx, written) for name, written in node.with_.items()}
    except expr.ExpressionError as exc:
        _escape(ctx, "flow_error", str(exc))
        return None
    state = ctx.state
    arm = _arm(ctx)
    flow_name = arm.call if arm is not None and arm.call else node.call
    callee = ctx.release.flow(flow_name)
    state.record("call", detail=flow_name, matched=node.call if flow_name != node.call else None)
    state.stack.append(Frame(flow=state.flow, node=state.node, vars=state.vars))
    state.vars = {**callee.shared, **callee.variables, **given, **_shared(ctx, state.vars)}
    state.flow = flow_name
    state.versions.setdefault(flow_name, str(callee.version))
    return callee.start


def _shared(ctx: _Context, variables: dict[str, Any]) -> dict[str, Any]:
    return {name: variables[name] for name in ctx.release.shared_names() if name in variables}


def _return(ctx: _Context, value: str) -> model.Target | None:
    state = ctx.state
    state.record("return", matched=value)
    _forget(state, model.keypad_only_variables(ctx.flow))
    if not state.stack:
        _hangup(ctx, value, None)
        return None
    frame = state.stack.pop()
    if frame.vars is not None:
        given = {name: state.vars.get(name) for name in ctx.flow.gives}
        state.vars = {**frame.vars, **given, **_shared(ctx, state.vars)}
    state.flow, state.node = frame.flow, frame.node
    caller = ctx.node
    assert isinstance(caller, model.CallNode)
    target = caller.next.get(value) if isinstance(caller.next, dict) else caller.next
    if target is None:
        _escape(ctx, "flow_error", f"sub-flow {frame.flow} returned '{value}', which node {frame.node} does not handle")
    return target


def _transfer(ctx: _Context, target: model.TransferTarget, detail: str) -> None:
    prompts = target.prompt or _transfer_notice(ctx)
    if prompts:
        ctx.emit(_play(ctx, prompts, barge_in=False))
    state = ctx.state
    _mark_transferred(state, target.transfer, target.reason, target.priority, detail)
    ctx.emit(act.Transfer(queue=target.transfer, reason=target.reason, priority=target.priority,
                          detail=detail, flow=state.flow, node=state.node))


def _mark_transferred(state: CallState, queue: str, reason: str, priority: int, detail: str) -> None:
    _forget(state, list(state.secret_vars))
    state.status = "transferred"
    state.pending = None
    state.result = {"queue": queue, "reason": reason, "priority": priority, "detail": detail}
    state.record("transfer", matched=queue, detail=f"{reason}{': ' + detail if detail else ''}")


def hand_off(state: CallState, queue: str, reason: str, priority: int, detail: str) -> CallState:
    """The state of a call the controller sends to a person without its flows (they changed
    under it): recorded as a transfer, like one the flow made."""
    handed = _working_copy(state)
    _mark_transferred(handed, queue, reason, priority, detail)
    return handed


def _transfer_notice(ctx: _Context) -> list[str]:
    """What a transfer with no prompt of its own says first (escapes to a person, routed transfers).

    Without it the caller hears nothing from their last turn until the queue's
    music. Played only where the release has the text (the validator warns
    when a flow's language lacks it), so a set of flows without it still runs.
    """
    return [TRANSFER_NOTICE] if ctx.release.prompts.has(ctx.state.language, TRANSFER_NOTICE) else []


def _hangup(ctx: _Context, outcome: str, prompts: list[str] | None) -> None:
    if prompts:
        ctx.emit(_play(ctx, prompts, barge_in=False))
    _forget(ctx.state, list(ctx.state.secret_vars))
    ctx.state.status = "ended"
    ctx.state.pending = None
    ctx.state.result = {"outcome": outcome}
    ctx.state.record("hangup", matched=outcome)
    ctx.emit(act.Hangup(outcome=outcome))


def _escape(ctx: _Context, reason: str, detail: str) -> None:
    """Send the caller to a person; the flow's escape says where."""
    target, _ = escape_of(ctx.flow, ctx.node, ctx.state.node)
    ctx.state.record("escape", matched=reason, detail=detail)
    ctx.state.pending = None
    if target is None:
        target = model.TransferTarget(transfer=act.FALLBACK_QUEUE, reason=reason)
    if isinstance(target, model.TransferTarget):
        _transfer(ctx, target, detail=f"{reason}: {detail}")
    else:
        ctx.state.vars["escape_reason"] = reason
        _goto(ctx, target)


def _caller_hung_up(ctx: _Context) -> None:
    state = ctx.state
    abandoned = state.pending.action if state.pending and state.pending.kind == "backend" else None
    state.record("caller_hangup", detail=f"during {abandoned}" if abandoned else None)
    _forget(state, list(state.secret_vars))
    state.status = "ended"
    state.result = {"outcome": "caller_hangup", "node": state.node, "flow": state.flow}
    if abandoned:
        state.result["abandoned_action"] = abandoned
    state.pending = None


# --- prompts, expressions -------------------------------------------------


def _play(ctx: _Context, keys: list[str], barge_in: bool | None, values: dict[str, Any] | None = None,
          echo: bool = False) -> act.Play:
    """`echo`: the values repeat what the caller said or keyed (a read-back)."""
    if barge_in is None:
        barge_in = ctx.flow.defaults.barge_in
    prompts = ctx.release.prompts
    refs = [act.PromptRef(key=key, values=values if values is not None else _placeholder_values(ctx, key),
                          private=echo or prompts.shows_numbers(key))
            for key in keys]
    for key in keys:
        ctx.state.record("prompt", matched=key)
    ctx.state.played += len(keys)
    return act.Play(prompts=refs, language=ctx.state.language, barge_in=barge_in)


def _placeholder_values(ctx: _Context, key: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for expression in ctx.release.prompts.expressions(key):
        try:
            values[expression] = _evaluate(ctx, expression)
        except expr.ExpressionError:
            values[expression] = None
    return values


def _evaluate(ctx: _Context, expression: str) -> Any:
    return expr.evaluate(expression, ctx.state.vars)


def _value(ctx: _Context, value: model.Computed | model.Fixed) -> Any:
    """A value a designer wrote: worked out from call data (`=expression`), or as written
    (a copy: the engine never shares a list or mapping of the flow with a call's state)."""
    if isinstance(value, model.Computed):
        return _evaluate(ctx, value.expression)
    return copy.deepcopy(value.value)


# --- backend -----------------------------------------------------------------


def _call_backend(ctx: _Context, node: model.ActionNode) -> None:
    spec = node.action
    args: dict[str, Any] = {}
    for name, written in spec.args.items():
        try:
            args[name] = _value(ctx, written)
        except expr.ExpressionError as exc:
            _escape(ctx, "flow_error", str(exc))
            return
    ctx.state.pending = Pending(kind="backend", action=spec.name)
    ctx.emit(act.CallBackend(name=spec.name, args=args, timeout=spec.timeout))


def _backend_result(ctx: _Context, event: ev.BackendResult) -> None:
    node = ctx.node
    assert isinstance(node, model.ActionNode)
    if event.name != node.action.name:
        return  # a late reply to an earlier request
    ctx.state.pending = None
    ctx.state.record("backend", matched=event.outcome, detail=event.name)
    _forget(ctx.state, _uses(node.action))
    if node.action.save_as:
        ctx.state.vars[node.action.save_as] = event.data
    target = action_target(ctx.flow, node, event.outcome)
    if target is None:
        _escape(ctx, f"backend_{event.outcome}", f"{event.name} gave {event.outcome}")
        return
    _goto(ctx, target)


def _uses(action: model.ActionSpec) -> set[str]:
    """The variables an action's arguments read."""
    names: set[str] = set()
    for value in action.args.values():
        if not isinstance(value, model.Computed):
            continue
        try:
            names |= expr.names(value.expression)
        except expr.ExpressionError:
            continue  # it failed when the action was called; nothing it names was sent
    return names


def _forget(state: CallState, names: set[str] | list[str]) -> None:
    """Wipe keypad-only answers (card numbers) among `names`: once the action that needed them
    has returned, when the flow that asked for them returns, and when the call ends, so no
    flow has to clear them and none lingers in memory for the rest of the call."""
    for name in [n for n in state.secret_vars if n in names]:
        state.vars[name] = None
    state.secret_vars = [n for n in state.secret_vars if n not in names]


# --- turns ---------------------------------------------------------------------


def _enter_ask(ctx: _Context, node: model.AskNode) -> None:
    state = ctx.state
    state.noinput = state.nomatch = 0
    state.buffer = ""
    ctx.emit(_play(ctx, _prompt_of(ctx, node.ask.prompt), node.ask.barge_in))
    _listen(ctx, node)


# --- experiments -----------------------------------------------------------------


def _arm(ctx: _Context) -> model.Arm | None:
    """The arm of the experiment on the current node this call is in; None: the node as written.

    Assigned the first time the call reaches the node, inside the experiment's
    dates only, and kept in the state (a call resumed elsewhere keeps it);
    the path shows it, so the designer's tools and the agent see which arm ran.
    """
    found = model.experiment_on(ctx.flow, ctx.state.node)
    if found is None:
        return None
    name, experiment = found
    chosen = ctx.state.experiments.get(name)
    if chosen is not None:
        return next((arm for arm in experiment.arms if arm.arm == chosen), None)
    call = _call_data(ctx)
    arm = experiments.pinned(call, name, experiment)
    if arm is None:
        if not experiments.running(experiment, call.get(experiments.CALL_TIME)):
            return None
        arm = experiments.pick(name, experiment, experiments.caller_key(call, ctx.state.call_id))
    ctx.state.experiments[name] = arm.arm
    ctx.state.record("experiment", matched=arm.arm, detail=name)
    return arm


def _prompt_of(ctx: _Context, written: list[str]) -> list[str]:
    """The current node's prompt: its arm's wording, else as written."""
    arm = _arm(ctx)
    return arm.prompt if arm is not None and arm.prompt else written


def _choices(ctx: _Context, node: model.AskNode) -> list[tuple[str, model.Choice]]:
    """A turn's choices in its arm's order, the keys dealt again by position (the first choice
    takes the first key as written), else as written."""
    written = list((node.ask.choices or {}).items())
    arm = _arm(ctx)
    if arm is None or arm.order is None or sorted(arm.order) != sorted(name for name, _ in written):
        return written
    choices = dict(written)
    return [(name, choices[name].model_copy(update={"dtmf": choice.dtmf}))
            for name, (_, choice) in zip(arm.order, written)]


def _listen(ctx: _Context, node: model.AskNode) -> None:
    ctx.state.pending = Pending(kind="input")
    ctx.emit(_listen_action(ctx, node, model.ask_mode(node.ask) or "choices"))


def _listen_action(ctx: _Context, node: model.AskNode, mode: str) -> act.Listen:
    ask, flow, language = node.ask, ctx.flow, ctx.state.language
    grammar: dict[str, str] = {}
    keys: dict[str, str] = {}
    if mode == "choices":
        for name, choice in _choices(ctx, node):
            grammar.update({p: name for p in model.phrases_for(choice, language, flow.languages)})
            if choice.dtmf:
                keys[choice.dtmf] = name
    elif mode == "confirm":
        grammar.update(yes_no_grammar(language))
        keys.update(YES_NO_KEYS)
    for name, choice in flow.globals.items():
        grammar.update({p: f"global:{name}" for p in model.phrases_for(choice, language, flow.languages)})
        if choice.dtmf and mode != "digits":
            keys.setdefault(choice.dtmf, f"global:{name}")
    digits = ask.digits if mode == "digits" else None
    ctx.state.secret_turn = mode == "digits" and model.keypad_only(ask)
    return act.Listen(
        mode=mode, language=language, grammar=grammar, keys=keys, speech=ask.speech, dtmf=ask.dtmf,
        min_digits=digits.min if digits else 0, max_digits=digits.max if digits else 0,
        terminator=digits.terminator if digits else "", timeouts=_timeouts(flow, ask),
        sensitive=ctx.state.secret_turn,
    )


def _timeouts(flow: model.Flow, ask: model.Ask) -> act.Timeouts:
    return act.Timeouts(**model.turn_timeouts(flow, ask))


def _dispatch(ctx: _Context, event: ev.Event) -> None:
    pending = ctx.state.pending
    if pending is None:
        return
    if pending.kind == "backend":
        if isinstance(event, ev.BackendResult):
            _backend_result(ctx, event)
        return
    if isinstance(event, ev.BackendResult):
        return
    node = ctx.node
    assert isinstance(node, model.AskNode)
    if pending.kind == "input":
        _answer(ctx, node, event)
    elif pending.kind == "confirm":
        _confirm_answer(ctx, node, event)
    elif pending.kind == "readback":
        _readback_answer(ctx, node, event)


def _answer(ctx: _Context, node: model.AskNode, event: ev.Event) -> None:
    if isinstance(event, ev.NoInput):
        if ctx.state.buffer:
            _keying_paused(ctx, node)
        else:
            _noinput(ctx, node)
    elif isinstance(event, ev.NoMatch):
        _nomatch(ctx, node, heard="(not understood)")
    elif isinstance(event, ev.Dtmf):
        _keys(ctx, node, event.digits)
    elif isinstance(event, ev.Speech):
        _speech(ctx, node, event)


def _keys(ctx: _Context, node: model.AskNode, digits: str) -> None:
    ask = node.ask
    listen = _listen_action(ctx, node, model.ask_mode(ask) or "choices")
    if not ask.dtmf:
        _nomatch(ctx, node, heard=f"keys {digits} (keys not accepted here)")
        return
    if ask.digits:
        _collect_keys(ctx, node, digits)
        return
    outcome = listen.keys.get(digits)
    ctx.state.record("input", heard=f"#{digits}", matched=outcome)
    if outcome is None:
        _nomatch(ctx, node, heard=f"keys {digits}")
    else:
        _chosen(ctx, node, outcome)


def _collect_keys(ctx: _Context, node: model.AskNode, digits: str) -> None:
    spec = node.ask.digits
    assert spec is not None
    for key in digits:
        if spec.terminator and key == spec.terminator:
            _digits_done(ctx, node, confidence=1.0)
            return
        if key.isdigit():
            ctx.state.buffer += key
        if len(ctx.state.buffer) >= spec.max:
            _digits_done(ctx, node, confidence=1.0)
            return


def _speech(ctx: _Context, node: model.AskNode, event: ev.Speech) -> None:
    ask, flow = node.ask, ctx.flow
    reject = ask.reject_below if ask.reject_below is not None else flow.defaults.reject_below
    confirm = ask.confirm_below if ask.confirm_below is not None else flow.defaults.confirm_below
    if not ask.speech:
        _nomatch(ctx, node, heard=event.text)
        return
    if event.confidence < reject:
        ctx.state.record("input", heard=event.text, confidence=event.confidence, detail="below reject threshold")
        _nomatch(ctx, node, heard=event.text)
        return
    mode = model.ask_mode(ask) or "choices"
    listen = _listen_action(ctx, node, mode)
    outcome = match(event.text, listen.grammar)
    if outcome and outcome.startswith("global:") and event.confidence >= confirm:
        ctx.state.record("input", heard=event.text, confidence=event.confidence, matched=outcome)
        _chosen(ctx, node, outcome)
        return
    if mode == "digits":
        _spoken_digits(ctx, node, event, confirm)
        return
    alternatives = [ev.Hypothesis(text=event.text, confidence=event.confidence), *event.alternatives]
    matched = [(h, match(h.text, listen.grammar)) for h in alternatives if h.confidence >= reject]
    candidates = [(h, o) for h, o in matched if o is not None]
    if not candidates:
        ctx.state.record("input", heard=event.text, confidence=event.confidence)
        _nomatch(ctx, node, heard=event.text)
        return
    best, outcome = candidates[0]
    ctx.state.record("input", heard=best.text, confidence=best.confidence, matched=outcome)
    if best.confidence < confirm and mode == "choices":
        _ask_confirmation(ctx, node, best, outcome, [h for h, _ in candidates[1:]])
    else:
        _chosen(ctx, node, outcome)


def _spoken_digits(ctx: _Context, node: model.AskNode, event: ev.Speech, confirm: float) -> None:
    spec = node.ask.digits
    assert spec is not None
    digits = parse_digits(event.text)
    for alternative in event.alternatives if digits is None else []:
        digits = parse_digits(alternative.text)
        if digits is not None:
            break
    ctx.state.record("input", heard=event.text, confidence=event.confidence, matched=digits)
    if digits is None:
        _nomatch(ctx, node, heard=event.text)
        return
    ctx.state.buffer += digits
    if len(ctx.state.buffer) >= spec.min:
        _digits_done(ctx, node, confidence=event.confidence, force_readback=event.confidence < confirm)


def _keying_paused(ctx: _Context, node: model.AskNode) -> None:
    """The caller stopped keying: that ends the entry, unless the turn waits for its terminator."""
    spec = node.ask.digits
    keyed = len(ctx.state.buffer)
    if spec is not None and spec.terminator_required and keyed < spec.max:
        ctx.state.buffer = ""
        _nomatch(ctx, node, heard=f"{keyed} keys and a pause, no {spec.terminator}")
        return
    _digits_done(ctx, node, confidence=1.0)


def _digits_done(ctx: _Context, node: model.AskNode, confidence: float, force_readback: bool = False) -> None:
    spec = node.ask.digits
    assert spec is not None
    digits = ctx.state.buffer
    if not spec.min <= len(digits) <= spec.max:
        ctx.state.buffer = ""
        _nomatch(ctx, node, heard=f"{len(digits)} digits, expected {spec.min}-{spec.max}")
        return
    if spec.readback or force_readback:
        ctx.state.pending = Pending(kind="readback", heard=digits)
        ctx.emit(_play(ctx, ["common.readback_digits"], barge_in=True, values={"digits": digits}, echo=True))
        ctx.emit(_listen_action(ctx, node, "confirm"))
        return
    _accept_digits(ctx, node, digits)


def _accept_digits(ctx: _Context, node: model.AskNode, digits: str) -> None:
    ctx.state.buffer = ""
    if node.ask.save_as:
        ctx.state.vars[node.ask.save_as] = digits
        if model.keypad_only(node.ask) and node.ask.save_as not in ctx.state.secret_vars:
            ctx.state.secret_vars.append(node.ask.save_as)
    ctx.state.record("captured", matched="ok", detail=f"{len(digits)} digits")
    _follow(ctx, node, "ok")


def _chosen(ctx: _Context, node: model.AskNode, outcome: str) -> None:
    ctx.state.pending = None
    if outcome.startswith("global:"):
        choice = ctx.flow.globals[outcome.removeprefix("global:")]
        _goto(ctx, choice.goto)
        return
    if node.ask.save_as:
        ctx.state.vars[node.ask.save_as] = outcome
    if ctx.state.node == ctx.flow.routes.intent_turn and (routed := _intent_route(ctx, outcome)) is not None:
        _goto(ctx, routed)
        return
    _follow(ctx, node, outcome)


def _follow(ctx: _Context, node: model.AskNode, outcome: str) -> None:
    ctx.state.pending = None
    target = node.next.get(outcome) if isinstance(node.next, dict) else node.next
    if target is None:
        _escape(ctx, "flow_error", f"turn {ctx.state.node} has no next for '{outcome}'")
        return
    _goto(ctx, target)


def _ask_confirmation(ctx: _Context, node: model.AskNode, heard: ev.Hypothesis, outcome: str,
                      rest: list[ev.Hypothesis]) -> None:
    """"Did you say ...?" with the choice's label when it has one, else the words heard.

    The recogniser's words may be a fragment ("my claim") or, in another
    language than the prompts, odd to hear back; a label is the designer's
    own words for the choice ("a claim on your policy"), in the call's
    language.
    """
    ctx.state.pending = Pending(kind="confirm", choice=outcome, heard=heard.text, alternatives=rest)
    label = _label_of(ctx, node, outcome)
    if label is None:
        ctx.emit(_play(ctx, ["common.did_you_say"], barge_in=True, values={"heard": heard.text}, echo=True))
    else:
        prompts = ctx.release.prompts
        said = prompts.render(ctx.state.language, label, _placeholder_values(ctx, label))
        ctx.emit(_play(ctx, ["common.did_you_say"], barge_in=True, values={"heard": said},
                       echo=prompts.shows_numbers(label)))
    ctx.emit(_listen_action(ctx, node, "confirm"))


def _label_of(ctx: _Context, node: model.AskNode, outcome: str) -> str | None:
    """The prompt key naming a choice (or a global choice) in confirmations, if it has a text in the call's language."""
    if outcome.startswith("global:"):
        choice: model.Choice | None = ctx.flow.globals.get(outcome.removeprefix("global:"))
    else:
        choice = (node.ask.choices or {}).get(outcome)
    label = choice.label if choice is not None else None
    return label if label and ctx.release.prompts.has(ctx.state.language, label) else None


def _yes_no(ctx: _Context, event: ev.Event) -> str | None:
    """The answer to "Did you say...?" or a read-back. Spoken below the flow's `reject_below`
    it is unclear: a doubtful "yes" would accept a number or a choice the caller never gave."""
    if isinstance(event, ev.Dtmf):
        return YES_NO_KEYS.get(event.digits)
    if isinstance(event, ev.Speech) and event.confidence >= ctx.flow.defaults.reject_below:
        return match(event.text, yes_no_grammar(ctx.state.language))
    return None


def _confirm_answer(ctx: _Context, node: model.AskNode, event: ev.Event) -> None:
    pending = ctx.state.pending
    assert pending is not None and pending.choice is not None
    answer = _yes_no(ctx, event)
    ctx.state.record("confirm", heard=getattr(event, "text", None), matched=answer, detail=pending.choice)
    if answer == "yes":
        _chosen(ctx, node, pending.choice)
        return
    if answer == "no":
        grammar = _listen_action(ctx, node, "choices").grammar
        for index, hypothesis in enumerate(pending.alternatives):
            outcome = match(hypothesis.text, grammar)
            if outcome and outcome != pending.choice:
                _ask_confirmation(ctx, node, hypothesis, outcome, pending.alternatives[index + 1:])
                return
        _nomatch(ctx, node, heard=f"not '{pending.heard}'")
        return
    if isinstance(event, ev.NoInput):
        _noinput(ctx, node)
    else:
        _nomatch(ctx, node, heard="unclear answer to confirmation")


def _readback_answer(ctx: _Context, node: model.AskNode, event: ev.Event) -> None:
    pending = ctx.state.pending
    assert pending is not None
    answer = _yes_no(ctx, event)
    ctx.state.record("confirm", heard=getattr(event, "text", None), matched=answer, detail="read-back")
    if answer == "yes":
        _accept_digits(ctx, node, pending.heard)
        return
    ctx.state.buffer = ""
    if isinstance(event, ev.NoInput):
        _noinput(ctx, node)
    else:
        _nomatch(ctx, node, heard="digits not confirmed")


def _noinput(ctx: _Context, node: model.AskNode) -> None:
    ctx.state.noinput += 1
    ctx.state.record("noinput", detail=str(ctx.state.noinput))
    _reprompt(ctx, node, "noinput", ctx.state.noinput)


def _nomatch(ctx: _Context, node: model.AskNode, heard: str) -> None:
    ctx.state.nomatch += 1
    ctx.state.record("nomatch", heard=heard, detail=str(ctx.state.nomatch))
    _reprompt(ctx, node, "nomatch", ctx.state.nomatch)


def _reprompt(ctx: _Context, node: model.AskNode, kind: str, count: int) -> None:
    prompts = getattr(node.ask, kind) or getattr(ctx.flow.defaults, kind) or []
    ctx.state.buffer = ""
    if count > len(prompts):
        _escape(ctx, kind, f"{count} times at {ctx.state.node}")
        return
    ctx.emit(_play(ctx, [prompts[count - 1]], node.ask.barge_in))
    _listen(ctx, node)


def resume(release: FlowSet, state: CallState) -> Step:
    """Pick a call up again after a controller restart.

    A turn is asked again from its prompt (the caller may have heard half of
    it). A pending read-only backend call is repeated. A call waiting on a
    backend action that writes cannot know whether the write happened, so it
    goes to a person with the reason, as does anything the engine cannot place
    and a call holding keypad-only answers (a card number), which were never
    saved (`CallState.at_rest`).
    """
    ctx = _Context(release, _working_copy(state))
    pending = ctx.state.pending
    if ctx.state.status != "running" or pending is None:
        return Step(ctx.state, [])
    node = ctx.node
    ctx.state.record("resume", detail=pending.kind)
    if withheld := ctx.state.withheld():
        _escape(ctx, "controller_restart", f"keypad-only answers are not kept across a restart: {', '.join(withheld)}")
        return Step(ctx.state, ctx.actions)
    if pending.kind == "backend":
        assert isinstance(node, model.ActionNode)
        if ACTIONS.get(node.action.name) and ACTIONS[node.action.name].writes:
            _escape(ctx, "controller_restart", f"{node.action.name} may or may not have completed")
        else:
            _call_backend(ctx, node)
        return Step(ctx.state, ctx.actions)
    assert isinstance(node, model.AskNode)
    keyed = ctx.state.buffer if pending.kind == "input" else ""
    _enter_ask(ctx, node)
    ctx.state.buffer = keyed  # the keys of a number begun before the restart still count
    return Step(ctx.state, ctx.actions)
