"""Case: an investigation of one or more alerts, from opening to a closing disposition or a SAR.

Definition
    A case (stream ``aml-case:<id>``) is opened from at least one alert by an analyst. It can
    take more alerts, be assigned (and re-assigned), collect notes and evidence references
    (a document, a transaction export, a screenshot, with its SHA-256), be escalated for a
    second opinion, be closed with a disposition, be reopened, or end with a SAR filed.

    States and the commands each accepts::

        open ──escalate──▶ escalated ──file_sar──▶ sar_filed   (final)
          │                    │
          └──────close─────────┴──▶ closed ──reopen──▶ open

    ``open`` and ``escalated`` accept assign, note, attach evidence and add alerts.

Guarantees
    * Every event names who acted and when; the case's history is its audit trail.
    * A closed case changes only by reopening (with a reason); a filed SAR is final.
    * A SAR is filed only from an escalated case (the four-eyes principle).

Rejections (in precedence order, ``CASE_ORDER``)
    ``actor_required``, then the command's own fields (``alerts_required``,
    ``text_required``, ``invalid_disposition``), then the case's state: ``case_exists``
    (open), ``sar_already_filed``, ``case_closed``, ``case_not_closed`` (reopen),
    ``case_already_escalated`` (escalate), ``case_not_escalated`` (file SAR),
    ``already_assigned`` (assign). ``case_not_found`` is answered by the application when
    the stream has no events.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain.aggregate import Aggregate
from domain.aml import errors as e
from domain.aml.events import (
    CaseAlertsAdded,
    CaseAssigned,
    CaseClosed,
    CaseEscalated,
    CaseEvidenceAttached,
    CaseNoteAdded,
    CaseOpened,
    CaseReopened,
    SarFiled,
)
from domain.invariant import invariant

CASE_ORDER: tuple[str, ...] = (
    "actor_required",
    "alerts_required",
    "text_required",
    "invalid_disposition",
    "case_exists",
    "sar_already_filed",
    "case_closed",
    "case_not_closed",
    "case_already_escalated",
    "case_not_escalated",
    "already_assigned",
)
DISPOSITIONS = (
    "false_positive",
    "no_suspicion",
    "insufficient_information",
    "referred_elsewhere",
)
STATES = ("open", "escalated", "closed", "sar_filed")


def stream_id(case_id: str) -> str:
    return f"aml-case:{case_id}"


def _actor(by: str, case_id: str) -> None:
    if not isinstance(by, str) or not by.strip():
        raise e.ActorRequired("every case action names who took it", case_id=case_id)


def _text(value: str, what: str, case_id: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise e.TextRequired(f"{what} must not be empty", case_id=case_id, field=what)


def _alerts(alert_ids: Sequence[str], case_id: str) -> list[str]:
    if not alert_ids or not all(isinstance(a, str) and a for a in alert_ids):
        raise e.AlertsRequired("a case is opened from at least one alert id", case_id=case_id)
    return sorted(set(alert_ids))


class Case(Aggregate):
    __slots__ = (
        "alert_ids",
        "assignee",
        "case_id",
        "disposition",
        "evidence",
        "notes",
        "opened_at_ns",
        "opened_by",
        "sar",
        "status",
        "title",
        "trail",
    )

    def __init__(self, case_id: str) -> None:
        super().__init__(stream_id(case_id))
        self.case_id = case_id
        self.status = "new"
        self.title = ""
        self.alert_ids: tuple[str, ...] = ()
        self.assignee = ""
        self.notes: tuple[dict[str, Any], ...] = ()
        self.evidence: tuple[dict[str, Any], ...] = ()
        self.disposition = ""
        self.sar: dict[str, Any] | None = None
        self.opened_by = ""
        self.opened_at_ns = 0
        self.trail: tuple[dict[str, Any], ...] = ()  # every action: what, who, when

    # ------------------------------------------------------------------ commands

    @classmethod
    def open(
        cls,
        case_id: str,
        alert_ids: Sequence[str],
        title: str,
        by: str,
        existing: Case | None,
        now_ns: int,
    ) -> Case:
        _actor(by, case_id)
        alerts = _alerts(alert_ids, case_id)
        if existing is not None and existing.status != "new":
            raise e.CaseExists(f"case {case_id} was already opened", case_id=case_id)
        case = cls(case_id)
        case._trigger(CaseOpened(case_id, alerts, title or "", by, now_ns))
        return case

    def add_alerts(self, alert_ids: Sequence[str], by: str, now_ns: int) -> None:
        _actor(by, self.case_id)
        alerts = _alerts(alert_ids, self.case_id)
        self._must_be_workable()
        new = [a for a in alerts if a not in self.alert_ids]
        if new:
            self._trigger(CaseAlertsAdded(self.case_id, new, by, now_ns))

    def assign(self, assignee: str, by: str, now_ns: int) -> None:
        _actor(by, self.case_id)
        _text(assignee, "assignee", self.case_id)
        self._must_be_workable()
        if assignee == self.assignee:
            raise e.AlreadyAssigned(
                f"case {self.case_id} is already assigned to {assignee}", case_id=self.case_id
            )
        self._trigger(CaseAssigned(self.case_id, assignee, by, now_ns))

    def add_note(self, text: str, by: str, now_ns: int) -> None:
        _actor(by, self.case_id)
        _text(text, "text", self.case_id)
        self._must_be_workable()
        self._trigger(CaseNoteAdded(self.case_id, text, by, now_ns))

    def attach_evidence(
        self, kind: str, reference: str, sha256: str, description: str, by: str, now_ns: int
    ) -> None:
        _actor(by, self.case_id)
        _text(kind, "kind", self.case_id)
        _text(reference, "reference", self.case_id)
        self._must_be_workable()
        self._trigger(
            CaseEvidenceAttached(
                self.case_id, kind, reference, sha256 or "", description or "", by, now_ns
            )
        )

    def escalate(self, reason: str, by: str, now_ns: int) -> None:
        _actor(by, self.case_id)
        _text(reason, "reason", self.case_id)
        self._must_be_workable()
        if self.status == "escalated":
            raise e.CaseAlreadyEscalated(
                f"case {self.case_id} is already escalated", case_id=self.case_id
            )
        self._trigger(CaseEscalated(self.case_id, reason, by, now_ns))

    def close(self, disposition: str, reason: str, by: str, now_ns: int) -> None:
        _actor(by, self.case_id)
        if disposition not in DISPOSITIONS:
            raise e.InvalidDisposition(
                f"disposition {disposition!r} is not one of {', '.join(DISPOSITIONS)}",
                case_id=self.case_id,
            )
        _text(reason, "reason", self.case_id)
        self._must_be_workable()
        self._trigger(CaseClosed(self.case_id, disposition, reason, by, now_ns))

    def reopen(self, reason: str, by: str, now_ns: int) -> None:
        _actor(by, self.case_id)
        _text(reason, "reason", self.case_id)
        if self.status == "sar_filed":
            raise e.SarAlreadyFiled(
                f"a SAR was filed for case {self.case_id}; it stays closed", case_id=self.case_id
            )
        if self.status != "closed":
            raise e.CaseNotClosed(f"case {self.case_id} is not closed", case_id=self.case_id)
        self._trigger(CaseReopened(self.case_id, reason, by, now_ns))

    def file_sar(
        self,
        filing_reference: str,
        narrative: str,
        by: str,
        now_ns: int,
        details: dict[str, Any] | None = None,
    ) -> None:
        _actor(by, self.case_id)
        _text(filing_reference, "filing_reference", self.case_id)
        _text(narrative, "narrative", self.case_id)
        self._must_be_workable()
        if self.status != "escalated":
            raise e.CaseNotEscalated(
                f"case {self.case_id} must be escalated before a SAR is filed",
                case_id=self.case_id,
            )
        self._trigger(
            SarFiled(self.case_id, filing_reference, narrative, by, now_ns, dict(details or {}))
        )

    def _must_be_workable(self) -> None:
        if self.status == "sar_filed":
            raise e.SarAlreadyFiled(
                f"a SAR was filed for case {self.case_id}", case_id=self.case_id
            )
        if self.status == "closed":
            raise e.CaseClosed(f"case {self.case_id} is closed", case_id=self.case_id)
        invariant(self.status in ("open", "escalated"), f"case in state {self.status}")

    # ------------------------------------------------------------------ apply: assign only

    def apply(self, event: object) -> None:
        who = getattr(event, "by", None) or getattr(event, "opened_by", "")
        at = getattr(event, "at_ns", 0)
        self.trail = (*self.trail, {"event": type(event).__name__, "by": who, "at_ns": at})
        if isinstance(event, CaseOpened):
            self.status = "open"
            self.alert_ids = tuple(event.alert_ids)
            self.title = event.title
            self.opened_by = event.opened_by
            self.opened_at_ns = event.at_ns
        elif isinstance(event, CaseAlertsAdded):
            self.alert_ids = tuple(sorted({*self.alert_ids, *event.alert_ids}))
        elif isinstance(event, CaseAssigned):
            self.assignee = event.assignee
        elif isinstance(event, CaseNoteAdded):
            self.notes = (*self.notes, {"text": event.text, "by": event.by, "at_ns": at})
        elif isinstance(event, CaseEvidenceAttached):
            self.evidence = (
                *self.evidence,
                {
                    "kind": event.kind,
                    "reference": event.reference,
                    "sha256": event.sha256,
                    "description": event.description,
                    "by": event.by,
                    "at_ns": at,
                },
            )
        elif isinstance(event, CaseEscalated):
            self.status = "escalated"
        elif isinstance(event, CaseClosed):
            self.status = "closed"
            self.disposition = event.disposition
        elif isinstance(event, CaseReopened):
            self.status = "open"
            self.disposition = ""
        elif isinstance(event, SarFiled):
            self.status = "sar_filed"
            self.disposition = "sar_filed"
            self.sar = {
                "filing_reference": event.filing_reference,
                "narrative": event.narrative,
                "by": event.by,
                "at_ns": at,
                "details": dict(event.details),
            }
        else:  # pragma: no cover - a programming error
            invariant(False, f"Case cannot apply {type(event).__name__}")
