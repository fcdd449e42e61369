"""A monitor: a witness that checks what witnesses cannot. It mirrors the whole log through its
tiles (workflows/mirror.py: every event, signature and version, the tree, and the chain map
recomputed from every entry) and cosigns a checkpoint only when its mirror has verified that
very checkpoint — its ``chains`` line included — and the checkpoint extends the last one it
cosigned (the witness's own rule).

What its cosignature means (docs/FORMAT.md §12): as of its time, the monitor holds every entry
of the tree the checkpoint names, each validly signed, and the checkpoint's chain map is the
map of those entries' chains; so an extract under that checkpoint whose chains check against
the map (the verifier's completeness check) holds every event of its subject — a statement that
no longer rests on the platform alone."""

from __future__ import annotations

from proofs.cosignature import split_note
from workflows.mirror import Fetch, Mirror, MirrorRefused, MirrorUnavailable
from workflows.witness import Answer, Witness, request_note


class Monitor:
    def __init__(self, witness: Witness, mirror: Mirror, fetch: Fetch) -> None:
        self.witness = witness
        self.mirror = mirror
        self.fetch = fetch

    @property
    def name(self) -> str:
        return self.witness.name

    def add_checkpoint(self, request: bytes) -> Answer:
        try:
            body = split_note(request_note(request))[0]  # the body the witness would cosign
        except ValueError:
            return self.witness.add_checkpoint(request)  # the witness says what is malformed
        if not self.mirror.verified(body):
            try:
                self.mirror.sync(self.fetch)
            except MirrorRefused as exc:
                return Answer(422, f"the monitor's copy of the log refuses it: {exc}\n")
            except MirrorUnavailable as exc:
                return Answer(503, f"the monitor cannot read the log now: {exc}\n")
            if not self.mirror.verified(body):
                return Answer(422, "the monitor has not verified this checkpoint: it is not the "
                                   "one the log serves\n")
        return self.witness.add_checkpoint(request)
