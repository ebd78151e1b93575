"""The one orchestrator: files -> parse -> resolve -> validate -> normalise -> lint -> snapshot."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from pydantic import ValidationError

from .. import __version__
from .._gc import gc_paused
from ..diagnostics import Diagnostic, Related, Severity, Span, TuskError
from ..schema.feature_flags import FlagConfig
from ..schema.project import ProjectConfig
from ..snapshot.models import DEFAULT_SCALE, FORMAT
from ..syntax.nodes import Document
from ..syntax.parser import parse
from ..values import DirectiveCall
from .emit import canonical_json, compile_time
from .lint import LintOptions, lint
from .locate import Locator, Path, validation_diagnostics
from .normalise import FlagSource, Normaliser, SegmentSource, analysis_defaults
from .secrets import scrub

# Blocks (and keys) that are validated but that nothing in tusklang acts on yet: said plainly (TSK331).
NOT_ACTED_ON: dict[Path, str] = {
    ("feature_flags", "analytics", "reporting"): "reports are rendered by `tusk dashboard` and "
    "`tusk experiment report` from their own configuration",
    ("feature_analytics_config", "tracking", "performance_impact", "metrics"): "performance metrics are "
    "the application's to record; tusklang tracks evaluations, exposures and conversions",
    ("feature_analytics_config", "tracking", "business_metrics"): "business metrics are recorded by "
    "`Client.track()` events; correlation analysis is not built in",
    ("feature_analytics_config", "reporting", "flag_performance"): "no built-in flag performance report",
    ("feature_analytics_config", "reporting", "user_segment_analysis"): "no built-in segment analysis report",
    ("performance_config",): "the reference evaluator has no result cache or batching settings",
    ("security_config", "access_control"): "access control is the deployment's job; `tusk flags` "
    "records who changed what in its audit stream",
    ("security_config", "data_protection", "encryption"): "encryption at rest is the database's job",
    ("security_config", "compliance"): "compliance flags are not enforced by any tusklang tool",
    ("feature_flags_data", "flag_evaluations"): "runtime data, read by analysis tools, not compiled",
    ("feature_flags_data", "experiment_results"): "runtime data, read by `tusk stats`, not compiled",
    ("feature_flags_data", "performance_impact"): "runtime data, read by analysis tools, not compiled",
}


@dataclass
class CompileResult:
    snapshot: dict[str, Any]
    text: str
    diagnostics: list[Diagnostic]
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _Source:
    path: str
    display: str
    text: str
    document: Document
    data: dict[str, Any] = field(default_factory=dict)
    spans: dict[Path, Span] = field(default_factory=dict)
    key_spans: dict[Path, Span] = field(default_factory=dict)
    queries: list[dict[str, Any]] = field(default_factory=list)
    # data path -> spans of the @env calls its value depends on (tusklang/compiler/secrets.py)
    taint: dict[Path, set[Span]] = field(default_factory=dict)


def _resolve(source: _Source, env: Mapping[str, str] | None, database: Any, static: bool) -> list[Diagnostic]:
    if not static:
        from ..resolver import resolve_document

        resolved = resolve_document(
            source.document,
            env=dict(env) if env is not None else None,
            database=database,
            base_dir=str(FsPath(source.path).parent),
        )
        source.data = resolved.data
        source.spans = dict(resolved.spans)
        source.key_spans = dict(resolved.key_spans)
        source.queries = list(resolved.queries)
        source.taint = resolved.taint
        return list(resolved.diagnostics)
    from ..directives import SECRET_DIRECTIVES
    from ..interpret import Interpreter

    # Static (tusk check): directives stay inert, but where @env flows is known all the same, so
    # the secret rule reports the same findings as `tusk compile`.
    interpreter = Interpreter(source.document, record_spans=True, secret_directives=SECRET_DIRECTIVES)
    source.data = interpreter.run()
    source.spans = interpreter.spans
    source.key_spans = interpreter.key_spans
    source.taint = interpreter.taint
    if any(d.is_error for d in interpreter.diagnostics):
        raise TuskError(interpreter.diagnostics)
    return list(interpreter.diagnostics)


def _strip_inert(data: Any, path: Path, locator: Locator, out: list[Diagnostic]) -> Any:
    """Directives that were not run cannot be validated: drop them, saying so (static checks only)."""
    if isinstance(data, dict):
        result = {}
        for key, value in data.items():
            sub = (*path, key)
            if isinstance(value, DirectiveCall):
                if sub == ("feature_flags", "storage", "connection"):
                    result[key] = value
                    continue
                out.append(
                    Diagnostic(
                        "TSK332",
                        f"@{value.name}(...) at `{'.'.join(map(str, sub))}` was not run; its value is not checked",
                        locator.value(sub),
                        Severity.INFO,
                        "`tusk compile` runs directives and checks the result",
                    )
                )
                continue
            result[key] = _strip_inert(value, sub, locator, out)
        return result
    return data


def _merge(sources: Sequence[_Source]) -> tuple[dict[str, Any], Locator, dict[Path, set[Span]], list[Diagnostic]]:
    data: dict[str, Any] = {}
    spans: dict[Path, Span] = {}
    key_spans: dict[Path, Span] = {}
    taint: dict[Path, set[Span]] = {}
    owner: dict[str, _Source] = {}
    diagnostics: list[Diagnostic] = []
    for source in sources:
        for key, value in source.data.items():
            if key in owner:
                first = owner[key].key_spans.get((key,))
                diagnostics.append(
                    Diagnostic(
                        "TSK318",
                        f"block `{key}` is defined in two files",
                        source.key_spans.get((key,)),
                        hint="keep one definition of each top-level block per project",
                        related=(Related(first, "first defined here"),) if first else (),
                    )
                )
                continue
            owner[key] = source
            data[key] = value
        if all(owner.get(str(key)) is source for key in source.data):
            # The usual case (no block defined twice): take the span tables whole, not entry by entry.
            spans.update(source.spans)
            key_spans.update(source.key_spans)
        else:
            for path, span in source.spans.items():
                if path and owner.get(str(path[0])) is source:
                    spans[path] = span
            for path, span in source.key_spans.items():
                if path and owner.get(str(path[0])) is source:
                    key_spans[path] = span
        for path, origins in source.taint.items():
            if path and owner.get(str(path[0])) is source:
                taint[path] = origins
    spans.pop((), None)  # the whole document is no block's position
    key_spans.pop((), None)
    display = {s.path: s.display for s in sources}
    return data, Locator(spans, key_spans, display), taint, diagnostics


def _validate(data: dict[str, Any], locator: Locator) -> tuple[ProjectConfig | None, list[Diagnostic]]:
    try:
        return ProjectConfig.model_validate(data), []
    except ValidationError as exc:
        return None, validation_diagnostics(exc, data, locator, ProjectConfig)


def _row_flags(
    config: ProjectConfig, data: dict[str, Any], locator: Locator
) -> tuple[list[FlagSource], list[Diagnostic]]:
    rows = config.feature_flags_data.flag_definitions if config.feature_flags_data else None
    flags: list[FlagSource] = []
    diagnostics: list[Diagnostic] = []
    for index, row in enumerate(rows or []):
        path: Path = ("feature_flags_data", "flag_definitions", index)
        raw = {
            "enabled": row.enabled,
            "rollout_strategy": row.rollout_strategy,
            "rollout_percentage": row.rollout_percentage,
            "targeting": row.targeting_rules,
            "fallback": row.fallback_value,
            "metadata": row.metadata,
        }
        rename = {"targeting": "targeting_rules", "fallback": "fallback_value"}
        try:
            config_row = FlagConfig.model_validate(raw)
        except ValidationError as exc:
            diagnostics.extend(validation_diagnostics(exc, raw, locator, FlagConfig, path, rename))
            continue
        flags.append(
            FlagSource(row.flag_name, config_row, path, f"feature_flags_data.flag_definitions[{index}]", rename)
        )
    return flags, diagnostics


def _segment_sources(config: ProjectConfig) -> list[SegmentSource]:
    out: list[SegmentSource] = []
    if config.feature_flags is not None:
        for name, seg in config.feature_flags.targeting.user_segments.items():
            path: Path = ("feature_flags", "targeting", "user_segments", name)
            out.append(SegmentSource(name, seg.criteria, seg.match, seg.description, path, (*path, "criteria")))
    rows = config.feature_flags_data.user_segments if config.feature_flags_data else None
    for index, row in enumerate(rows or []):
        path = ("feature_flags_data", "user_segments", index)
        out.append(SegmentSource(row.segment_name, row.criteria, "all", None, path, (*path, "criteria")))
    return out


def build_snapshot(
    config: ProjectConfig,
    data: dict[str, Any],
    locator: Locator,
    scale: int = DEFAULT_SCALE,
) -> tuple[dict[str, Any], list[Diagnostic]]:
    """Lower a validated project into snapshot data (no provenance).

    ``data`` must already be scrubbed of secrets (secrets.scrub): everything the normaliser copies
    from ``config`` goes into the snapshot as it is.
    """
    norm = Normaliser(locator, scale)
    diagnostics: list[Diagnostic] = []
    ff = config.feature_flags
    segment_sources = _segment_sources(config)
    norm.segment_names = {s.name for s in segment_sources}
    declared_external = set(ff.targeting.external_segments) if ff else set()
    norm.segment_names |= declared_external
    if ff is not None:
        norm.environments = set(ff.targeting.environments)
    segments = norm.segments(segment_sources)

    sources: list[FlagSource] = []
    if ff is not None:
        for name, flag in ff.flags.items():
            path: Path = ("feature_flags", "flags", name)
            origin = locator.origin(path) or "feature_flags.flags." + name
            sources.append(FlagSource(name, flag, path, origin))
    row_sources, row_diagnostics = _row_flags(config, data, locator)
    diagnostics.extend(row_diagnostics)
    sources.extend(row_sources)

    flags: dict[str, Any] = {}
    first: dict[str, FlagSource] = {}
    for source in sources:
        if source.key in first:
            norm._duplicate("flag", source.key, first[source.key].path, source.path)
            continue
        first[source.key] = source
        compiled = norm.flag(source, ff.enabled if ff else True)
        if compiled is not None:
            flags[source.key] = compiled

    experiments: dict[str, Any] = {}
    defaults = analysis_defaults(config)
    if config.ab_testing_config is not None:
        for name, exp in config.ab_testing_config.experiments.items():
            path = ("ab_testing_config", "experiments", name)
            if name in first:
                norm._duplicate("flag or experiment", name, first[name].path, path)
                continue
            experiments[name] = norm.experiment(name, exp, path, defaults)

    for name, where in sorted(norm.external.items()):
        norm.warn(
            "TSK330",
            f"segment `{name}` is not defined here: it is treated as computed by the application",
            where,
            f'the context\'s `segments` list must contain "{name}" to match; define it under '
            "feature_flags.targeting.user_segments, or list it in targeting.external_segments",
        )
    if config.management_config and config.management_config.approval_workflow:
        norm.environment_refs(
            config.management_config.approval_workflow.auto_approval,
            ("management_config", "approval_workflow", "auto_approval"),
        )
    diagnostics.extend(norm.diagnostics)
    snapshot = {
        "format": FORMAT,
        "scale": scale,
        "segments": segments,
        "external_segments": sorted(set(norm.external) | declared_external),
        "flags": flags,
        "experiments": experiments,
    }
    runtime = runtime_settings(config)
    if runtime:
        snapshot["runtime"] = runtime
    return snapshot, diagnostics


def runtime_settings(config: ProjectConfig) -> dict[str, Any]:
    """The settings the tools around evaluation read from the snapshot (docs/snapshot.md, `runtime`).

    Storage keeps its type, key prefix and ttl, never its connection. Tracking: evaluations and
    exposures are on unless `feature_flags.analytics` or `feature_analytics_config.tracking` turns them
    off; the evaluation sampling rate is `feature_analytics_config.tracking.performance_impact.sampling_rate`
    (the only sampling rate the config language has for tracked evaluations).
    """
    out: dict[str, Any] = {}
    ff = config.feature_flags
    if ff is not None and ff.storage is not None:
        out["storage"] = {"type": ff.storage.type, "key_prefix": ff.storage.key_prefix, "ttl": ff.storage.ttl}
    analytics = ff.analytics if ff is not None else None
    fac = config.feature_analytics_config
    tracking = fac.tracking if fac is not None else None
    if analytics is not None or tracking is not None:
        evaluations = exposures = True
        rate = 1.0
        if analytics is not None:
            evaluations = analytics.enabled and analytics.tracking.flag_evaluations
            exposures = analytics.enabled and analytics.tracking.user_exposure
        if tracking is not None:
            if tracking.flag_evaluations is not None:
                evaluations = evaluations and tracking.flag_evaluations.enabled
            if tracking.user_exposure is not None:
                exposures = exposures and tracking.user_exposure.enabled
            if tracking.performance_impact is not None and tracking.performance_impact.enabled:
                rate = float(tracking.performance_impact.sampling_rate)
        out["tracking"] = {"evaluations": evaluations, "exposures": exposures, "sampling_rate": rate}
    security = config.security_config
    if security is not None and security.data_protection is not None:
        protection = security.data_protection
        retention = protection.data_retention
        out["data_protection"] = {
            "pii_masking": protection.pii_masking,
            "retention_seconds": int(retention.total_seconds()) if retention is not None else None,
        }
    return out


def _not_acted_on(data: dict[str, Any], locator: Locator) -> list[Diagnostic]:
    out = []
    for path, reason in NOT_ACTED_ON.items():
        node: Any = data
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            out.append(
                Diagnostic(
                    "TSK331",
                    f"`{'.'.join(map(str, path))}` is validated but not supported downstream: {reason}",
                    locator.key(path),
                    Severity.WARNING,
                    f"silence with --ignore TSK331 once you rely on something else for `{path[-1]}`",
                )
            )
    return out


def _relative(path: str, root: FsPath) -> str:
    try:
        return FsPath(os.path.relpath(FsPath(path).resolve(), root.resolve())).as_posix()
    except ValueError:
        return FsPath(path).as_posix()


def compile_files(
    paths: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    database: Any = None,
    root: str | None = None,
    lint_options: LintOptions | None = None,
    static: bool = False,
    verify: bool = False,
    strict_secrets: bool = False,
) -> CompileResult:
    """Compile a project; raises TuskError (with every diagnostic, warnings included) on any error.

    Values from @env never reach the snapshot verbatim (tusklang/compiler/secrets.py): in metadata
    and descriptions they are left out with a warning (TSK270), or are errors with
    ``strict_secrets`` (TSK271); anywhere else that copies text they are errors (TSK272).

    ``verify`` re-reads the finished snapshot through the evaluator's own loader (``load_snapshot``)
    before it is returned. The normaliser builds snapshots from validated models, so this is a
    belt-and-braces check (``tusk compile --verify``; the test suite runs it on every compile it
    makes) rather than the default: it costs as much as validating the config again.
    """
    with gc_paused():  # see tusklang._gc: validation alone ran 3-4x slower with the collector on
        return _compile_files(paths, env, database, root, lint_options, static, verify, strict_secrets)


def _compile_files(
    paths: Sequence[str],
    env: Mapping[str, str] | None,
    database: Any,
    root: str | None,
    lint_options: LintOptions | None,
    static: bool,
    verify: bool,
    strict_secrets: bool = False,
) -> CompileResult:
    timings = {"parse": 0.0, "resolve": 0.0, "validate": 0.0, "emit": 0.0}
    project_root = FsPath(root) if root else FsPath(paths[0]).resolve().parent
    sources: list[_Source] = []
    diagnostics: list[Diagnostic] = []
    for path in paths:
        text = FsPath(path).read_text(encoding="utf-8-sig")
        started = time.perf_counter()
        document = parse(text, path)
        timings["parse"] += time.perf_counter() - started
        sources.append(_Source(path, _relative(path, project_root), text, document))
    started = time.perf_counter()
    for source in sources:
        diagnostics.extend(_resolve(source, env, database, static))
    timings["resolve"] = time.perf_counter() - started
    return _finish(sources, diagnostics, timings, lint_options, static, verify, strict_secrets)


def _finish(
    sources: list[_Source],
    diagnostics: list[Diagnostic],
    timings: dict[str, float],
    lint_options: LintOptions | None,
    static: bool,
    verify: bool = False,
    strict_secrets: bool = False,
) -> CompileResult:
    started = time.perf_counter()
    data, locator, taint, merge_diagnostics = _merge(sources)
    diagnostics.extend(merge_diagnostics)
    if taint:
        # Before validation and before inert directives are stripped, so `tusk check` (static)
        # and `tusk compile` report the same secrets at the same places.
        data, found = scrub(data, taint, locator, strict_secrets)
        diagnostics.extend(found)
    if static:
        data = _strip_inert(data, (), locator, diagnostics)
    config, problems = _validate(data, locator)
    diagnostics.extend(problems)
    snapshot: dict[str, Any] = {}
    if config is not None:
        snapshot, problems = build_snapshot(config, data, locator)
        diagnostics.extend(problems)
        diagnostics.extend(_not_acted_on(data, locator))
        diagnostics.extend(lint(config, snapshot, locator, lint_options or LintOptions()))
    timings["validate"] = time.perf_counter() - started
    diagnostics = _sorted(diagnostics)
    if any(d.is_error for d in diagnostics):
        raise TuskError(diagnostics)
    started = time.perf_counter()
    snapshot["provenance"] = _provenance(sources)
    if verify:
        from ..snapshot import load_snapshot

        load_snapshot(snapshot)  # the contract: never write what an evaluator would refuse
    text = canonical_json(snapshot)
    timings["emit"] = time.perf_counter() - started
    return CompileResult(snapshot, text, diagnostics, timings)


def _provenance(sources: Sequence[_Source]) -> dict[str, Any]:
    queries = []
    for source in sources:
        for query in source.queries:
            entry = dict(query)
            location = str(entry.get("location", ""))
            if location.startswith(source.path):
                entry["location"] = source.display + location[len(source.path) :]
            queries.append(entry)
    provenance: dict[str, Any] = {
        "compiler": f"tusklang {__version__}",
        "sources": [{"path": s.display, "sha256": hashlib.sha256(s.text.encode("utf-8")).hexdigest()} for s in sources],
        "queries": queries,
    }
    when = compile_time()
    if when is not None:
        provenance["compiled_at"] = when
    return provenance


def _sorted(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    def key(d: Diagnostic) -> tuple[str, int, str]:
        return (d.span.file if d.span else "", d.span.start if d.span else -1, d.code)

    return sorted(diagnostics, key=key)


def check_document(document: Document, lint_options: LintOptions | None = None) -> list[Diagnostic]:
    """Schema and lint diagnostics of one parsed document, statically (no directive is run)."""
    name = document.source.name if hasattr(document, "source") else "<document>"
    source = _Source(name, name, "", document)
    diagnostics = _resolve(source, None, None, static=True)
    try:
        result = _finish([source], diagnostics, {}, lint_options, static=True)
    except TuskError as exc:
        return exc.diagnostics
    return result.diagnostics
