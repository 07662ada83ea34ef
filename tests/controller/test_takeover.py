"""A controller taking over a call: what the caller heard, events before the call is known, DNIS.

Pure parts, no simulator: `step_audio.recover` decides from what Asterisk still
plays; `Unclaimed` keeps a takeover's early keys; the dialled number comes
from the Stasis arguments, also when read back with GET.
"""

from __future__ import annotations

import pytest

from ivr.ari import event_types as ari
from ivr.ari.models import Channel, DialplanCEP
from ivr.controller.app import Unclaimed, _call_data, stasis_args
from ivr.controller.step_audio import SentPrompt, StepAudio, recover, sent_prompt, unheard_from
from ivr.engine.actions import Play, PromptRef

T0 = 1000.0


def _prompt(n: int, seconds: float | None = 2.0, values: dict | None = None) -> SentPrompt:
    return SentPrompt(playback_id=f"pb{n}", key=f"k{n}", values={} if values is None else values,
                      language="en", barge_in=True, seconds=seconds)


def _audio(*prompts: SentPrompt) -> StepAudio:
    return StepAudio(call_id="c1", played=4, sent_at=T0, prompts=list(prompts))


def test_a_prompt_still_playing_is_kept_with_what_is_queued_behind_it():
    audio = _audio(_prompt(0), _prompt(1), _prompt(2))
    plan = recover(audio, [None, "playing", "queued"], T0 + 2.5, [True] * 3)
    assert [p.playback_id for p in plan.keep] == ["pb1", "pb2"]
    assert not plan.stop and not plan.replay and not plan.ask_again


def test_a_prompt_gone_before_its_audio_could_end_is_played_again_in_order():
    """The premium prompt's fetch failed while no controller served it: gone after 0.4 s of 2 s."""
    audio = _audio(_prompt(0), _prompt(1, values={"premium": "42.10"}), _prompt(2))
    plan = recover(audio, [None, None, "queued"], T0 + 2.4, [True] * 3)
    assert [p.playback_id for p in plan.replay] == ["pb1", "pb2"]
    assert plan.stop == ["pb2"]
    assert plan.replay[0].as_play().prompts == [PromptRef(key="k1", values={"premium": "42.10"})]


def test_every_prompt_heard_leaves_nothing_to_play():
    audio = _audio(_prompt(0), _prompt(1))
    assert unheard_from(audio, [None, None], T0 + 4.1) == 2
    plan = recover(audio, [None, None], T0 + 4.1, [True, True])
    assert not plan.keep and not plan.replay and not plan.stop


def test_a_queued_prompt_we_can_no_longer_serve_is_replaced():
    audio = _audio(_prompt(0), _prompt(1, values={"name": "Ann"}))
    plan = recover(audio, ["playing", "queued"], T0 + 1.0, [True, False])
    assert plan.stop == ["pb1", "pb0"]  # the queued one first, as Asterisk starts the next at once
    assert [p.playback_id for p in plan.replay] == ["pb0", "pb1"]


def test_an_unheard_echo_of_the_caller_is_not_replayed_the_engine_asks_again():
    echo = PromptRef(key="common.readback_digits", values={"digits": "07700900123"}, private=True)
    play = Play(prompts=[echo], language="en")
    written = sent_prompt("pb0", echo, play, 3.0)
    assert written.values is None  # the caller's digits are never written down
    plan = recover(_audio(written), [None], T0 + 0.5, [False])
    assert plan.ask_again and not plan.replay


def test_prompts_saying_a_number_masked_are_private_their_values_hold_it_whole():
    """`{policy.number:masked}` renders 4 digits, but the value the engine computed is the whole number."""
    from ivr.flow.catalog import load_flow_set
    from tests.conftest import ROOT

    release, _ = load_flow_set(ROOT / "flows", ROOT / "prompts")
    assert release.prompts.shows_numbers("policy.status") and release.prompts.shows_numbers("phone.code_sent")
    assert not release.prompts.shows_numbers("policy.premium_due")


def test_a_playing_echo_is_kept_asterisk_already_has_its_audio():
    echo = sent_prompt("pb0", PromptRef(key="k", values={"heard": "x"}, private=True), Play(prompts=[], language="en"), 2.0)
    plan = recover(_audio(echo), ["playing"], T0 + 0.5, [False])
    assert [p.playback_id for p in plan.keep] == ["pb0"]


def test_unknown_lengths_count_as_heard_once_gone():
    audio = _audio(_prompt(0, seconds=None), _prompt(1))
    assert unheard_from(audio, [None, "queued"], T0 + 0.1) == 1


