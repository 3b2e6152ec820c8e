"""``/v1/jobs``: async batch scoring (registered on the ``api`` blueprint)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Response, g, request, stream_with_context
from marshmallow import ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from core.errors import InvalidFile, InvalidJson, InvalidRequest, UnsupportedMediaType
from core.jobs import inputs
from core.jobs import service as jobs
from core.persistence.models import BatchJob, Workspace
from webapp.api.views import AUTH, AUTH_ERRORS, bp
from webapp.extensions import get_db, tonehub
from webapp.metering import admit_units, keep_units, note_released
from webapp.schemas import (
    JobIn,
    JobListOut,
    JobOut,
    JobResultsOut,
    ResultsQuery,
    WorkspaceSettingsIn,
    WorkspaceSettingsOut,
)
from workers.queues import enqueue_batch_job

UPLOAD_OVERHEAD = 1024 * 1024
"""Room for the multipart framing and form fields around a 50 MB file."""

JOB_ERRORS = {
    **AUTH_ERRORS,
    400: "invalid_json, invalid_request, invalid_file, batch_too_large, "
    "unknown_model (a bad text fails alone)",
    413: "payload_too_large",
    415: "unsupported_media_type",
}
ONE_JOB_ERRORS = {**AUTH_ERRORS, 404: "not_found"}


def _json_records() -> tuple[list[inputs.JobInput], dict[str, Any]]:
    try:
        raw = request.get_data(cache=False)
    except UnicodeDecodeError as exc:  # pragma: no cover - werkzeug reads bytes
        raise InvalidJson("The body is not valid UTF-8 JSON.") from exc
    if not raw:
        raise InvalidJson("The body is empty; send a JSON object.")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InvalidJson("The body is not valid UTF-8 JSON.") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("The body must be a JSON object.")
    try:
        body = JobIn().load(data)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {}
        name, problems = next(iter(messages.items()), ("body", exc.messages))
        raise InvalidRequest(f"'{name}': {problems}", field=str(name)) from exc
    return inputs.from_lists(body["texts"], body.get("ids")), body


def _upload_records() -> tuple[list[inputs.JobInput], dict[str, Any]]:
    form = request.form
    upload = request.files.get("file")
    if upload is None:
        raise InvalidFile("Attach the file as the form field 'file'.", field="file")
    upload.stream.seek(0, 2)
    size = upload.stream.tell()
    upload.stream.seek(0)
    if size > inputs.MAX_FILE_BYTES:  # the request limit leaves room for the form
        raise RequestEntityTooLarge(
            f"The file is {size:,} bytes; the limit is {inputs.MAX_FILE_BYTES:,}."
        )
    kind = inputs.detect_format(
        upload.filename or "", upload.mimetype or "", form.get("format")
    )
    reader = inputs.from_jsonl if kind == "jsonl" else inputs.from_csv
    records = reader(
        upload.stream,
        text_field=form.get("text_column") or "text",
        id_field=form.get("id_column") or "id",
    )
    sentences = form.get("sentences", "false").lower()
    if sentences not in ("true", "false"):
        raise InvalidRequest("'sentences' must be true or false.", field="sentences")
    options = {"model": form.get("model") or None, "sentences": sentences == "true"}
    return records, options


@bp.post("/jobs")
@bp.output(JobOut, status_code=202)
@bp.doc(
    summary="Score up to 100,000 texts in the background",
    description="Send JSON (JobIn: texts, optional ids) or multipart/form-data "
    "(JobUploadIn: a JSONL or CSV file of up to 50 MB). The job's cost (its "
    "valid texts) is reserved against the month's quota up front; a job that "
    "does not fit is refused whole with quota_exceeded. Poll status_url, or "
    "subscribe a webhook to job.succeeded / job.failed.",
    security=AUTH,
    responses=JOB_ERRORS,
)
def create_job() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Accept a job: validate every text, reserve its cost, queue it."""
    request.max_content_length = inputs.MAX_FILE_BYTES + UPLOAD_OVERHEAD
    if request.mimetype == "multipart/form-data":
        records, options = _upload_records()
    elif request.is_json:
        records, options = _json_records()
    else:
        raise UnsupportedMediaType(
            "Send JSON ('Content-Type: application/json') or a file as "
            "multipart/form-data."
        )
    ext = tonehub()
    ext.scoring.registry.get(options["model"])  # unknown_model before any cost
    texts, errors = jobs.validate(records, sentences=options["sentences"])
    cost = sum(1 for t in texts if t is not None)
    admit_units(cost)
    now = datetime.now(UTC)
    admission = g.get("admission")
    job = jobs.create_job(
        get_db(),
        g.workspace_id,
        records,
        texts,
        errors,
        api_key_id=g.api_key_id,
        model=options["model"],
        sentences=options["sentences"],
        period=admission.period if admission else now.strftime("%Y-%m"),
        usage_day=admission.now.date() if admission else now.date(),
        now=now,
    )
    keep_units(cost)  # the reservation stays taken; the job meters against it
    enqueue_batch_job(ext.redis, job.id)
    described = jobs.describe_job(job)
    return described, 202, {"Location": described["status_url"]}


