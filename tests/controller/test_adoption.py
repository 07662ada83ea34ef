"""What the controller does with the channels Asterisk holds after a (re)connect (`ivr.controller.adoption`),
decided from facts: no ARI, no Redis, no event loop."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ivr.ari import event_types as ari
from ivr.ari.models import Channel
from ivr.controller import adoption as ad
from ivr.engine.state import CallState


def saved(status: str = "running", release: str = "r1") -> CallState:
    return CallState(call_id="c1", release=release, flow="main_menu", node="menu", language="en", status=status)


def test_after_a_reconnect_left_callers_end_held_ones_recheck_and_unknown_ones_are_adopted():
    plan = ad.reconnect(["c2", "c9", "c3", "c9"], ["c1", "c2", "c3"])
    assert plan == ad.Reconnect(gone=("c1",), held=("c2", "c3"), unknown=("c9",))
    assert ad.reconnect([], []) == ad.Reconnect((), (), ())


def test_the_channels_asterisk_makes_for_our_snoops_and_media_legs_are_no_callers():
    assert ad.is_caller(Channel(id="c1", name="PJSIP/trunk-00000001"))
    assert ad.is_caller(Channel(id="c1", name="Local/100@ivr-00000001;1"))
    for name in ("Snoop/c1-00000002", "UnicastRTP/127.0.0.1:4000-00000003", "AudioSocket/x", "WebSocket/y"):
        assert not ad.is_caller(Channel(id="c1-media-1", name=name)), name


def test_a_helper_leg_is_hung_up_unless_its_call_listens_with_it():
    assert ad.decide(ad.HelperLeg(live=False)) == ad.HangUpLeg()
    assert isinstance(ad.decide(ad.HelperLeg(live=True)), ad.Leave)


def test_a_caller_never_saved_starts_afresh():
    assert ad.decide(ad.Caller(None)) == ad.StartFresh()


def test_a_running_call_resumes_on_its_release_or_goes_to_a_person_when_that_is_gone():
    state = saved(release="r7")
    assert ad.decide(ad.Caller(state, release_known=True)) == ad.ResumeCall(state)
    decision = ad.decide(ad.Caller(state, release_known=False))
    assert isinstance(decision, ad.HandOff) and decision.state == state and "release r7" in decision.detail


def test_a_call_transferred_or_ended_is_left_alone():
    """A caller handed to a person stays subscribed: it must not be taken from the queue and resumed."""
    for status in ("transferred", "ended"):
        for known in (True, False):
            assert isinstance(ad.decide(ad.Caller(saved(status), release_known=known)), ad.Leave)


def test_a_call_whose_session_opened_while_we_looked_is_that_sessions():
    for state in (None, saved()):
        assert isinstance(ad.decide(ad.Caller(state, in_session=True, release_known=True)), ad.Leave)


def test_early_events_are_kept_a_few_per_channel_and_forgotten_when_the_channel_ends():
    key = ari.ChannelDtmfReceived(channel=Channel(id="c1"), digit="5", duration_ms=100)
    assert ad.keep_unclaimed(key, 0, 16) == "keep" and ad.keep_unclaimed(key, 15, 16) == "keep"
    assert ad.keep_unclaimed(key, 16, 16) == "full"
    assert ad.keep_unclaimed(ari.StasisEnd(channel=Channel(id="c1")), 3, 16) == "forget"
    assert ad.keep_unclaimed(ari.ChannelDestroyed(channel=Channel(id="c1"), cause=16, cause_txt=""), 0, 16) == "forget"


@given(st.sampled_from([None, "running", "transferred", "ended"]), st.booleans(), st.booleans())
def test_a_caller_of_ours_never_waits_in_silence(status, in_session, known):
    """Every held caller is started, resumed, handed to a person, or somebody else's business."""
    state = None if status is None else saved(status)
    decision = ad.decide(ad.Caller(state, in_session=in_session, release_known=known))
    if in_session or status in ("transferred", "ended"):
        assert isinstance(decision, ad.Leave)
    else:
        assert isinstance(decision, (ad.StartFresh, ad.ResumeCall, ad.HandOff))
        assert not isinstance(decision, ad.ResumeCall) or known, "never resumed on a release that is gone"


@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=6), st.sets(st.sampled_from(["a", "b", "c", "e"])))
def test_every_channel_and_session_is_settled_exactly_once(held, sessions):
    plan = ad.reconnect(held, sessions)
    assert sorted(plan.gone + plan.held) == sorted(sessions)
    assert set(plan.held) | set(plan.unknown) == set(held)
    assert len(plan.unknown) == len(set(plan.unknown)) and not set(plan.unknown) & sessions
