"""Who may change which flag at runtime, and whether a stored override is one they signed.

The snapshot's ``runtime.access`` (compiled from `security_config.access_control`; docs/overrides.md,
"Access control") says what each role may change; the keyring (``keys.py``) says which key belongs to
which identity and its roles. The same checks run on both sides:

- writers (`tusk flags`, `tusk rollout`) refuse a write before making it (``authorise``), and audit
  the refusal;
- readers (``RedisOverrides``, so every ``Client`` and `tusk serve --redis`) apply a record only when
  ``verify_record`` accepts it: signed by a known, unrevoked key whose identity is the one the record
  names, whose roles allow the flag in every environment the flag reaches, and, for a flag whose
  changes need approval, carrying a proposal signed by its proposer and enough distinct approvals by
  others, applied before the proposal expired. A record written straight into Redis fails the first
  check: it is ignored and logged.

Access control is enforced when the snapshot has ``role_based_access`` on and declares at least one
role (no role: the compiler warns, TSK350, and nothing is enforced).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from ..snapshot import Snapshot
from ..snapshot.models import AccessSettings
from .keys import KeyEntry, Keyring, Signer
from .store import record_bytes

ANY = "*"
# Diagnostic codes (docs/overrides.md, "Access control").
OUTSIDE_ROLE = "TSK709"
NO_IDENTITY = "TSK710"
NEEDS_APPROVAL = "TSK711"
BAD_PROPOSAL = "TSK712"
AUDIT_BROKEN = "TSK713"
KEYRING_PROBLEM = "TSK714"


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def proposal_digest(proposal: Mapping[str, Any]) -> str:
    """What the proposer and each approver sign: the proposal's fields but signatures and approvals."""
    body = {k: v for k, v in proposal.items() if k not in ("sig", "approvals", "status", "applied_version")}
    return hashlib.sha256(_dumps(body).encode("utf-8")).hexdigest()


def proposal_bytes(digest: str) -> bytes:
    return f"tusk-propose:1\n{digest}".encode()


def approval_bytes(digest: str, at: str) -> bytes:
    return f"tusk-approve:1\n{digest}\n{at}".encode()


