"""Workflows over the client register. Each one writes its change and its audit record in one transaction."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

import django_rq
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from rq import get_current_job
from rq.job import Callback

from clients.csv_io import (
    ClientRow,
    CsvProblem,
    RowError,
    count_rows,
    decode,
    iter_rows,
    validate_row,
)
from clients.models import (
    ABANDONED_AFTER,
    AccountKind,
    AccountRole,
    Client,
    ClientAccount,
    ClientGroup,
    ImportJob,
    ImportRowError,
    ImportStatus,
)
from clients.tfn import format_tfn, tfn_lookup_hash
from portal.audit import audit_record
from portal.capabilities import Capability
from portal.models import Practice, User
from portal.sealing import TFN_KEYS, seal, unseal
from portal.spreadsheet import spreadsheet_cell

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)
IMPORT_CHUNK = 1000


def _client_from_row(practice: Practice, row: ClientRow, created_by: User | None) -> Client:
    client = Client(
        practice=practice,
        kind=row.kind,
        family_name=row.family_name,
        given_names=row.given_names,
        organisation_name=row.organisation_name,
        date_of_birth=row.date_of_birth,
        abn=row.abn,
        wpn=row.wpn,
        created_by=created_by,
    )
    client.set_tfn(row.tfn)
    client.set_names()
    return client


def client_duplicate_message(practice: Practice, row: ClientRow, *, exclude_pk: int | None = None) -> str:
    existing = Client.objects.filter(practice=practice)
    if exclude_pk is not None:
        existing = existing.exclude(pk=exclude_pk)
    if row.tfn and existing.filter(tfn_hash=tfn_lookup_hash(row.tfn)).exists():
        return "A client with this TFN is already in the register."
    if row.abn and existing.filter(abn=row.abn).exists():
        return "A client with this ABN is already in the register."
    return ""


def client_create(*, user: User, row: ClientRow) -> Client:
    with transaction.atomic(durable=True):
        client = _client_from_row(user.tenant, row, user)
        client.save()
        audit_record("client.created", actor=user, target=client)
    return client


def client_update(*, user: User, client: Client, row: ClientRow, tfn_changed: bool) -> Client:
    with transaction.atomic(durable=True):
        client.kind = row.kind
        client.family_name, client.given_names = row.family_name, row.given_names
        client.organisation_name, client.date_of_birth = row.organisation_name, row.date_of_birth
        client.abn, client.wpn = row.abn, row.wpn
        if tfn_changed:
            client.set_tfn(row.tfn)
        client.save()
        audit_record("client.updated", actor=user, target=client, details={"tfn_changed": tfn_changed})
    return client


def client_reveal_tfn(*, user: User, client: Client) -> str:
    """The only path to a full TFN on screen: capability checked, and the reveal audited before it is shown."""
    if not user.has_capability(Capability.VIEW_FULL_TFN):
        audit_record("client.tfn_reveal_refused", actor=user, target=client)
        raise PermissionDenied("You do not have permission to view full TFNs.")
    with transaction.atomic(durable=True):
        audit_record("client.tfn_revealed", actor=user, target=client)
    return format_tfn(client.reveal_tfn())


def account_add(*, user: User, client: Client, kind: str, branch: str, roles: list[str]) -> ClientAccount:
    with transaction.atomic(durable=True):
        account = ClientAccount.objects.create(
            client=client, kind=kind, branch=branch if kind == AccountKind.ACTIVITY_STATEMENT else ""
        )
        AccountRole.objects.bulk_create([AccountRole(account=account, role=r) for r in roles])
        audit_record(
            "client.account_added", actor=user, target=client, details={"account": str(account), "roles": roles}
        )
    return account


def account_set_roles(*, user: User, account: ClientAccount, roles: list[str]) -> None:
    with transaction.atomic(durable=True):
        account.roles.exclude(role__in=roles).delete()
        have = set(account.roles.values_list("role", flat=True))
        AccountRole.objects.bulk_create([AccountRole(account=account, role=r) for r in roles if r not in have])
        audit_record(
            "client.roles_changed",
            actor=user,
            target=account.client,
            details={"account": str(account), "roles": roles},
        )


def group_create(*, user: User, name: str, description: str) -> ClientGroup:
    with transaction.atomic(durable=True):
        group = ClientGroup.objects.create(practice=user.tenant, name=name, description=description)
        audit_record("group.created", actor=user, target=group)
    return group


def group_set_membership(*, user: User, client: Client, groups: list[ClientGroup]) -> None:
    with transaction.atomic(durable=True):
        client.groups.set(groups)
        audit_record("client.groups_changed", actor=user, target=client, details={"groups": [g.name for g in groups]})


def group_set_staff(*, user: User, member: User, restricted: bool, groups: list[ClientGroup]) -> None:
    with transaction.atomic(durable=True):
        member.restricted_to_groups = restricted
        member.save(update_fields=["restricted_to_groups"])
        member.client_groups.set(groups)
        audit_record(
            "staff.groups_changed",
            actor=user,
            target=member,
            details={"restricted": restricted, "groups": [g.name for g in groups]},
        )


# --- CSV import -----------------------------------------------------------------------------------------------


def import_upload(*, user: User, filename: str, raw: bytes) -> ImportJob:
    """Store an upload for preview. Raises CsvProblem, having stored nothing, if the file as a whole is bad."""
    text = decode(raw, max_bytes=settings.CLIENT_IMPORT_MAX_BYTES)
    total = count_rows(text, max_rows=settings.CLIENT_IMPORT_MAX_ROWS)
    if total == 0:
        raise CsvProblem("The file has a header but no client rows.")
    with transaction.atomic(durable=True):
        job = ImportJob.objects.create(
            practice=user.tenant,
            created_by=user,
            filename=filename[:200],
            content=seal(text, keyring=TFN_KEYS),  # the file holds full TFNs
            total_rows=total,
            invalid_rows=_invalid_rows(text),
        )
        audit_record("clients.import_uploaded", actor=user, target=job, details={"rows": total})
    return job


def import_file_text(job: ImportJob) -> str:
    """The uploaded CSV, opened; "" once it has been deleted (the import finished or was abandoned)."""
    return unseal(job.content, keyring=TFN_KEYS) if job.content else ""


class PreviewRow(NamedTuple):
    number: int
    row: ClientRow | None  # None: the row has problems and will not be imported
    errors: list[RowError]
    name: str  # as the file spells it, so that a row with problems can be found in the file


def import_preview(job: ImportJob, limit: int = 10) -> list[PreviewRow]:
    preview: list[PreviewRow] = []
    text = import_file_text(job)
    if not text:
        return preview
    for row_number, row in iter_rows(text):
        client, errors = validate_row(row_number, row)
        name = row.get("organisation_name") or ", ".join(
            part for part in (row.get("family_name", ""), row.get("given_names", "")) if part
        )
        preview.append(PreviewRow(row_number, client, errors, name))
        if len(preview) >= limit:
            break
    return preview


def _invalid_rows(text: str) -> int:
    """How many rows fail their own checks, so that the preview offers to import only the rest (duplicates of the
    register are found only as the import writes)."""
    return sum(1 for row_number, row in iter_rows(text) if validate_row(row_number, row)[0] is None)


def import_start(*, user: User, job: ImportJob) -> None:
    with transaction.atomic(durable=True):
        changed = ImportJob.objects.filter(pk=job.pk, status=ImportStatus.UPLOADED).update(
            status=ImportStatus.QUEUED, heartbeat_at=timezone.now()
        )
        if changed:
            audit_record("clients.import_started", actor=user, target=job)
            import_enqueue(job.pk)


def import_resume(*, user: User, job: ImportJob) -> None:
    """Continue a failed or stalled import from its last committed chunk."""
    if not (job.status == ImportStatus.FAILED or job.is_stalled):
        return
    with transaction.atomic(durable=True):
        changed = ImportJob.objects.filter(pk=job.pk, status=job.status, run_token=job.run_token).update(
            status=ImportStatus.QUEUED, failure="", run_token="", heartbeat_at=timezone.now()
        )
        if changed:
            audit_record("clients.import_resumed", actor=user, target=job, details={"from_row": job.next_row})
            import_enqueue(job.pk)


def import_enqueue(job_id: int) -> None:
    # COMMIT_MODE on_db_commit: django-rq pushes this after the surrounding transaction commits. By dotted path:
    # the jobs call these services, and the services need not import the jobs back.
    django_rq.get_queue("default").enqueue(
        "clients.jobs.run_import", job_id, on_failure=Callback("clients.jobs.run_import_failed"), job_timeout=3600
    )


def import_sweep_stalled() -> int:
    """Every few minutes: resume imports whose worker died or whose queued job was lost (a Redis restart).
    Safe to repeat: a resumed run takes a new lease, so a run that was only slow can no longer write."""
    resumed = 0
    active = ImportJob.objects.filter(status__in=[ImportStatus.QUEUED, ImportStatus.RUNNING])
    for job in active.select_related("practice", "created_by"):
        if not job.is_stalled:
            continue
        with transaction.atomic():
            changed = ImportJob.objects.filter(pk=job.pk, status=job.status, run_token=job.run_token).update(
                status=ImportStatus.QUEUED, run_token="", heartbeat_at=timezone.now()
            )
            if changed:
                audit_record(
                    "clients.import_resumed",
                    practice=job.practice,
                    target=job,
                    details={"from_row": job.next_row, "by": "sweeper"},
                )
                import_enqueue(job.pk)
                resumed += 1
    return resumed


class ImportSuperseded(Exception):
    """Another run has taken over this import (it was resumed while this one was thought dead)."""


def import_run(*, job_id: int) -> None:
    """Import from `next_row`, one chunk per transaction. Each chunk commits its clients, its row errors and the
    advanced `next_row` together, so a worker killed mid-import resumes exactly where the last commit left."""
    token = uuid.uuid4().hex
    now = timezone.now()
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportStatus.QUEUED).update(
        status=ImportStatus.RUNNING, run_token=token, started_at=now, heartbeat_at=now
    )
    if not claimed:
        return
    rq_job = get_current_job()
    if rq_job is not None:  # so that this run's failure callback cannot fail a run that superseded it
        rq_job.meta["run_token"] = token
        rq_job.save_meta()
    job = ImportJob.objects.select_related("practice", "created_by").get(pk=job_id)
    practice = job.practice
    seen_tfn = set(Client.objects.filter(practice=practice).exclude(tfn_hash="").values_list("tfn_hash", flat=True))
    seen_abn = set(Client.objects.filter(practice=practice).exclude(abn="").values_list("abn", flat=True))
    groups = {g.name.lower(): g for g in ClientGroup.objects.filter(practice=practice)}
    chunk: list[tuple[int, dict[str, str]]] = []
    try:
        for item in iter_rows(import_file_text(job), start=job.next_row):
            chunk.append(item)
            if len(chunk) >= IMPORT_CHUNK:
                _import_chunk(job, token, chunk, seen_tfn, seen_abn, groups)
                chunk = []
        if chunk:
            _import_chunk(job, token, chunk, seen_tfn, seen_abn, groups)
        with transaction.atomic():
            _hold_lease(job, token)
            # Its rows are in the register now: the file, full TFNs and all, goes with the same commit.
            ImportJob.objects.filter(pk=job.pk).update(
                status=ImportStatus.DONE, finished_at=timezone.now(), next_row=job.total_rows, content=""
            )
            job.refresh_from_db()
            audit_record(
                "clients.imported",
                practice=practice,
                actor=job.created_by,
                target=job,
                details={"created": job.created_count, "errors": job.error_count},
            )
    except ImportSuperseded:
        log.warning("import %s: superseded by a resumed run; this run stops without writing", job_id)


def _hold_lease(job: ImportJob, token: str) -> None:
    """Lock the job row and check this run still owns it. Called first in every writing transaction, so a
    resumed run's claim waits for an in-flight chunk to commit, and a superseded run writes nothing."""
    if not ImportJob.objects.select_for_update().filter(pk=job.pk, run_token=token).exists():
        raise ImportSuperseded


