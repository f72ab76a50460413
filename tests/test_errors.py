"""The library's notes (lm_routing.errors.Note) are data, a code and fields; the CLI (lm_routing.cli.notes) words them."""

import functools
import json
import pickle

from lm_routing.cli.notes import say
from lm_routing.errors import Note, name_settings
from lm_routing.reporting.comparison import note_json


def test_a_note_is_data_and_the_cli_writes_its_line():
    note = Note("budget-operating-point", router="knn", budget=0.003, lam=2.0, mean_cost=0.0025)
    again = pickle.loads(pickle.dumps(note))  # worker processes return notes
    assert (again, again.code, again.fields, again.settings) == (note, note.code, note.fields, ())
    assert not isinstance(note, str)  # no English in the library: the caller words it
    data = note_json(note, functools.partial(say, names={"budget": "--budget"}))
    assert data == {"code": "budget-operating-point", "message": "router knn within $0.003/query: lam 2, mean $0.0025/query",
                    "fields": {"router": "knn", "budget": 0.003, "lam": 2.0, "mean_cost": 0.0025}, "settings": []}
    assert json.loads(json.dumps(data)) == data


def test_a_note_names_its_settings_as_the_caller_calls_them():
    note = Note("heavy-policies-left-out", ("policies",), router="mlc", ran=["argmax"], left_out=["prediction"])
    assert say(note).endswith("name them with policies to run them")
    assert say(note, {"policies": "--policy"}).endswith("name them with --policy to run them")
    assert note_json(note, functools.partial(say, names={"policies": "--policy"}))["settings"] == ["policies"]  # data: the field
    skipped = Note("skipped", documents=2, reason=Note("malformed-lines-skipped", ("skip_bad_lines",), lines=["a:1", "b:7"]))
    assert say(skipped, {"skip_bad_lines": "--skip-bad-lines"}) == "skipped 2 documents: malformed lines skipped (--skip-bad-lines): a:1, b:7"
    assert name_settings("raise «budget»") == "raise budget"
