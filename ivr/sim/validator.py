"""Check requests (and events) against Asterisk's own ARI API description.

The ``api-docs/*.json`` files (swagger 1.2) list every resource, operation
and parameter.  Loading them lets the simulator prove that every request a
controller makes exists in Asterisk 22 with valid parameters: in strict
mode an invalid request is rejected with 400 and recorded.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Param:
    name: str
    kind: str            # query | path | body
    required: bool
    data_type: str
    allowed: list[str] | None
    multiple: bool


@dataclass
class Operation:
    method: str
    template: str
    regex: re.Pattern[str]
    nickname: str
    params: dict[str, Param] = field(default_factory=dict)


@dataclass
class Violation:
    method: str
    path: str
    query: dict[str, str]
    problems: list[str]


class ApiSpec:
    def __init__(self, operations: list[Operation], models: dict[str, Any]) -> None:
        self.operations = operations
        self.models = models

    @classmethod
    def load(cls, directory: Path) -> ApiSpec:
        operations: list[Operation] = []
        models: dict[str, Any] = {}
        for path in sorted(Path(directory).glob("*.json")):
            if path.name == "resources.json":
                continue
            doc = json.loads(path.read_text())
            models.update(doc.get("models", {}))
            for api in doc.get("apis", []):
                for op in api.get("operations", []):
                    operations.append(_operation(api["path"], op))
        # literal segments must win over {placeholders} (/channels/externalMedia)
        operations.sort(key=lambda o: o.template.count("{"))
        return cls(operations, models)

    def check(self, method: str, path: str, query: Mapping[str, str],
              body: Any = None) -> list[str]:
        """Problems with one request; ``path`` is relative to /ari."""
        matching = [op for op in self.operations if op.regex.fullmatch(path)]
        if not matching:
            return [f"no resource {path} in the API docs"]
        ops = [op for op in matching if op.method == method.upper()]
        if not ops:
            return [f"{method} not allowed on {matching[0].template}"]
        op = ops[0]
        problems: list[str] = []
        supplied = {k: v for k, v in query.items() if k != "api_key"}
        body_params = [p for p in op.params.values() if p.kind == "body"]
        if isinstance(body, dict):
            for key, value in body.items():
                if any(p.name == key for p in body_params):
                    continue
                supplied.setdefault(key, value if isinstance(value, str) else json.dumps(value))
        elif body is not None and not body_params:
            problems.append(f"{op.nickname} takes no request body")
        for name, value in supplied.items():
            param = op.params.get(name)
            if param is None or param.kind != "query":
                problems.append(f"unknown parameter '{name}' for {op.nickname}")
                continue
            problems.extend(_check_value(op.nickname, param, value))
        for param in op.params.values():
            if param.kind == "query" and param.required and param.name not in supplied:
                problems.append(f"missing required parameter '{param.name}' for {op.nickname}")
        return problems

    def check_event(self, event: Mapping[str, Any]) -> list[str]:
        """Problems with one event against the event models in events.json."""
        model = self.models.get(str(event.get("type")))
        if model is None:
            return [f"unknown event type {event.get('type')}"]
        problems = []
        props = dict(self.models.get("Message", {}).get("properties", {}))
        props.update(self.models.get("Event", {}).get("properties", {}))
        props.update(model.get("properties", {}))
        for name, spec in props.items():
            if spec.get("required") and name not in event:
                problems.append(f"{event['type']}: missing {name}")
        for name in event:
            if name not in props and not name.startswith("_"):
                problems.append(f"{event['type']}: unexpected field {name}")
        for name, spec in props.items():
            if name in event and spec.get("type") in self.models:
                problems.extend(self._check_object(f"{event['type']}.{name}", spec["type"], event[name]))
        return problems

    def _check_object(self, where: str, model_name: str, value: Any) -> list[str]:
        if not isinstance(value, dict):
            return [f"{where}: expected object {model_name}"]
        props = self.models[model_name].get("properties", {})
        out = [f"{where}: missing {n}" for n, s in props.items() if s.get("required") and n not in value]
        out += [f"{where}: unexpected field {n}" for n in value if n not in props]
        return out


def _operation(template: str, op: dict[str, Any]) -> Operation:
    regex = re.compile(re.sub(r"\\\{[^}]+\\\}", r"[^/]+", re.escape(template)))
    params = {}
    for p in op.get("parameters", []):
        allowed = p.get("allowableValues", {}).get("values") if p.get("allowableValues") else None
        params[p["name"]] = Param(p["name"], p["paramType"], bool(p.get("required")),
                                  p.get("dataType", "string"), allowed, bool(p.get("allowMultiple")))
    return Operation(op["httpMethod"].upper(), template, regex, op.get("nickname", ""), params)


def _check_value(nickname: str, param: Param, value: str) -> list[str]:
    values = value.split(",") if param.multiple else [value]
    problems = []
    for v in values:
        if param.data_type in ("int", "long"):
            try:
                int(v)
            except ValueError:
                problems.append(f"parameter '{param.name}' of {nickname} must be an integer, got {v!r}")
        elif param.data_type == "boolean" and v not in ("true", "false"):
            problems.append(f"parameter '{param.name}' of {nickname} must be true or false, got {v!r}")
        elif param.data_type == "double":
            try:
                float(v)
            except ValueError:
                problems.append(f"parameter '{param.name}' of {nickname} must be a number, got {v!r}")
        if param.allowed and v not in param.allowed:
            problems.append(f"parameter '{param.name}' of {nickname} must be one of {param.allowed}, got {v!r}")
    return problems
