"""The demo city's witnesses: the intermediate court and the discipline commission, and a monitor
(the provincial audit office), with their own keys and states in a folder beside the ledger.
They run **in-process** (``witnesses.json`` names them ``in_process``): the platform's process
asks them with the same add-checkpoint bodies a witness process answers over HTTP, so every
extract the demo issues carries their cosignatures. That shows the protocol, not independence:
in production each is another party's process (`credit witness serve`, `credit monitor
serve`), named by its URL."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ledger.application import CreditLedger
from workflows.witness import make_key_file
from workflows.witnesses import Published, config_file, publish, read_config

COSIGNERS = (("court.hangzhou/witness", "court", False),
             ("commission.linan/witness", "commission", False),
             ("audit.zhejiang/monitor", "audit", True))


@dataclass(frozen=True)
class DemoCosigner:
    name: str
    public_key_file: Path


def cosign_demo(ledger: CreditLedger, folder: Path) -> tuple[list[Published], list[DemoCosigner]]:
    """Give the demo its witnesses (keys made once) and have them cosign the latest checkpoint."""
    entries, shown = [], []
    for name, short, monitor in COSIGNERS:
        private = folder / f"{short}.key"
        if not private.exists():
            (folder / f"{short}.pem").write_bytes(make_key_file(private))
        local = {"key": str(private.resolve()), "state": str((folder / f"{short}-state.json")
                                                            .resolve())}
        if monitor:
            local["mirror"] = str((folder / f"{short}-mirror.db").resolve())
        entries.append({"name": name, "in_process": local})
        shown.append(DemoCosigner(name, folder / f"{short}.pem"))
    config = config_file(ledger)
    config.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
    return publish(ledger, read_config(config)), shown
