"""Event types are an enum with the documented JSON names; every event of a turn carries its id."""
from __future__ import annotations

import json
import threading

from jarvis import events


def test_every_event_class_has_an_enum_type_and_the_json_name_is_its_value():
    assert set(events.EVENT_TYPES) == set(events.EventType)
    for kind, cls in events.EVENT_TYPES.items():
        assert cls.type is kind and isinstance(kind, events.EventType)
    payload = json.loads(events.Reply(text="hi", t=1.5, turn=3).to_json())
    assert payload == {"type": "reply", "t": 1.5, "turn": 3, "text": "hi"}
    assert events.Wake(t=2.0).type == "wake"  # the enum compares equal to its JSON name
    assert "turn" not in events.Ready(t=0.0).to_dict()  # events of no turn have no id


def test_events_emitted_inside_a_turn_carry_its_id_on_threads_started_for_it():
    bus, seen = events.EventBus(), []
    bus.subscribe(seen.append)
    first, second = bus.new_turn(), bus.new_turn()
    assert second == first + 1
    with events.in_turn(second):
        bus.emit(events.Transcript(text="what time is it"))
        for thread in (threading.Thread(target=events.in_turn_thread(bus.emit, events.TtsFirstChunk(engine="piper"))),
                       threading.Thread(target=bus.emit, args=(events.Degraded(engine="csm", reason="x"),))):
            thread.start()
            thread.join()  # one after the other: the order seen is the order emitted
        bus.emit(events.PlaybackEnd(turn=first))  # an event that names its turn keeps it
    bus.emit(events.Ready())
    assert [(e.type, e.turn) for e in seen] == [("transcript", second), ("tts_first_chunk", second),
                                               ("degraded", None), ("playback_end", first), ("ready", None)]