@bp.get("/jobs")
@bp.output(JobListOut)
@bp.doc(summary="This workspace's recent jobs", security=AUTH, responses=AUTH_ERRORS)
def list_jobs() -> dict[str, Any]:
    """The 50 newest jobs, newest first."""
    found = jobs.list_jobs(get_db(), g.workspace_id)
    return {"jobs": [jobs.describe_job(j) for j in found]}


@bp.get("/jobs/<job_id>")
@bp.output(JobOut)
@bp.doc(summary="A job's status and progress", security=AUTH, responses=ONE_JOB_ERRORS)
def get_job(job_id: str) -> dict[str, Any]:
    """Status, progress (scored / total), timestamps and error."""
    return jobs.describe_job(jobs.get_job(get_db(), g.workspace_id, job_id))


@bp.delete("/jobs/<job_id>")
@bp.output(JobOut)
@bp.doc(
    summary="Cancel a job",
    security=AUTH,
    responses={**ONE_JOB_ERRORS, 409: "job_finished"},
)
def cancel_job(job_id: str) -> dict[str, Any]:
    """Stop a queued or running job; its unscored texts go back to the quota."""
    ext = tonehub()
    job = jobs.cancel_job(
        ext.sessions,
        g.workspace_id,
        job_id,
        release=_release,
        retention=timedelta(days=ext.settings.job_retention_days),
    )
    return jobs.describe_job(job)


def _release(job: BatchJob) -> None:
    if tonehub().meter.release_once(
        job.workspace_id, job.period, job.released, token=job.id
    ):
        note_released(job.released)


@bp.get("/jobs/<job_id>/results")
@bp.input(ResultsQuery, location="query", arg_name="query")
@bp.output(JobResultsOut)
@bp.doc(
    summary="A job's results, in input order",
    description="A page of results (offset, limit), or with format=jsonl (or "
    "'Accept: application/x-ndjson') every result streamed as JSON Lines. "
    "Results of a running job are there as far as it got.",
    security=AUTH,
    responses={**ONE_JOB_ERRORS, 400: "invalid_request"},
)
def job_results(job_id: str, query: dict[str, Any]) -> Any:
    """Paginated JSON, or the whole result set as a JSONL download."""
    job = jobs.get_job(get_db(), g.workspace_id, job_id)
    wants_lines = query["format"] == "jsonl" or (
        request.accept_mimetypes.best == "application/x-ndjson"
    )
    if query["format"] not in ("json", "jsonl"):
        raise InvalidRequest("'format' must be json or jsonl.", field="format")
    if not wants_lines:
        return jobs.results_page(
            get_db(), job, offset=query["offset"], limit=query["limit"]
        )
    stream = jobs.iter_results(tonehub().sessions, job.id)
    return Response(
        stream_with_context(stream),
        mimetype="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{job.id}.jsonl"'},
    )


@bp.get("/workspace")
@bp.output(WorkspaceSettingsOut)
@bp.doc(summary="Workspace settings", security=AUTH, responses=AUTH_ERRORS)
def workspace_settings() -> dict[str, Any]:
    """Whether batch job inputs are kept after a job finishes."""
    workspace = get_db().get(Workspace, g.workspace_id)
    return {"keep_job_inputs": bool(workspace and workspace.keep_job_inputs)}


@bp.patch("/workspace")
@bp.input(WorkspaceSettingsIn, arg_name="body")
@bp.output(WorkspaceSettingsOut)
@bp.doc(
    summary="Change workspace settings",
    security=AUTH,
    responses={**AUTH_ERRORS, 400: "invalid_request, invalid_json"},
)
def update_workspace_settings(body: dict[str, Any]) -> dict[str, Any]:
    """Opt in (or out) of keeping batch job inputs after the job finishes."""
    db = get_db()
    workspace = db.get(Workspace, g.workspace_id)
    assert workspace is not None
    workspace.keep_job_inputs = body["keep_job_inputs"]
    db.commit()
    return {"keep_job_inputs": workspace.keep_job_inputs}
