"""The REST contract `HttpPolicyAdmin` speaks, served over any PolicyAdmin (aiohttp).

This is the shape a core system's API must have (or an integration layer in
front of it must give): JSON records as in `model.py`, 404 for "no such
record", 409 for a write that no longer applies, and an `Idempotency-Key`
header on writes that makes a repeated request answer the first result.
Tests run the HTTP adapter against this server over the SQLite book.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from ivr.policyadmin.base import Conflict, PolicyAdmin
from ivr.policyadmin.model import PaymentMethod, from_json, to_json

ADMIN = web.AppKey("admin", PolicyAdmin)


def core_app(admin: PolicyAdmin) -> web.Application:
    app = web.Application()
    app[ADMIN] = admin
    app.add_routes([
        web.get("/persons", _persons_by_phone),
        web.get("/persons/{id}", _person),
        web.post("/persons/{id}/identity-check", _identity_check),
        web.get("/persons/{id}/policies", _policies_of),
        web.post("/persons/{id}/phone", _change_phone),
        web.get("/phone-owners", _phone_owners),
        web.get("/policies/{number}", _policy),
        web.get("/policies/{number}/open-claim", _open_claim),
        web.get("/policies/{number}/debit-failure", _debit_failure),
        web.get("/policies/{number}/downgrade-options", _downgrade_options),
        web.get("/policies/{number}/promise", _promised_by),
        web.get("/debit-failures", _open_debit_failures),
        web.post("/policies/{number}/payments", _record_payment),
        web.post("/policies/{number}/promises", _record_promise),
        web.post("/policies/{number}/cancellation-requests", _request_cancellation),
    ])
    return app


def _admin(request: web.Request) -> PolicyAdmin:
    return request.app[ADMIN]


def _answer(value: Any) -> web.Response:
    if value is None:
        raise web.HTTPNotFound()
    return web.json_response(to_json(value))


def _key(request: web.Request) -> str:
    key = request.headers.get("Idempotency-Key")
    if not key:
        raise web.HTTPBadRequest(text="writes need an Idempotency-Key header")
    return key


async def _persons_by_phone(request: web.Request) -> web.Response:
    return web.json_response({"persons": to_json(await _admin(request).persons_by_phone(request.query.get("phone", "")))})


async def _person(request: web.Request) -> web.Response:
    return _answer(await _admin(request).person(request.match_info["id"]))


async def _identity_check(request: web.Request) -> web.Response:
    body = await request.json()
    dob = dt.date.fromisoformat(body["dob"]) if body.get("dob") else None
    match = await _admin(request).check_identity(request.match_info["id"], dob=dob, id_last4=body.get("id_last4"))
    return web.json_response({"match": match})


async def _policies_of(request: web.Request) -> web.Response:
    return web.json_response({"policies": to_json(await _admin(request).policies_of(request.match_info["id"]))})


async def _phone_owners(request: web.Request) -> web.Response:
    return _answer(await _admin(request).phone_owners(request.query.get("phone", "")))


async def _policy(request: web.Request) -> web.Response:
    return _answer(await _admin(request).policy(request.match_info["number"]))


async def _open_claim(request: web.Request) -> web.Response:
    return _answer(await _admin(request).open_claim(request.match_info["number"]))


async def _debit_failure(request: web.Request) -> web.Response:
    return _answer(await _admin(request).debit_failure(request.match_info["number"]))


async def _open_debit_failures(request: web.Request) -> web.Response:
    try:
        limit = min(max(int(request.query.get("limit", "1000")), 1), 10_000)
    except ValueError:
        raise web.HTTPBadRequest(text="limit must be a number") from None
    return _answer({"failures": await _admin(request).open_debit_failures(limit)})


async def _promised_by(request: web.Request) -> web.Response:
    pay_by = await _admin(request).promised_by(request.match_info["number"])
    return _answer({"pay_by": pay_by} if pay_by else None)


async def _downgrade_options(request: web.Request) -> web.Response:
    return _answer(await _admin(request).downgrade_options(request.match_info["number"]))


async def _record_payment(request: web.Request) -> web.Response:
    body = await request.json()
    method = from_json(PaymentMethod, body["method"]) if body.get("method") else None
    return await _write(_admin(request).record_payment(request.match_info["number"], float(body["amount"]),
                                                       str(body["gateway_ref"]), method, _key(request)))


async def _record_promise(request: web.Request) -> web.Response:
    body = await request.json()
    return await _write(_admin(request).record_promise(request.match_info["number"],
                                                       dt.date.fromisoformat(body["pay_by"]), _key(request)))


async def _change_phone(request: web.Request) -> web.Response:
    body = await request.json()
    try:
        change = await _admin(request).change_phone(request.match_info["id"], str(body["phone"]),
                                                    list(body.get("flag_reasons") or []), _key(request))
    except Conflict as exc:
        raise web.HTTPConflict(text=str(exc)) from None
    return web.json_response(to_json(change))


async def _request_cancellation(request: web.Request) -> web.Response:
    body = await request.json()
    return await _write(_admin(request).request_cancellation(request.match_info["number"], str(body["reason"]),
                                                             _key(request)))


async def _write(coroutine) -> web.Response:
    try:
        return web.json_response({"reference": await coroutine})
    except Conflict as exc:
        raise web.HTTPConflict(text=str(exc)) from None
