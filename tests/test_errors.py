"""The library's typed notes (lm_routing.errors.Note): English for people, a code and fields for programs."""

import json
import pickle

from lm_routing.errors import Note, name_settings, note_json


def test_a_note_is_its_line_and_carries_its_code_fields_and_settings_through_pickle_and_json():
    note = Note("budget-operating-point", "router knn within $0.003/query: lam 2; raise «budget»", router="knn", lam=2.0)
    assert note.startswith("router knn within") and "«budget»" in note  # every str operation sees the line
    again = pickle.loads(pickle.dumps(note))  # worker processes return notes
    assert (again, again.code, again.fields) == (note, note.code, note.fields)
    data = note_json(note, {"budget": "--budget"})
    assert data == {"code": "budget-operating-point", "message": "router knn within $0.003/query: lam 2; raise --budget",
                    "fields": {"router": "knn", "lam": 2.0}, "settings": ["budget"]}
    assert json.loads(json.dumps(data)) == data
    assert name_settings(note) == "router knn within $0.003/query: lam 2; raise budget"


def test_a_plain_string_note_is_data_too():
    assert note_json("warning: something «filter»") == {"code": "note", "message": "warning: something filter",
                                                         "fields": {}, "settings": ["filter"]}
