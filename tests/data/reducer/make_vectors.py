"""Writes the reducer's test vectors (docs/REDUCER.md): `python -m tests.data.reducer.make_vectors`.

Builds the back-dated scenario of tests/integration/test_backdated.py in a temporary SQLite
ledger and records, for several (as-of day, known-at time) pairs, the subject's events and the
policy events **as stored** (the form an extract carries, docs/FORMAT.md §1) with the state
`domain/state.py` computes from them. A third party's reducer must give the same states.
"""

from __future__ import annotations

import base64
import json
import tempfile
from datetime import date
from pathlib import Path

from sqlalchemy import select

from domain.state import REDUCER_VERSION, subject_state
from ledger import tables
from ledger.application import CreditLedger
from ledger.settings import Settings
from proofs.checks import oid_text
from proofs.facts import fact_from_row
from tests.conftest import ENTERPRISE, PASSPHRASE, at
from tests.integration.test_backdated import City
from workflows.services import CreditServices

HERE = Path(__file__).parent
CASES = [  # (as-of day, known at): around each act of the scenario, both axes
    ("2019-06-12", "2026-11-27T00:00:00"), ("2019-06-13", "2026-11-27T00:00:00"),
    ("2019-06-13", "2019-06-16T15:59:59.999999"), ("2019-07-01", "2019-07-31T15:59:59.999999"),
    ("2019-07-01", "2026-11-27T00:00:00"), ("2020-01-19", "2026-11-27T00:00:00"),
    ("2020-01-20", "2026-11-27T00:00:00"), ("2020-04-09", "2026-11-27T00:00:00"),
    ("2020-04-10", "2026-11-27T00:00:00"), ("2020-04-10", "2022-05-31T15:59:59.999999"),
    ("2023-01-01", "2026-11-27T00:00:00"),
]


def stored(app: CreditLedger, where: object) -> list[dict[str, object]]:
    log, events = tables.log, app.recorder.events_table
    with app.engine.connect() as conn:
        rows = conn.execute(
            select(log.c.position, events.c.id, events.c.originator_id,
                   events.c.originator_version, events.c.topic, events.c.state)
            .join(events, events.c.id == log.c.notification_id).where(where)
            .order_by(log.c.position)).all()
    return [{"position": p, "notification_id": n, "originator_id": oid_text(o), "version": v,
             "topic": t, "state": base64.b64encode(bytes(s)).decode("ascii")}
            for p, n, o, v, t, s in rows]


def facts(items: list[dict[str, object]]) -> list[object]:
    return [fact_from_row(i["position"], i["notification_id"], i["originator_id"], i["version"],
                          i["topic"], base64.b64decode(str(i["state"]))) for i in items]


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        app = CreditLedger(Settings(database_url=f"sqlite:///{folder}/v.db",
                                    keys_dir=Path(folder) / "keys", passphrase=PASSPHRASE))
        try:
            City(CreditServices(app))
            subject_events = stored(app, tables.log.c.subject == ENTERPRISE.key)
            policy_events = stored(app, tables.log.c.stream == "PolicyVersion")
        finally:
            app.close()
    (HERE / "policies.json").write_text(json.dumps({"events": policy_events}, indent=1) + "\n")
    vectors = []
    for as_of, known in CASES:
        state = subject_state(ENTERPRISE.key, facts(subject_events), facts(policy_events),
                              date.fromisoformat(as_of), at(known))
        vectors.append({"as_of": as_of, "known_at": at(known).isoformat(), "state": state})
    (HERE / "backdated.json").write_text(json.dumps(
        {"reducer": REDUCER_VERSION, "subject": ENTERPRISE.key, "policies": "policies.json",
         "events": subject_events, "cases": vectors}, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