def _import_chunk(
    job: ImportJob,
    token: str,
    chunk: list[tuple[int, dict[str, str]]],
    seen_tfn: set[str],
    seen_abn: set[str],
    groups: dict[str, ClientGroup],
) -> None:
    accepted: list[tuple[int, Client, str]] = []
    errors: list[RowError] = []
    for row_number, raw in chunk:
        row, row_errors = validate_row(row_number, raw)
        if row is None:
            errors.extend(row_errors)
            continue
        client = _client_from_row(job.practice, row, job.created_by)
        if client.tfn_hash and client.tfn_hash in seen_tfn:
            errors.append(RowError(row_number, "tfn", "Duplicate: a client with this TFN is already in the register."))
            continue
        if client.abn and client.abn in seen_abn:
            errors.append(RowError(row_number, "abn", "Duplicate: a client with this ABN is already in the register."))
            continue
        if client.tfn_hash:
            seen_tfn.add(client.tfn_hash)
        if client.abn:
            seen_abn.add(client.abn)
        accepted.append((row_number, client, row.group))
    # The spreadsheet row number of the last row, minus the header line, is the 0-based index of the next row.
    next_row = chunk[-1][0] - 1
    try:
        with transaction.atomic():
            _hold_lease(job, token)
            Client.objects.bulk_create([client for _, client, _ in accepted])
            _write_chunk_rest(job, accepted, errors, groups, next_row)
    except IntegrityError:
        # Someone added one of these clients since the register was read. Write row by row so that only the
        # clashing rows become errors.
        with transaction.atomic():
            _hold_lease(job, token)
            kept = []
            for row_number, client, group in accepted:
                client.pk = None
                try:
                    with transaction.atomic():
                        client.save()
                    kept.append((row_number, client, group))
                except IntegrityError:
                    errors.append(RowError(row_number, "tfn", "Duplicate: this client is already in the register."))
            _write_chunk_rest(job, kept, errors, groups, next_row)


