"""`credit tokens`: the API's bearer tokens, issued and revoked by the credit office."""

from __future__ import annotations

from uuid import UUID

import click

from cli.common import credit, emit, opened, print_table, reading, safe_text, writing
from workflows.tokens import Tokens


@credit.group()
def tokens() -> None:
    """Bearer tokens for the HTTP API, one per principal: an authority (tax, credit-office), a
    reader (auditor:NAME, court:NAME, agency:NAME) or a subject (subject:KEY). Issued and
    revoked by the credit office as signed events; only the SHA-256 of a secret is kept."""


@tokens.command("issue")
@click.argument("principal")
@click.option("--as", "actor", default="credit-office", show_default=True,
              help="Who issues it (the credit office's key signs).")
@click.option("--note", default="", help="What it is for (who holds it, where).")
@click.option("--json", "as_json", is_flag=True)
def issue(principal: str, actor: str, note: str, as_json: bool) -> None:
    """Issue a token for PRINCIPAL; the token is printed once and cannot be shown again."""
    with writing() as ledger:
        issued = Tokens(ledger).issue(actor, principal, note)
    emit(as_json, {"token_id": issued.token_id.hex, "principal": issued.principal,
                   "role": issued.role, "token": issued.bearer},
         f"token {issued.token_id.hex} for {safe_text(issued.principal)} ({issued.role}); "
         f"give the holder this once (it is not kept):\n{issued.bearer}")


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True)
def listed(as_json: bool) -> None:
    """Every token ever issued, and whether it is revoked (never the secrets)."""
    with opened(reading()) as ledger:
        rows = Tokens(ledger).listed()
    if as_json:
        emit(True, {"tokens": rows}, "")
        return
    print_table(["token", "principal", "role", "issued", "revoked", "note"],
                [[r["token_id"], r["principal"], r["role"], r["issued_at"][:19],
                  (r["revoked_at"] or "")[:19], r["note"]] for r in rows])


@tokens.command("revoke")
@click.argument("token_id")
@click.option("--reason", required=True)
@click.option("--as", "actor", default="credit-office", show_default=True)
def revoke(token_id: str, reason: str, actor: str) -> None:
    """Revoke a token: from now on the API refuses it."""
    try:
        parsed = UUID(token_id)
    except ValueError:
        raise click.BadParameter(f"{token_id!r} is not a token id", param_hint="TOKEN_ID") from None
    with writing() as ledger:
        Tokens(ledger).revoke(actor, parsed, reason)
    click.echo(f"token {parsed.hex} revoked")
