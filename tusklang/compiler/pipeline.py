"""The one orchestrator: project (tusklang.project.load_project) -> validate -> normalise -> lint -> snapshot.

Reading the files, running directives and the source map are the project loader's; this module is what
the compiler makes of a loaded project: ``analyse`` (shared with `tusk check`, tusklang/compiler/check.py)
and the snapshot with its provenance.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from .._gc import gc_paused
from .._version import __version__
from ..diagnostics import Diagnostic, Severity, Span, TuskError
from ..project import FileData, Merged, Project, Settings, load_project
from ..project.loader import policy_defined_twice
from ..schema.feature_flags import FlagConfig
from ..schema.project import ProjectConfig
from ..snapshot.format import DEFAULT_SCALE, FORMAT
from ..syntax.nodes import Document
from . import requires
from .access import access_settings
from .binding import binding_diagnostics
from .emit import canonical_pieces
from .lint import LintOptions, lint
from .locate import Locator, Path, validation_diagnostics
from .normalise import FlagSource, Normaliser, SegmentSource, analysis_defaults
from .secrets import scrub
from .unknown import needs_execution, strip_runtime, strip_unknown

# Blocks (and keys) that are validated but that nothing in tusklang acts on yet: said plainly (TSK331).
NOT_ACTED_ON: dict[Path, str] = {
    # Every other block of the seed is read by a tool (docs/config.md, "What each block does"): reports by
    # `tusk dashboard`, `tusk report flags`, `tusk experiment report [--by]`; compliance by the event store
    # (`tusk db erase/export`, consent); feature_flags_data's runtime rows are data for the application
    # (`tusklang.load`), not settings.
    ("feature_analytics_config", "tracking", "performance_impact", "metrics"): "performance metrics are "
    "the application's to record (as `Client.track()` events); tusklang tracks evaluations, exposures and "
    "conversions",
    ("feature_analytics_config", "tracking", "business_metrics"): "business metrics are recorded by "
    "`Client.track()` events; correlation analysis is not built in",
    ("performance_config",): "the reference evaluator has no result cache or batching to configure "
    "(an evaluation takes about a microsecond)",
    ("security_config", "data_protection", "encryption"): "encryption at rest is the database's job",
}


@dataclass
class CompileResult:
    snapshot: dict[str, Any]
    # the snapshot's canonical JSON in pieces (``text`` joins them): `tusk compile` writes them one by
    # one, since the joined text was a copy of the file at the process's peak memory
    pieces: list[str]
    diagnostics: list[Diagnostic]
    # CPU seconds of each stage (load, validate, emit): on a shared machine wall time measures the neighbours
    timings: dict[str, float] = field(default_factory=dict)

    @functools.cached_property
    def text(self) -> str:
        """The snapshot's canonical JSON (tusklang.compiler.emit)."""
        return "".join(self.pieces)


@dataclass
class Analysis:
    """What the compiler makes of a loaded project: the snapshot (without provenance) and its findings."""

    config: ProjectConfig | None
    snapshot: dict[str, Any]
    # merge, secrets, schema, normaliser and lint findings, sorted by place; included files' with
    # their include chain
    diagnostics: list[Diagnostic]
    # statically: the values only a compile knows (tusklang/compiler/unknown.py), path -> span
    unknown: dict[Path, Span | None] = field(default_factory=dict)
    # statically: the findings left out of ``diagnostics`` because they are about such values
    withheld: list[Diagnostic] = field(default_factory=list)


def _validate(data: dict[str, Any], locator: Locator) -> tuple[ProjectConfig | None, list[Diagnostic]]:
    try:
        return ProjectConfig.model_validate(data), []
    except ValidationError as exc:
        return None, validation_diagnostics(exc, data, locator, ProjectConfig)