@dataclass(frozen=True)
class Policy:
    """``runtime.access`` of a snapshot (None: no access_control block)."""

    settings: AccessSettings | None

    @classmethod
    def of(cls, snapshot: Snapshot | None) -> Policy:
        runtime = snapshot.runtime if snapshot is not None else None
        return cls(runtime.access if runtime is not None else None)

    @property
    def enforced(self) -> bool:
        s = self.settings
        return s is not None and s.role_based_access and bool(s.roles)

    def reach(self, flag: str) -> list[str]:
        assert self.settings is not None
        return list(self.settings.environments.get(flag, [ANY]))

    def _granting(self, roles: Iterable[str], flag: str) -> list[str]:
        """The roles among ``roles`` that may change ``flag`` (in every environment it reaches)."""
        assert self.settings is not None
        reach = set(self.reach(flag))
        out = []
        for name in roles:
            role = self.settings.roles.get(name)
            if role is None or not any(fnmatchcase(flag, pattern) for pattern in role.flags):
                continue
            if ANY in role.environments or (ANY not in reach and reach <= set(role.environments)):
                out.append(name)
        return out

    def allows(self, roles: Iterable[str], flag: str) -> str | None:
        """None when one of ``roles`` may change ``flag``; else why not."""
        roles = list(roles)
        if self._granting(roles, flag):
            return None
        held = ", ".join(roles) or "none"
        return f"no role of the writer (roles: {held}) may change `{flag}`, which reaches {', '.join(self.reach(flag))}"

    def needs_approval(self, roles: Iterable[str], flag: str) -> bool:
        """Whether a change of ``flag`` by a holder of ``roles`` must be proposed and approved."""
        s = self.settings
        if s is None or s.approval is None or flag not in s.approval.flags:
            return False
        return not any(s.roles[name].skip_approval for name in self._granting(roles, flag))

    def may_approve(self, roles: Iterable[str], flag: str) -> bool:
        s = self.settings
        assert s is not None and s.approval is not None
        if s.approval.approvers:
            return bool(set(roles) & set(s.approval.approvers))
        return bool(self._granting(roles, flag))

    # --- the writer's side -------------------------------------------------------------------------

    def authorise(self, entry: KeyEntry | None, flag: str, *, approved: bool = False) -> tuple[str, str] | None:
        """None when the key's holder may write ``flag`` now; else ``(code, why)``: TSK710 no identity,
        TSK709 outside the writer's roles, TSK711 needs approval. An ``approved`` write (it carries a
        proposal and its approvals) needs only an identity: the reader checks the proposer's role."""
        if entry is None:
            return (
                NO_IDENTITY,
                "access control is on: writes must be signed (give a token: $TUSK_TOKEN or --token-file)",
            )
        if approved:
            return None
        why = self.allows(entry.roles, flag)
        if why is not None:
            return OUTSIDE_ROLE, why
        if self.needs_approval(entry.roles, flag):
            assert self.settings is not None and self.settings.approval is not None
            need = self.settings.approval.required
            return NEEDS_APPROVAL, (
                f"changes of `{flag}` need {need} approval(s) by others than the proposer: "
                f"`tusk flags propose ...`, then `tusk flags approve ID`"
            )
        return None

    # --- the reader's side -------------------------------------------------------------------------

    def verify_record(self, keyring: Keyring | None, flag: str, record: Mapping[str, Any]) -> str | None:
        """None when a stored record may be applied; else why it is ignored."""
        if keyring is None:
            return "no keyring to check signatures with (--keyring or $TUSK_KEYRING)"
        signature = record.get("signature")
        if not isinstance(signature, Mapping) or not isinstance(signature.get("kid"), str):
            return "unsigned (not written by an authorised writer)"
        entry = keyring.get(signature["kid"])
        if entry is None:
            return f"signed by an unknown key {signature['kid']}"
        at = record.get("updated_at")
        if not isinstance(at, str) or not entry.valid_at(at):
            return f"signed by key {entry.kid}, which is {entry.status}"
        if not isinstance(signature.get("sig"), str) or not entry.verify(signature["sig"], record_bytes(flag, record)):
            return "bad signature (the record was changed after it was signed)"
        if record.get("updated_by") != entry.identity:
            return f"signed by {entry.identity} but attributed to {record.get('updated_by')!r}"
        approval = record.get("approval")
        if approval is not None:
            return self._verify_approval(keyring, flag, record, entry, approval)
        why = self.allows(entry.roles, flag)
        if why is not None:
            return why
        if self.needs_approval(entry.roles, flag):
            return "needs approval but carries none"
        return None

    def _verify_approval(
        self, keyring: Keyring, flag: str, record: Mapping[str, Any], writer: KeyEntry, approval: Any
    ) -> str | None:
        s = self.settings
        assert s is not None
        if s.approval is None:
            return self.allows(writer.roles, flag)  # approval not configured: the writer's role decides
        if not isinstance(approval, Mapping) or not isinstance(approval.get("proposal"), Mapping):
            return "malformed approval"
        proposal = approval["proposal"]
        proposer = keyring.get(str(proposal.get("kid")))
        digest = proposal_digest(proposal)
        if proposal.get("flag") != flag or proposer is None:
            return "the approval is for another flag or by an unknown proposer"
        if not proposer.valid_at(str(proposal.get("created_at"))) or not proposer.verify(
            str(proposal.get("sig")), proposal_bytes(digest)
        ):
            return "the proposal's signature does not hold"
        why = self.allows(proposer.roles, flag)
        if why is not None:
            return f"proposer: {why}"
        if not str(record.get("updated_at")) <= str(proposal.get("expires_at")):
            return "applied after the proposal expired"
        patch = proposal.get("patch")
        if not isinstance(patch, Mapping) or not _carries(record, patch):
            return "the record does not carry the approved change"
        approvers: set[str] = set()
        for item in approval.get("approvals") or []:
            if not isinstance(item, Mapping):
                continue
            key = keyring.get(str(item.get("kid")))
            at = str(item.get("at"))
            if key is None or not key.valid_at(at) or not key.verify(str(item.get("sig")), approval_bytes(digest, at)):
                continue
            if key.identity != proposer.identity and self.may_approve(key.roles, flag):
                approvers.add(key.identity)
        if writer.identity != proposer.identity and writer.identity not in approvers:
            return f"applied by {writer.identity}, neither the proposer nor an approver"
        if len(approvers) < s.approval.required:
            return f"{len(approvers)} valid approval(s) by others than the proposer, {s.approval.required} needed"
        return None


def _carries(record: Mapping[str, Any], patch: Mapping[str, Any]) -> bool:
    """Whether ``record`` holds every field ``patch`` sets (per-rule maps: every rule it names)."""
    for name, value in patch.items():
        held = record.get(name)
        if isinstance(value, Mapping):
            if not isinstance(held, Mapping) or any(held.get(k) != v for k, v in value.items()):
                return False
        elif held != value:
            return False
    return True


def sign_proposal(signer: Signer, proposal: dict[str, Any]) -> dict[str, Any]:
    return {**proposal, "sig": signer.sign(proposal_bytes(proposal_digest(proposal)))}


def sign_approval(signer: Signer, proposal: Mapping[str, Any], at: str) -> dict[str, str]:
    return {"kid": signer.kid, "at": at, "sig": signer.sign(approval_bytes(proposal_digest(proposal), at))}