def test_events_before_the_call_is_known_are_kept_bounded_and_dropped_when_it_ends():
    unclaimed = Unclaimed()
    key = ari.ChannelDtmfReceived(channel=Channel(id="c1"), digit="5", duration_ms=100)
    for _ in range(Unclaimed.PER_CHANNEL + 5):
        unclaimed.add("c1", key)
    assert len(unclaimed.take("c1")) == Unclaimed.PER_CHANNEL
    assert unclaimed.take("c1") == []
    unclaimed.add("c2", key)
    unclaimed.add("c2", ari.StasisEnd(channel=Channel(id="c2")))
    assert unclaimed.take("c2") == []
    for n in range(Unclaimed.CHANNELS + 10):
        unclaimed.add(f"x{n}", key)
    assert unclaimed.take("x0") == [] and unclaimed.take(f"x{Unclaimed.CHANNELS + 9}") == [key]


def test_dnis_is_the_stasis_argument_not_the_extension():
    """As recorded: after Goto(ivr-entry,s,1) the exten is `s`, the argument is the dialled number."""
    channel = Channel(id="c1", caller={"number": "07700900123"},
                      dialplan=DialplanCEP(context="ivr-entry", exten="s", priority=4,
                                           app_name="Stasis", app_data="ivr,18005550199"))
    assert _call_data(channel, ["18005550199"])["dnis"] == "18005550199"
    assert stasis_args(channel) == ["18005550199"]
    assert _call_data(channel, stasis_args(channel))["dnis"] == "18005550199"
    assert stasis_args(Channel(id="c2", dialplan=DialplanCEP(app_name="Queue", app_data="sales"))) == []


async def test_a_call_entering_stasis_while_the_controller_lists_its_calls_gets_one_session():
    """Connected, the controller lists the calls Asterisk holds; a call that arrives meanwhile is in
    the list and sends its StasisStart too. Two sessions would each play the menu to the caller."""
    import asyncio
    from types import SimpleNamespace

    from ivr.ari.events import ConnectInfo
    from ivr.controller.app import Controller

    caller = Channel(id="c1", name="PJSIP/trunk-00000001")
    looked_up = asyncio.Event()

    class Ari:
        async def get_application(self, app):
            return SimpleNamespace(channel_ids=["c1"])

        async def get_channel(self, channel_id):
            looked_up.set()
            await asyncio.sleep(0.05)  # the StasisStart is handled while this answer travels
            return caller

    class Store:
        async def load(self, channel_id):
            return None  # never saved: a call that was only just answered

    controller = Controller(SimpleNamespace(ari=Ari(), store=Store(), app="ivr"),
                            SimpleNamespace(current="release"), "main_menu")
    opened: list[str] = []

    def open_session(channel_id, services=None):
        opened.append(channel_id)
        controller.sessions[channel_id] = session = SimpleNamespace(submit=lambda item: None, held=[])
        return session

    controller._open = open_session
    await controller.on_connect(ConnectInfo(connections=1, attempts=1, downtime=0.0))
    await looked_up.wait()
    await controller.on_event(ari.StasisStart(channel=caller, args=["100"]))
    await asyncio.gather(*controller._tasks)
    assert opened == ["c1"]


async def test_a_call_handed_to_a_person_at_takeover_is_not_resumed_by_the_next_controller():
    """Flows changed under a live call: it goes to a person and stays subscribed (Asterisk lists
    it among the application's channels). Saved as transferred, no later controller resumes it."""
    import asyncio
    from types import SimpleNamespace

    from ivr.ari.events import ConnectInfo
    from ivr.controller.app import Controller
    from ivr.engine.actions import FALLBACK_QUEUE
    from ivr.engine.state import CallState

    caller = Channel(id="c1", name="PJSIP/trunk-00000001")
    saved = {"c1": CallState(call_id="c1", release="gone", flow="main_menu", node="menu", language="en")}
    requests: list[str] = []

    class Ari:
        async def get_application(self, app):
            return SimpleNamespace(channel_ids=["c1"])

        async def get_channel(self, channel_id):
            return caller

        def __getattr__(self, name):
            async def request(*args, **kwargs):
                requests.append(name)
            return request

    class Store:
        async def load(self, channel_id):
            return saved.get(channel_id)

        async def save(self, state, audio=None):
            saved[state.call_id] = state

    class Media:
        async def uri(self, release, language, prompt):
            return "sound:ivr/en/common.transfer_notice"

    def controller() -> Controller:
        made = Controller(SimpleNamespace(ari=Ari(), store=Store(), app="ivr", media=Media(), transfer_context="ivr"),
                          SimpleNamespace(current="release", get=lambda release: None), "main_menu")
        made._open = lambda *args: pytest.fail("a transferred call was resumed")
        return made

    for _ in range(2):
        first = controller()
        await first.on_connect(ConnectInfo(connections=1, attempts=1, downtime=0.0))
        await asyncio.gather(*first._tasks)
    assert requests.count("continue_in_dialplan") == 1, requests
    assert saved["c1"].status == "transferred" and saved["c1"].result["reason"] == "controller_restart"
    assert saved["c1"].result["queue"] == FALLBACK_QUEUE