def _row_flags(config: ProjectConfig, locator: Locator) -> tuple[list[FlagSource], list[Diagnostic]]:
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
        if row.value is not None:
            raw["value"] = row.value
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

    ``config`` must be validated from data already scrubbed of secrets (secrets.scrub): everything the
    normaliser copies from it goes into the snapshot as it is. ``data`` itself is not read.
    """
    return _lower(config, locator, scale)


def _lower(
    config: ProjectConfig, locator: Locator, scale: int = DEFAULT_SCALE
) -> tuple[dict[str, Any], list[Diagnostic]]:
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
    row_sources, row_diagnostics = _row_flags(config, locator)
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
    requires.link(norm, first, flags, experiments, set(first) | set(experiments))

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
    access = access_settings(config, first, flags, experiments, norm)
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
    if access is not None:
        runtime["access"] = access
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
    compliance = security.compliance if security is not None else None
    if compliance is not None and compliance.consent_tracking:
        # Read by the tracker (tusklang/events/consent.py): record only contexts whose attribute allows it.
        out.setdefault("data_protection", {"pii_masking": False, "retention_seconds": None})
        out["data_protection"]["consent_attribute"] = compliance.consent_attribute
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
    settings: Settings | None = None,
    overlays: Mapping[str, str] | None = None,
) -> CompileResult:
    """Compile a project; raises TuskError (with every diagnostic, warnings included) on any error.

    ``settings`` (tusklang.project.Settings) says where `@env`, `@query`, the clock and the limits come
    from; without it one is built from the process environment and ``database``, ``root`` and
    ``strict_secrets``, and ``env`` (when given) replaces the variables `@env` reads.

    Values from @env never reach the snapshot verbatim (tusklang/compiler/secrets.py): in metadata
    and descriptions they are left out with a warning (TSK270), or are errors with
    ``strict_secrets`` (TSK271); anywhere else that copies text they are errors (TSK272).

    ``static`` runs only what `tusk check` runs (unknown values are left out, TSK332).

    ``verify`` re-reads the finished snapshot through the evaluator's own loader (``load_snapshot``)
    before it is returned. The normaliser builds snapshots from validated models, so this is a
    belt-and-braces check (``tusk compile --verify``; the test suite runs it on every compile it
    makes) rather than the default: it costs as much as validating the config again.
    """
    if settings is None:
        settings = Settings.from_environment(database=database, root=root, strict_secrets=strict_secrets)
        if env is not None:
            settings = replace(settings, env=dict(env))
    with gc_paused():  # see tusklang._gc: validation alone ran 3-4x slower with the collector on
        return _compile(paths, settings, not static, overlays, lint_options, verify)


def _compile(
    paths: Sequence[str],
    settings: Settings,
    execute: bool,
    overlays: Mapping[str, str] | None,
    lint_options: LintOptions | None,
    verify: bool,
) -> CompileResult:
    # The project is this function's alone, so each stage's input is let go once the next has consumed
    # it (the AST after interpretation, the files' data and span tables after the merge, the models and
    # the source map before the snapshot is written): the peak is one stage's data, not every stage's
    # at once. Freed before the collector is switched back on, too: alive then, the project made one
    # full collection cost 0.4 s on 5,000 flags.
    started = time.process_time()
    project = load_project(paths, settings, execute=execute, overlays=overlays)
    loaded = time.process_time() - started
    if project.has_errors:
        raise TuskError(project.diagnostics)
    started = time.process_time()
    provenance = _provenance(project)  # reads which files hold flags: before their data is let go
    merged = project.merge()
    project = _lean(project)
    analysis = _analyse(project, merged, lint_options)
    del merged
    diagnostics = _sorted([*project.diagnostics, *analysis.diagnostics])
    validated = time.process_time() - started
    _refuse_unless_compiled(diagnostics, analysis)
    snapshot = analysis.snapshot
    del analysis  # the validated models
    result = _emit(snapshot, provenance, diagnostics, verify)
    result.timings = {"load": loaded, "validate": validated, **result.timings}
    return result


def _refuse_unless_compiled(diagnostics: list[Diagnostic], analysis: Analysis) -> None:
    """TuskError when the analysis made no snapshot: an error, or (statically) a config that validates
    only with values left unknown (then with the findings about them)."""
    if any(d.is_error for d in diagnostics):
        raise TuskError(diagnostics)
    if analysis.config is None:
        raise TuskError(_sorted([*diagnostics, *analysis.withheld]))


def _lean(project: Project) -> Project:
    """``project`` as the analysis of its merged data still needs it: no AST, no per-file data or spans.

    The merge holds the data and its own source map; what is left is the settings, the files' names
    and texts, the include chains and the loader's diagnostics.
    """
    files = [replace(f, document=None) for f in project.files]
    return replace(project, files=files, sources=[])


def compile_project(project: Project, lint_options: LintOptions | None = None, verify: bool = False) -> CompileResult:
    """The snapshot of a loaded project; TuskError with every diagnostic when there is any error."""
    if project.has_errors:
        raise TuskError(project.diagnostics)
    started = time.process_time()
    analysis = analyse(project, lint_options=lint_options)
    validated = time.process_time() - started
    diagnostics = _sorted([*project.diagnostics, *analysis.diagnostics])
    _refuse_unless_compiled(diagnostics, analysis)
    result = _emit(analysis.snapshot, _provenance(project), diagnostics, verify)
    result.timings = {"validate": validated, **result.timings}
    return result


def _emit(
    snapshot: dict[str, Any], provenance: dict[str, Any], diagnostics: list[Diagnostic], verify: bool
) -> CompileResult:
    started = time.process_time()
    snapshot["provenance"] = provenance
    if verify:
        from ..snapshot import load_snapshot

        load_snapshot(snapshot)  # the contract: never write what an evaluator would refuse
    pieces = canonical_pieces(snapshot)
    return CompileResult(snapshot, pieces, diagnostics, {"emit": time.process_time() - started})


def analyse(
    project: Project, sources: Sequence[FileData] | None = None, lint_options: LintOptions | None = None
) -> Analysis:
    """Merge, keep secrets out, validate, lower and lint ``sources`` (default: every file asked for)."""
    return _analyse(project, project.merge(sources), lint_options)


def _analyse(project: Project, merged: Merged, lint_options: LintOptions | None) -> Analysis:
    diagnostics = list(merged.diagnostics)
    data, locator = merged.data, merged.locator
    twice = policy_defined_twice(data, locator)
    if twice is not None:
        diagnostics.append(twice)
    if merged.taint:
        # Before validation and before unknown values are left out, so `tusk check` (static) and
        # `tusk compile` report the same secrets at the same places.
        data, found = scrub(data, merged.taint, locator, project.settings.strict_secrets)
        diagnostics.extend(found)
    # Runtime-only values (TSK229), in check and compile alike; then, statically, the unknown ones.
    data, unknown = strip_runtime(data, locator, diagnostics)
    if not project.execute:
        data, more = strip_unknown(data, locator, diagnostics)
        unknown.update(more)
    findings: list[Diagnostic] = []
    config, problems = _validate(data, locator)
    findings.extend(problems)
    snapshot: dict[str, Any] = {}
    if config is not None:
        not_acted_on = _not_acted_on(data, locator)
        # What the snapshot needs of the data is in the models now: its containers go before it is built.
        del data
        merged.data = {}
        snapshot, problems = _lower(config, locator)
        findings.extend(problems)
        findings.extend(not_acted_on)
        options = lint_options or LintOptions()
        if options.now is None:  # the run's one clock (Settings.now: SOURCE_DATE_EPOCH), else the wall clock
            options = replace(options, now=project.settings.clock())
        findings.extend(lint(config, snapshot, locator, options))
        findings.extend(binding_diagnostics(config, snapshot, locator, complete=project.execute or not unknown))
    withheld: list[Diagnostic] = []
    if unknown:
        kept: list[Diagnostic] = []
        for d in findings:
            (withheld if needs_execution(d, unknown) else kept).append(d)
        findings = kept
    diagnostics.extend(findings)
    return Analysis(
        config,
        snapshot,
        project.with_include_chain(_sorted(diagnostics)),
        unknown,
        project.with_include_chain(withheld),
    )


def _provenance(project: Project) -> dict[str, Any]:
    display = {f.path: f.display for f in project.files}  # included files too: a @query may be in one
    # a plain configuration file found beside the flags in a directory is not part of the snapshot
    flag_files = {source.file.path for source in project.flag_sources}
    aside = {source.file.path for source in project.sources if source.file.path not in flag_files}
    queries = []
    for source in project.sources:
        for query in source.queries:
            entry = dict(query)
            name, sep, place = str(entry.get("location", "")).rpartition(":")
            name, sep2, line = name.rpartition(":")
            if sep and sep2 and name in display:  # "file:line:column", the file relative to the root
                entry["location"] = f"{display[name]}:{line}:{place}"
            queries.append(entry)
    provenance: dict[str, Any] = {
        "compiler": f"tusklang {__version__}",
        # every file read, the included ones too (after the ones given): a change in any changes the snapshot
        "sources": [{"path": f.display, "sha256": f.sha256} for f in project.files if f.path not in aside],
        "queries": queries,
    }
    if project.settings.now is not None:  # only a fixed clock (SOURCE_DATE_EPOCH): reproducible builds
        provenance["compiled_at"] = project.settings.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
    return provenance


def _sorted(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    def key(d: Diagnostic) -> tuple[str, int, str]:
        return (d.span.file if d.span else "", d.span.start if d.span else -1, d.code)

    return sorted(diagnostics, key=key)


def check_document(document: Document, lint_options: LintOptions | None = None) -> list[Diagnostic]:
    """Schema and lint diagnostics of one parsed document, statically (as `tusk check`; nothing is run)."""
    from .check import check_project

    name = document.source.name
    return check_project([name], Settings(), overlays={name: document.source.text}, lint_options=lint_options)