def _write_chunk_rest(
    job: ImportJob,
    created: list[tuple[int, Client, str]],
    errors: list[RowError],
    groups: dict[str, ClientGroup],
    next_row: int,
) -> None:
    through = ClientGroup.clients.through
    links = []
    for _, client, name in created:
        if name:
            group = groups.get(name.lower())
            if group is None:
                group = ClientGroup.objects.create(practice=job.practice, name=name)
                groups[name.lower()] = group
            links.append(through(client_id=client.pk, clientgroup_id=group.pk))
    through.objects.bulk_create(links)
    ImportRowError.objects.bulk_create(
        [ImportRowError(job=job, row_number=e.row_number, field=e.field, message=e.message) for e in errors]
    )
    ImportJob.objects.filter(pk=job.pk).update(
        next_row=next_row,
        created_count=F("created_count") + len(created),
        # Rows, not errors: one row with three problems is one row not imported.
        error_count=F("error_count") + len({e.row_number for e in errors}),
        heartbeat_at=timezone.now(),
    )


def import_expire_abandoned() -> int:
    """Delete the file of every import abandoned for ABANDONED_AFTER (ImportJob.objects.abandoned()); the job
    stays, as the record of what was uploaded and what came of it. Safe to repeat and to race with a resume: each
    job is changed only while it is still abandoned."""
    expired = 0
    days = ABANDONED_AFTER.days
    for job in ImportJob.objects.abandoned().select_related("practice").only("pk", "practice", "filename"):
        with transaction.atomic():
            changed = (
                ImportJob.objects.abandoned()
                .filter(pk=job.pk)
                .update(
                    status=ImportStatus.EXPIRED,
                    content="",
                    failure=f"The file was deleted after {days} days without being imported or resumed. "
                    "Upload it again to import the rows it still holds; rows imported before are kept.",
                )
            )
            if changed:
                audit_record("clients.import_expired", practice=job.practice, target=job, details={"days": days})
                expired += 1
    return expired


def import_mark_failed(job_id: int, message: str, *, run_token: str | None = None) -> None:
    rows = ImportJob.objects.filter(pk=job_id).exclude(status=ImportStatus.DONE)
    if run_token is not None:
        rows = rows.filter(run_token=run_token)
    rows.update(status=ImportStatus.FAILED, failure=message[:2000])


# --- CSV export -----------------------------------------------------------------------------------------------


def export_rows(*, user: User) -> Iterator[list[object]]:
    from clients.csv_io import EXPORT_COLUMNS

    with transaction.atomic():
        audit_record("clients.exported", actor=user)
    yield list(EXPORT_COLUMNS)
    clients = Client.objects.visible_to(user).order_by("sort_name", "pk").prefetch_related("groups")
    for c in clients.iterator(chunk_size=2000):
        # Names and group names are typed by people or imported: never let one become a spreadsheet formula.
        yield [
            c.kind,
            spreadsheet_cell(c.family_name),
            spreadsheet_cell(c.given_names),
            spreadsheet_cell(c.organisation_name),
            c.date_of_birth or "",
            c.masked_tfn,
            c.abn,
            c.wpn,
            spreadsheet_cell(";".join(g.name for g in c.groups.all())),
        ]
