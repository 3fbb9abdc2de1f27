"""The ``policy-engine`` command: a thin shell that parses, calls the library, renders.

Exit codes (stable; CI pipelines and calling systems rely on them):

====  =========================================================
0     success
1     policy tests failed
2     usage error: bad option, unknown policy id or version, missing file
3     invalid client data: every problem listed, no decision produced
4     invalid policy (or policy test file)
5     internal error: a bug in the engine; please report it
6     the decision store cannot be used, or ``audit verify`` found the chain broken,
      or ``audit replay`` found a difference
====  =========================================================

Machine output goes to stdout, human messages to stderr. Heavy modules are
imported inside the commands that need them so ``--help`` stays fast.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

EXIT_OK, EXIT_TESTS_FAILED, EXIT_USAGE, EXIT_INPUT, EXIT_POLICY, EXIT_INTERNAL, EXIT_AUDIT = 0, 1, 2, 3, 4, 5, 6
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_READER_GONE = 141  # 128 + SIGPIPE: the reader of stdout went away, as a shell reports `yes | head`

F = TypeVar("F", bound=Callable[..., Any])


def _json_notes(fmt: str | None) -> bool:
    """Whether stderr's warnings and report lines are JSON: when --format json is asked on the command line or
    the configuration sets json, not merely because stdout is piped (a person reads stderr then)."""
    if fmt != "json":
        return False
    ctx = click.get_current_context(silent=True)
    if ctx is not None and asked_json(ctx):
        return True
    try:
        return _configured_format() == "json"
    except Exception:  # the configuration's own problem was said when it loaded
        return False


def _note(fmt: str, where: str, code: str, message: str, hint: str | None = None) -> None:
    """A warning beside a command's result: a text line on stderr, or with --format json an entry of the one
    JSON document stderr gets (``{"ok": true, "warnings": [...]}``, or among the errors of a failure), so a
    caller that parses stderr as JSON never meets a text line."""
    if not _json_notes(fmt):
        from .safetext import printable

        click.echo(printable(f"{where}: warning: {message}") + (f"\n    hint: {printable(hint)}" if hint else ""),
                   err=True)
        return
    from .diagnostics import Diagnostic

    ctx = click.get_current_context().find_root()
    ctx.obj.setdefault("notes", []).append(Diagnostic(code, message, file=where, severity="warning", hint=hint))


def _say(fmt: str, code: str, message: str) -> None:
    """A line a report's reader should see beside it (a failed gate, rows rejected, the coverage): as it is on
    stderr, or with --format json an entry of the one JSON document there, its message the same words."""
    if not _json_notes(fmt):
        click.echo(message, err=True)
        return
    from .diagnostics import Diagnostic

    click.get_current_context().find_root().obj.setdefault("notes", []).append(
        Diagnostic(code, message, severity="warning"))


def _taken_notes() -> list[Any]:
    ctx = click.get_current_context(silent=True)
    return ctx.find_root().obj.pop("notes", []) if ctx is not None and ctx.find_root().obj else []


def _finish(fmt: str, failures: Sequence[Any]) -> None:
    """The end of a report's stderr with --format json: the failures that set a failing exit code (a gate held,
    coverage short, a replay that differs) as errors (``ok: false``), the warnings after them; else the
    warnings alone. In text the failures are lines, as they were."""
    if not _json_notes(fmt):
        for d in failures:
            click.echo(d.message, err=True)
        return
    if failures:
        _emit_diagnostics(failures, "json")
    else:
        _emit_notes()


def _emit_notes() -> None:
    """The warnings :func:`_note` kept under --format json, as one JSON document on stderr."""
    notes = _taken_notes()
    if notes:
        import json

        click.echo(json.dumps({"ok": True, "warnings": [d.to_dict() for d in notes]}, ensure_ascii=False, indent=2),
                   err=True)


def _emit_diagnostics(diags: Sequence[Any], fmt: str, max_errors: int | None = None) -> None:
    diags = [*diags, *_taken_notes()]  # the warnings given before the failure, after its errors
    shown = list(diags)[: max_errors or None]
    if fmt == "json":
        import json

        click.echo(json.dumps({"ok": False, "errors": [d.to_dict() for d in shown]}, ensure_ascii=False, indent=2),
                   err=True)
        return
    from .safetext import printable

    for d in shown:  # messages quote client values: shown escaped, never acting on the terminal
        click.echo(printable(d.render(), keep_newlines=True), err=True)
    hidden = len(diags) - len(shown)
    if hidden > 0:
        click.echo(f"... and {hidden} more (raise --max-errors)", err=True)


def handle_errors(fn: F) -> F:
    """Turn engine errors into their exit codes; never show a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .diagnostics import Diagnostic, PolicyEngineError

        try:
            return fn(*args, **kwargs)
        except PolicyEngineError as e:
            _emit_diagnostics(e.diagnostics, _error_format(kwargs))
            sys.exit(e.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort, SystemExit):
            raise
        except KeyboardInterrupt:  # Ctrl-C or SIGINT: click said "Aborted!" and exit 1, the code of failed tests
            _emit_diagnostics([Diagnostic("interrupted", "interrupted (SIGINT) before the end: the output may be "
                                          "incomplete", hint="run it again")], _error_format(kwargs))
            sys.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:
            # The reader went away (`| head`, a consumer that died): nothing more is said, as a shell's own tools say
            # nothing, but the output is incomplete, so not 0: `set -o pipefail` or a supervisor sees it (a stream
            # whose reader left after one answer had exited 0 with 1,998 lines undecided).
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(EXIT_READER_GONE)
        except RecursionError:
            _emit_diagnostics([Diagnostic("too-deep", "input nests too deeply")], _error_format(kwargs))
            sys.exit(EXIT_INPUT)
        except OSError as e:  # a path that cannot be read or written: the caller's to fix, not a bug
            where = e.filename or "a file"
            _emit_diagnostics([Diagnostic("unusable-file", f"cannot use {where}: {e.strerror or e}",
                                          file=str(e.filename) if e.filename else None)], _error_format(kwargs))
            sys.exit(EXIT_USAGE)
        except Exception as e:  # a bug: say so plainly, with enough to report it
            store = sys.modules.get("sqlite3")  # loaded if the store raised: not imported here for that
            # a store another program changed, a full disk, a corrupt file (a misuse of the connection is a bug)
            if store is not None and isinstance(e, store.DatabaseError) and not isinstance(
                    e, store.ProgrammingError | store.InternalError | store.NotSupportedError):
                _emit_diagnostics([Diagnostic("store-failed", f"the decision store failed: {type(e).__name__}: {e}",
                                              hint="run `audit verify`; a store changed by another program (a "
                                              "trigger, a constraint) or a full disk refuses a write")],
                                  _error_format(kwargs))
                sys.exit(EXIT_AUDIT)
            _emit_diagnostics([Diagnostic("internal-error", f"{type(e).__name__}: {e}", hint="this is a bug in "
                                          "policy_engine; please report it with the command you ran")],
                              _error_format(kwargs))
            sys.exit(EXIT_INTERNAL)

    return wrapper  # type: ignore[return-value]


def _error_format(kwargs: dict[str, Any]) -> str:
    """How a failing command words its errors: as its --format asks, else as the configuration file sets the
    command's format (a project that set format = "json" parses stderr too), else as text for people."""
    if kwargs.get("fmt"):
        return str(kwargs["fmt"])
    try:
        return "json" if _configured_format() == "json" else "text"
    except Exception:  # the configuration's own problem was said when it loaded
        return "text"


def _default_format() -> str:
    """--format when not given: the project configuration's for this command, else text on a terminal, json."""
    return _configured_format() or ("text" if sys.stdout.isatty() else "json")


def _configured_format() -> str | None:
    """The format the configuration file sets for the running command (when the command offers it)."""
    ctx = click.get_current_context(silent=True)
    config = (ctx.find_root().obj or {}).get("config") if ctx is not None else None
    if ctx is None or config is None or config.file is None:
        return None
    from .config import check_format

    fmt = next((p for p in ctx.command.params if p.name == "fmt"), None)
    choices = tuple(getattr(fmt.type, "choices", ())) if fmt is not None else ()
    command = " ".join(ctx.command_path.split()[1:])
    return check_format(config, command, choices)


def _command_names(group: click.Group, prefix: str = "") -> list[str]:
    """Every command as the configuration's [formats] names it: 'diff', 'audit list'."""
    names = []
    for name, command in group.commands.items():
        names.append(prefix + name)
        if isinstance(command, click.Group):
            names += _command_names(command, f"{prefix}{name} ")
    return names


_ENVIRONMENT = (("policies_dir", "POLICY_ENGINE_POLICIES"), ("audit_db", "POLICY_ENGINE_AUDIT_DB"),
                ("config_file", "POLICY_ENGINE_CONFIG"))


def _blank_environment(ctx: click.Context) -> list[Any]:
    """A setting's variable set but blank (an unset CI secret exports ''): '  ' made a store file named two spaces,
    '' fell back to ./audit.db without a word, so decisions were recorded where no one looks. The command line's
    option, when given, wins and the variable is not read."""
    import os

    from .diagnostics import Diagnostic

    return [Diagnostic("blank-setting", f"${var} is set but blank", hint=f"unset {var} (the configuration file or the "
                       "default then applies) or give it a path")
            for name, var in _ENVIRONMENT if var in os.environ and not os.environ[var].strip()
            and ctx.get_parameter_source(name) != click.core.ParameterSource.COMMANDLINE]


def _offered_formats(group: click.Group, prefix: str = "") -> dict[str, tuple[str, ...]]:
    """Each command's --format choices, by the name the configuration's [formats] gives it ('audit list')."""
    found: dict[str, tuple[str, ...]] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.update(_offered_formats(command, f"{prefix}{name} "))
            continue
        fmt = next((p for p in command.params if p.name == "fmt"), None)
        found[prefix + name] = tuple(getattr(fmt.type, "choices", ())) if fmt is not None else ()
    return found


def _format_names(group: click.Group) -> tuple[str, ...]:
    """Every format some command offers (--format's choices): what the configuration's ``format`` may say."""
    return tuple(dict.fromkeys(f for formats in _offered_formats(group).values() for f in formats))


class _Main(click.Group):
    """The command group: a usage error click finds itself (a bad option value, an unknown option) goes to
    stderr as JSON when the command line asks for ``--format json``, as every other error does."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["argv"] = list(args)
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as e:  # an option of its own unknown (policy-engine --bogus validate)
            self._usage(ctx, e)
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as caught:
            self._usage(ctx, _misplaced_global_option(caught))
            raise _misplaced_global_option(caught) from None

    def resolve_command(self, ctx: click.Context, args: list[str]
                        ) -> tuple[str | None, click.Command | None, list[str]]:
        # A linter's name (the docs speak of static analysis) got click's "Did you mean 'init'?".
        if args and args[0] in _VALIDATE_ALIASES and self.get_command(ctx, args[0]) is None:
            raise click.UsageError(f"No such command '{args[0]}': the static analysis runs in validate, as warnings "
                                   "with their line (policy-engine validate [PATH])", ctx)
        return super().resolve_command(ctx, args)

    @staticmethod
    def _usage(ctx: click.Context, e: click.UsageError) -> None:
        """With --format json on the command line (or format = "json" configured), the usage error as JSON on
        stderr (exit 2)."""
        if not asked_json(ctx) and not _configured_json(ctx, e):
            return
        from .diagnostics import Diagnostic

        where = e.ctx.command_path if e.ctx is not None else "policy-engine"
        _emit_diagnostics([Diagnostic("usage", e.format_message(), hint=f"{where} --help")], "json")
        ctx.exit(EXIT_USAGE)


def _configured_json(ctx: click.Context, e: click.UsageError) -> bool:
    """Whether the configuration sets json for the command a usage error is of (or for every command): a pipeline
    that sets it once reads stderr as JSON, also when its command line is wrong. The file is read here when the
    error came before the group ran (an option of its own unknown); a file that cannot be read says nothing."""
    config = (ctx.find_root().obj or {}).get("config")
    if config is None:
        from .config import load

        try:
            config = load(None)
        except Exception:
            return False
    command = " ".join(e.ctx.command_path.split()[1:]) if e.ctx is not None else ""
    return config.format_for(command)[0] == "json"


def asked_json(ctx: click.Context) -> bool:
    """Whether the command line asks for --format json (read before its options are parsed)."""
    return _asked_format(ctx) == "json"


def _asked_format(ctx: click.Context) -> str | None:
    """The --format the command line gives, if any (read before its options are parsed): the last one, as click
    takes it (``--format text --format json`` is json)."""
    argv = ctx.find_root().meta.get("argv", [])
    given = None
    for a, b in zip(argv, [*argv[1:], ""], strict=True):
        if a.startswith("--format="):
            given = a.partition("=")[2]
        elif a == "--format":
            given = b
    return given


def _file_error_format(ctx: click.Context, config_file: Path | None, configured: bool | None = None) -> str:
    """How the configuration's own problems are said: as the command line's --format asks, else as the file sets
    (read leniently when it cannot be loaded), else as text: the command-line option first, as for every setting."""
    from .config import asks_json

    given = _asked_format(ctx)
    if given is not None:
        return "json" if given == "json" else "text"
    return "json" if (asks_json(config_file) if configured is None else configured) else "text"


_GLOBAL_OPTIONS = ("--policies", "--audit-db", "--config")
_VALIDATE_ALIASES = ("lint", "check", "analyse", "analyze")


def _misplaced_global_option(e: click.UsageError) -> click.UsageError:
    """An option of policy-engine itself given after the command: click says the command has no such option
    and suggests one of its own (--policy for --policies); say where it goes instead."""
    if not isinstance(e, click.NoSuchOption) or e.option_name not in _GLOBAL_OPTIONS or e.ctx is None:
        return e
    command = e.ctx.command_path.split(" ", 1)[1] if " " in e.ctx.command_path else "COMMAND"
    return click.UsageError(f"{e.option_name} is an option of policy-engine itself: give it before the command, "
                            f"policy-engine {e.option_name} VALUE {command} ...", e.ctx)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="policy-engine", prog_name="policy-engine")
@click.option("--policies", "policies_dir", envvar="POLICY_ENGINE_POLICIES", default="policies",
              show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Policy registry directory (env POLICY_ENGINE_POLICIES, then the configuration file).")
@click.option("--audit-db", "audit_db", envvar="POLICY_ENGINE_AUDIT_DB", default="audit.db", show_default=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Decision store (SQLite) that decide and batch record into (env POLICY_ENGINE_AUDIT_DB, then "
                   "the configuration file).")
@click.option("--no-audit", "no_audit", is_flag=True,
              help="Record nothing in the decision store (also accepted after decide and batch).")
@click.option("--config", "config_file", envvar="POLICY_ENGINE_CONFIG", default=None,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Project configuration (default: policy-engine.toml or [tool.policy-engine] in pyproject.toml, "
                   "here or in a parent folder; env POLICY_ENGINE_CONFIG).")
@click.pass_context
def main(ctx: click.Context, policies_dir: Path, audit_db: Path, no_audit: bool, config_file: Path | None) -> None:
    """Rules-as-configuration policy engine for loss-making corporate clients.

    Exit codes: 0 ok, 1 policy tests failed or a --fail-if gate held, 2 usage error, 3 invalid
    client data, 4 invalid policy, 5 internal error, 6 decision store unusable / chain broken /
    replay differs.

    Settings come from, highest first: the command-line option, the environment variable, the
    configuration file, the built-in default.
    """
    from .config import check_commands, load
    from .diagnostics import Diagnostic, PolicyEngineError

    if sys.stdout is None:  # started with stdout closed (>&-): a report would be lost without a word
        _emit_diagnostics([Diagnostic("stdout-closed", "standard output is closed: nothing this command writes could "
                                      "be read", hint="give the command an open stdout (> FILE, or | a reader)")],
                          "json" if asked_json(ctx) else "text")
        sys.exit(EXIT_USAGE)
    blank = _blank_environment(ctx)
    if blank:  # before the file: a blank $POLICY_ENGINE_CONFIG would otherwise send the search elsewhere
        _emit_diagnostics(blank, _file_error_format(ctx, config_file))
        sys.exit(EXIT_USAGE)
    try:
        config = load(config_file)
    except PolicyEngineError as e:  # the file's own problem, said as JSON when the file asks for it nonetheless
        _emit_diagnostics(e.diagnostics, _file_error_format(ctx, config_file))
        sys.exit(EXIT_USAGE)
    try:
        check_commands(config, _command_names(main), _format_names(main), _offered_formats(main))
    except PolicyEngineError as e:  # the file read: its own format = "json" is asked for as the command line's is
        _emit_diagnostics(e.diagnostics, _file_error_format(ctx, config_file, config.format == "json"))
        sys.exit(EXIT_USAGE)
    sources = {}
    for name, env, configured in (("policies_dir", "POLICY_ENGINE_POLICIES", config.policies),
                                  ("audit_db", "POLICY_ENGINE_AUDIT_DB", config.audit_db)):
        source = ctx.get_parameter_source(name)
        if source == click.core.ParameterSource.COMMANDLINE:
            sources[name] = "command line"
        elif source == click.core.ParameterSource.ENVIRONMENT:
            sources[name] = f"${env}"
        elif configured is not None:
            sources[name] = str(config.file)
            if name == "policies_dir":
                policies_dir = configured
            else:
                audit_db = configured
        else:
            sources[name] = "default"
    named = ctx.get_parameter_source("config_file")  # the file's own source: named, or found by the search
    sources["config"] = ("command line" if named == click.core.ParameterSource.COMMANDLINE else "$POLICY_ENGINE_CONFIG"
                         if named == click.core.ParameterSource.ENVIRONMENT else "found" if config.file else "none")
    ctx.obj = {"policies": policies_dir, "audit_db": audit_db, "config": config, "sources": sources,
               "no_audit": no_audit}


_audit_options = [
    click.option("--no-audit", is_flag=True, help="Do not record the decisions in the decision store."),
    click.option("--audit-db", "command_audit_db", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 help="Decision store to record into (as --audit-db before the command; this one wins)."),
    click.option("--audit-inputs", type=click.Choice(["full", "hash-only"]), default="full", show_default=True,
                 help="Store the input record, or only its hash (then the decision cannot be replayed)."),
]


def _with_audit_options(fn: F) -> F:
    for opt in reversed(_audit_options):
        fn = opt(fn)
    return fn


def _audit_db(ctx: click.Context, no_audit: bool, command_audit_db: Path | None) -> Path | bool:
    """The store a command records into, or False with --no-audit (the run layer opens and writes it).

    --audit-db and --no-audit are accepted before the command (for every command) and after
    decide and batch; given after the command, they win.
    """
    root = ctx.find_root().obj
    if no_audit or root.get("no_audit"):
        return False
    return Path(command_audit_db if command_audit_db is not None else root["audit_db"])


def _stored_texts(audit_db: Path | bool) -> set[str] | None:
    """The policy texts the store holds before a run records into it (None: not recording, or no store to read)."""
    if not isinstance(audit_db, Path):
        return None
    if not audit_db.exists():
        return set()
    from .record.audit import AuditStore

    try:
        with AuditStore(audit_db, create=False) as store:
            return store.snapshot_texts()
    except Exception:  # the run says what is wrong with the store; this check only stands aside
        return None


def _warn_new_texts(fmt: str, where: str, audit_db: Path | bool, before: set[str] | None) -> None:
    """version-edited when the run just stored a text of a policy version the store knew under another text: said
    when it happens (a version in force edited in place), not only by the next `audit verify`."""
    if before is None or not isinstance(audit_db, Path):
        return
    from .record.audit import AuditStore

    try:
        with AuditStore(audit_db, create=False) as store:
            new = store.snapshot_texts() - before
            found = store.edited_versions(new) if new else []
    except Exception:  # the decisions are recorded: a check after them never stands between them and their answer
        return
    for d in found:
        _note(fmt, where, d.code, d.message, d.hint)


def _check_as_of(as_of: str | None) -> None:
    from .decide.inputs import parse_date

    if as_of is not None and parse_date(as_of) is None:
        raise click.BadParameter(f"{as_of!r} is not a date YYYY-MM-DD", param_hint="--as-of")


def _progress(label: str) -> Callable[[int, int], None] | None:
    """Per-chunk progress of a run as ``progress.Progress`` draws it: moves on a terminal, nothing when piped.

    A run reports ``(done, total)``; impact and simulate run twice (each version or each side),
    each with its own line.
    """
    from .progress import Progress

    if not Progress(label).enabled:
        return None
    bar: list[Progress] = []

    def show(done: int, total: int) -> None:
        if not bar:
            bar.append(Progress(label, total, unit="rows").__enter__())
        bar[0].update(done - bar[0].done)
        if done >= total:
            bar.pop().close()

    return show


# ------------------------------------------------------------------ validate


def _under(file: Path, folder: Path) -> bool:
    """Whether ``file`` lies in ``folder`` (or below it)."""
    return file.resolve().is_relative_to(folder.resolve())


def _registry_folder(ctx: click.Context) -> Path:
    """The policy directory a command reads when given no path; a usage error saying how to name one when it is
    missing (run from inside a policy's folder, 'policies' is not there)."""
    folder: Path = ctx.find_root().obj["policies"]
    if not folder.is_dir():
        raise click.UsageError(f"policy directory '{folder}' does not exist (read when no path is given): "
                               "name policy files or folders, or pass --policies DIR (or set POLICY_ENGINE_POLICIES)")
    return folder


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit", "github"]), default=None,
              help="text (default on a terminal), json (default otherwise), junit (JUnit XML) or github "
                   "(workflow annotations).")
@click.option("--max-errors", type=click.IntRange(min=0), default=50, show_default=True,
              help="Stop listing after this many problems per file (0: all).")
@click.pass_context
@handle_errors
def validate(ctx: click.Context, paths: tuple[Path, ...], fmt: str | None, max_errors: int) -> None:
    """Validate policy files or directories (default: the registry), reporting every problem.

    A policy test file or a scenario file given by name is recognised and checked as what it is.
    Exits 4 when any file is invalid.
    """
    from .diagnostics import Diagnostic, UsageError
    from .policy.kinds import refuse_portfolio_file

    fmt = fmt or _default_format()
    targets = list(paths) or [_registry_folder(ctx)]
    for p in targets:
        if not p.exists():
            raise UsageError([Diagnostic("file-missing", f"no such file or directory: {p}", file=str(p))])
        if p.is_file():  # a portfolio file read as YAML was "a policy is a mapping of keys", exit 4
            refuse_portfolio_file(str(p))
    results = _validated(targets, ctx.find_root().obj["policies"])
    if not results:
        raise click.UsageError(f"no policy files (policy*.yaml) under {', '.join(map(str, targets))}")
    bad = [r for r in results if any(d.severity == "error" for d in r.diagnostics)]
    _validate_report(results, bad, fmt, max_errors)
    if bad:
        _validate_failures(results, bad, fmt, max_errors)
    if fmt == "github":  # the count after the lines that say why, as in text
        click.echo(_tally(results, bad), err=True)
    if bad:
        sys.exit(EXIT_POLICY)


def _validate_failures(results: list[Any], bad: list[Any], fmt: str, max_errors: int) -> None:
    """What set exit 4 on stderr, as `test` says it: with --format json asked, one JSON document whose error is
    ``files-invalid``; beside a report for machines not asked as JSON (piped, junit, github), each invalid file's
    problems as text lines at their place. stderr was empty there, the errors only inside the report on stdout.
    In text the report itself is on stderr already."""
    from .diagnostics import Diagnostic

    if fmt == "text":
        return
    if _json_notes(fmt):
        _emit_diagnostics([Diagnostic(
            "files-invalid", f"{len(bad)} of {len(results)} file(s) invalid: the report's diagnostics name each "
            "problem", hint="validate --format text lists each problem at its file:line:col")], "json")
        return
    for r in bad:
        _emit_diagnostics(r.diagnostics, "text", max_errors)


def _validated(targets: list[Path], registry: Path | None = None) -> list[Any]:
    """Each policy and module under ``targets`` checked, then each other file as what it is: a test file or a
    scenario given by name, and those in a folder (a test file's names against the folder's policies, or, in a
    folder of test files alone, against the ``registry``'s, as `test` runs them)."""
    from .policy.kinds import is_client_record, refuse_other_kind
    from .policy.registry import CheckResult, check_paths
    from .review.filekinds import check_folder_files, check_other, check_test_file, load_kind

    others: list[Any] = []
    policy_targets = []
    for p in targets:
        kind, doc, _ = load_kind(p) if p.is_file() else ("policy", None, [])
        if kind == "policy" and doc is not None and is_client_record(doc.data):
            refuse_other_kind(doc, str(p))  # named as what it is (exit 2), not checked as a policy missing its keys
        if kind == "policy" or doc is None:
            policy_targets.append(p)
        else:
            found = check_test_file(p, doc, registry) if kind == "policy-tests" else check_other(p, doc, kind)
            others.append(CheckResult(str(p), found, None, kind=kind))
    checked = check_paths(policy_targets) if policy_targets else []
    for p in targets:
        if p.is_dir():  # its test files and scenarios too, as `test` and `simulate` will read them
            inside = [r for r in checked if _under(Path(r.file), p)]
            if any(r.what == "policy" for r in inside):
                # a policy that failed is not there to check names against: its own errors say enough
                complete = all(r.policy is not None for r in inside if r.what == "policy")
                names = [r.policy for r in inside if r.policy is not None] if complete else None
            else:  # test files alone: a policy's tests folder, or a policy missing (unknown-policy, as `test` says)
                names = _registry_policies(registry)
            others += check_folder_files(p, names)
    return [*checked, *others]


def _registry_policies(registry: Path | None) -> list[Any] | None:
    """Every policy of the registry, to check test files found without one against; None when it does not load
    (its own validation says why) and an empty list when it holds none."""
    from .diagnostics import PolicyError, UsageError
    from .policy.registry import Registry

    if registry is None or not registry.is_dir():
        return []
    try:
        return list(Registry(registry).policies())
    except (PolicyError, UsageError):
        return None


def _validate_report(results: list[Any], bad: list[Any], fmt: str, max_errors: int) -> None:
    if fmt == "junit":
        from .review.reporting import junit_validate

        click.echo(junit_validate(results), nl=False)
    elif fmt == "github":
        from .review.reporting import github_diagnostics

        click.echo(github_diagnostics([d for r in results for d in r.diagnostics]), nl=False)
    elif fmt == "json":
        import json

        click.echo(json.dumps({
            "ok": not bad,
            "files": [{"file": r.file, "kind": r.what, "ok": r not in bad,
                       "policy": r.policy.key if r.policy else None, "module": r.module,
                       "diagnostics": [d.to_dict() for d in r.diagnostics]} for r in results],
        }, ensure_ascii=False, indent=2))
    else:
        for r in results:
            if r.diagnostics:
                _emit_diagnostics(r.diagnostics, "text", max_errors)
            if r in bad or any(d.code == "policy-not-loaded" for d in r.diagnostics):
                continue
            what = r.policy.key if r.policy else f"module {r.module}" if r.module else r.what
            # a valid file's warnings (listed above it), counted so they are not taken for none; a note is none
            n = sum(d.severity == "warning" for d in r.diagnostics)
            click.echo(f"ok  {r.file}  ({what}" + (f", {n} warning{'s' if n > 1 else ''})" if n else ")"), err=True)
        click.echo(_tally(results, bad), err=True)


def _tally(results: list[Any], bad: list[Any]) -> str:
    """'5 valid, 0 invalid': a policy-shaped file not named policy-*.yaml is neither (it is not loaded, so it
    was not checked as a policy; its warning says so), counted apart."""
    skipped = [r for r in results if r not in bad and any(d.code == "policy-not-loaded" for d in r.diagnostics)]
    tally = f"{len(results) - len(bad) - len(skipped)} valid, {len(bad)} invalid"
    return tally + (f", {len(skipped)} not loaded" if skipped else "")


@main.command()
@click.argument("name")
@click.option("--debtor", is_flag=True,
              help="A policy with scopes: a debtor with several exposures and their repayment schedules, "
                   "exposure floors, a debtor aggregation and the 10% contagion rule.")
@click.pass_context
@handle_errors
def init(ctx: click.Context, name: str, debtor: bool) -> None:
    """Start a new policy NAME: the policy, a test folder with passing cases, and a sample client.

    Written under the policies folder; `validate` and `test` pass on it straight away.
    """
    from .scaffold import init as scaffold

    root = ctx.obj["policies"]
    for f in scaffold(name, root, debtor=debtor):
        click.echo(f"wrote {f}", err=True)
    click.echo(f"next: policy-engine validate {root / name} && policy-engine test {root / name}", err=True)


@main.command("config")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default=None)
@click.pass_context
@handle_errors
def config_cmd(ctx: click.Context, fmt: str | None) -> None:
    """Show the settings in effect and where each came from (option, environment, file, default)."""
    obj = ctx.obj
    config = obj["config"]
    settings = {"config": {"value": str(config.file) if config.file else None,
                           "from": obj["sources"]["config"]},
                "policies": {"value": str(obj["policies"]), "from": obj["sources"]["policies_dir"]},
                "audit-db": {"value": str(obj["audit_db"]), "from": obj["sources"]["audit_db"]},
                "format": {"value": config.format, "from": str(config.file) if config.format else "default"},
                "formats": {"value": dict(config.formats), "from": str(config.file) if config.formats else "default"}}
    if (fmt or _default_format()) == "json":
        import json

        click.echo(json.dumps(settings, ensure_ascii=False, indent=2))
        return
    for key, v in settings.items():
        value = v["value"] if key != "formats" else ", ".join(f"{k}={f}" for k, f in v["value"].items())
        click.echo(f"{key:<9} {value or '-'}  ({v['from']})")


# ------------------------------------------------------------ decide/explain


def _ref(ctx: click.Context, policy: str, version: str | None) -> Any:
    """The policy named on the command line (id, ID@VERSION, id + --policy-version, or file), resolved per client.

    Every command that takes a policy reads ID@VERSION (impact and generate did, decide did not)."""
    from .run import PolicyRef

    path = Path(policy)
    if "@" in policy and not path.is_file() and path.suffix not in (".yaml", ".yml"):
        pid, _, pinned = policy.partition("@")
        if not pid or not pinned:
            raise click.BadParameter(f"{policy!r}: write ID@VERSION, e.g. my-policy@1.0.0", param_hint="--policy")
        if version is not None and version != pinned:
            raise click.BadParameter(f"{policy!r} pins {pinned}, --policy-version says {version}: give one",
                                     param_hint="--policy-version")
        policy, version = pid, pinned
    return PolicyRef(policy, version, ctx.find_root().obj["policies"])


def _decide(ctx: click.Context, policy: str, version: str | None, client: str, as_of: str | None,
            trace: bool, audit_db: Path | bool = False, audit_inputs: str = "full", fmt: str = "text"
            ) -> tuple[Any, dict[str, Any]]:
    from .decide.inputs import record_fields
    from .decide.ref import dated_before
    from .run import decide_and_record, read_client, selection_day

    _check_as_of(as_of)
    record, name = read_client(client, sys.stdin.buffer)
    ref = _ref(ctx, policy, version)
    compiled = ref.for_day(selection_day(record, as_of))
    _warn_misspelt(compiled, record_fields(record), name, "field", fmt)
    decision = decide_and_record(ref, record, as_of=as_of, trace=trace, audit_db=audit_db,
                                 audit_inputs=audit_inputs, file=name)
    # beside a decision only (a refused record has its own error), against the day it was decided on, as --stream
    # says it: a record whose own as_of is no date was decided as of today without a word
    other_day = dated_before(record, as_of or decision.get("as_of"))
    if other_day is not None:
        _note(fmt, name, *other_day)
    return compiled, decision


def _warn_misspelt(policy: Any, given: Any, where: str, what: str, fmt: str = "text") -> list[dict[str, str]]:
    """Name, on stderr, given fields that look like a field the policy reads and lacks (typos read as null)."""
    from .decide.inputs import misspelt_fields, misspelt_message

    found = misspelt_fields(policy, given)
    for field, meant in found:
        _note(fmt, where, "misspelt-field", misspelt_message(policy, field, meant, what))
    return [{"given": field, "did_you_mean": meant} for field, meant in found]


def _check_encoding(ctx: click.Context, param: click.Parameter, value: str) -> str:
    import codecs

    try:
        codecs.lookup(value)
    except LookupError:
        raise click.BadParameter(f"unknown encoding {value!r} (e.g. utf-8, gb18030)") from None
    return value


_encoding_option = click.option(
    "--encoding", default="utf-8", show_default=True, callback=_check_encoding,
    help="Text encoding of CSV input (Excel in a Chinese locale saves gb18030/GBK).")


_lang_option = click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True,
                            help="Language of the report's headings and grade labels (text, markdown, html).")
REJECTS_SUFFIXES = (".jsonl", ".ndjson", ".csv")


def _rejects_path(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """A rejects file is JSON Lines or CSV: another suffix (r.parquet) was written as JSON Lines under its name."""
    if value is not None and value.suffix.lower() not in REJECTS_SUFFIXES:
        raise click.BadParameter(f"cannot write rejects as '{value.suffix or value.name}': use .jsonl or .csv",
                                 param_hint="--rejects")
    return value


_rejects_option = click.option(
    "--rejects", "rejects_out", type=click.Path(dir_okay=False, path_type=Path), default=None, callback=_rejects_path,
    help="Write the rejected rows, one line each with every problem: .jsonl or .csv.")
_csv_for_excel_option = click.option(
    "--csv-for-excel", is_flag=True,
    help="CSV outputs: a text cell Excel would run as a formula (=, +, -, @ first; not a number) is written with a "
         "leading apostrophe, which Excel shows as text. Programs reading the file see it too.")


_policy_options = [
    click.option("--policy", "-p", required=True,
                 help="Policy id (the version in force at the as-of date is used), ID@VERSION or a policy file "
                      "path."),
    click.option("--policy-version", default=None, help="Pin a version of the policy id (as ID@VERSION does)."),
    click.option("--client", "-c", default="-", show_default=True,
                 help="Client record JSON file (a debtor with its exposures under a policy with scopes), or - for "
                      "stdin."),
    click.option("--as-of", default=None,
                 help="Decision date YYYY-MM-DD (default: the client's as_of, else today)."),
]


def _with_policy_options(fn: F) -> F:
    for opt in reversed(_policy_options):
        fn = opt(fn)
    return fn


@main.command()
@_with_policy_options
@click.option("--trace", is_flag=True, help="Include every rule evaluated, with the values it read.")
@click.option("--format", "fmt", type=click.Choice(["json", "text"]), default=None,
              help="json (default when piped) or a readable text explanation (default on a terminal). With "
                   "--stream the answers are JSON lines always; this sets the warnings' form on stderr.")
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True,
              help="Language of the text format.")
@click.option("--pretty/--compact", default=None, help="Indent the JSON (default: on a terminal).")
@click.option("--stream", is_flag=True,
              help="Read one client JSON per line on stdin, write one decision JSON per line (flushed).")
@_with_audit_options
@click.pass_context
@handle_errors
def decide(ctx: click.Context, policy: str, policy_version: str | None, client: str, as_of: str | None,
           trace: bool, fmt: str | None, lang: str, pretty: bool | None, stream: bool, no_audit: bool,
           command_audit_db: Path | None, audit_inputs: str) -> None:
    """Decide one client (or debtor, with a grade per exposure): grade, warnings, actions, with their evidence,
    as JSON.

    With --stream, a calling system keeps one process open: each input line gets exactly one
    output line, a decision or {"line": N, "error": ...}; a bad line never ends the stream.
    """
    if stream:
        from .run import stream as answers

        _check_as_of(as_of)
        out = sys.stdout.buffer
        from .policy.loader import bounded_lines
        from .safetext import json_line, printable

        if client != "-":  # the lines come on stdin: a file named with -c would be left unread without a word
            raise click.BadParameter("--stream reads its lines from stdin: give them there, e.g. "
                                     f"policy-engine decide ... --stream < {client}", param_hint="-c")

        def warn(number: int, code: str, line: str) -> None:
            """A line's warning on stderr, when stderr can take it: a daemon's closed or full stderr ended the stream
            at the first warning (exit 5 or 1), every later line unanswered; the answers on stdout are the contract."""
            try:
                if _json_notes(fmt or _error_format({})):  # one JSON object a line, as the stream's stdout is read
                    import orjson

                    sys.stderr.buffer.write(json_line(orjson.dumps({"line": number, "code": code, "warning": line},
                                                                   option=orjson.OPT_APPEND_NEWLINE)))
                    sys.stderr.flush()
                    return
                click.echo(printable(f"<stdin>:{number}: warning: {line}"), err=True)
            except (OSError, AttributeError, ValueError):  # closed (None, or a closed file), full, or gone
                pass

        ref = _ref(ctx, policy, policy_version)
        ref.check()  # an unknown id or version ends the stream before its first line, with exit 2
        for answer in answers(ref, bounded_lines(sys.stdin.buffer), as_of=as_of, trace=trace,
                              audit_db=_audit_db(ctx, no_audit, command_audit_db), audit_inputs=audit_inputs,
                              notes=warn):
            out.write(json_line(answer))  # UTF-8 bytes as orjson wrote them: no decoding and encoding again
            out.flush()
        return
    notes = fmt or _error_format({})  # warnings as JSON when asked or configured, as the errors are (handle_errors)
    fmt = fmt or _default_format()
    audit_db = _audit_db(ctx, no_audit, command_audit_db)
    before = _stored_texts(audit_db)
    compiled, decision = _decide(ctx, policy, policy_version, client, as_of, trace, audit_db, audit_inputs, notes)
    _warn_new_texts(notes, "<stdin>" if client == "-" else client, audit_db, before)
    if fmt == "text":
        from .decide.explain import explain as render

        click.echo(render(decision, compiled, lang), nl=False)
        return
    from .decide.evaluate import dumps
    from .decide.explain import decision_notes

    name = "<stdin>" if client == "-" else client
    for code, line in decision_notes(decision, compiled):  # the JSON keeps its contract: the notes go to stderr
        _note(notes, name, code, line)
    click.echo(dumps(decision, pretty=sys.stdout.isatty() if pretty is None else pretty))
    _emit_notes()


@main.command()
@_with_policy_options
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True,
              help="Language of the explanation: en (English) or zh (中文).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default=None,
              help="text (the default, also when piped; or as the configuration sets it), or json: "
                   "{\"text\": ..., \"decision\": ...}.")
@click.pass_context
@handle_errors
def explain(ctx: click.Context, policy: str, policy_version: str | None, client: str, as_of: str | None,
            lang: str, fmt: str) -> None:
    """Explain one client's (or debtor's) decision in Chinese or English."""
    from .decide.explain import explain as render

    fmt = fmt or _configured_format() or "text"  # an explanation is text for people, unless configured otherwise
    compiled, decision = _decide(ctx, policy, policy_version, client, as_of, False, fmt=fmt)
    text = render(decision, compiled, lang)
    if fmt == "json":
        from .decide.evaluate import dumps

        click.echo(dumps({"text": text, "decision": decision}, pretty=True))
        _emit_notes()  # a misspelt field, as decide gives it: one JSON document on stderr
    else:
        click.echo(text, nl=False)


# ---------------------------------------------------------------------- test


@main.command("test")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit", "github"]), default=None,
              help="text (default on a terminal), json, junit (JUnit XML) or github (workflow annotations).")
@click.option("-k", "only", default=None, help="Only cases whose name contains this text.")
@click.option("-v", "--verbose", is_flag=True, help="List passing cases too.")
@click.option("--coverage", "show_coverage", is_flag=True,
              help="Report, per rule, whether a case expected it to fire and one expected it not to "
                   "(rules only exercised are listed as incidental, with their file:line).")
@click.option("--min-coverage", type=click.FloatRange(0, 100), default=None,
              help="Exit 1 when rule coverage (percent of rules pinned both ways) is below this.")
@click.pass_context
@handle_errors
def test_cmd(ctx: click.Context, paths: tuple[Path, ...], fmt: str | None, only: str | None, verbose: bool,
             show_coverage: bool, min_coverage: float | None) -> None:
    """Run policy test cases (default: every policy directory in the registry).

    Exits 1 when a case fails, 4 when a policy or test file (or one of its cases) is invalid, 2 when
    nothing was selected (no test files, -k matching no case).
    """
    from .diagnostics import Diagnostic, UsageError
    from .review.tester import coverage, run_tests

    fmt = fmt or _default_format()
    for p in paths:
        if not p.exists():
            raise UsageError([Diagnostic("file-missing", f"no such file or directory: {p}", file=str(p))])
    registry: Path = ctx.find_root().obj["policies"]
    run = run_tests(list(paths) or [_registry_folder(ctx)], only=only, registry=registry if registry.is_dir() else None)
    cov = coverage(run)
    _emit_test_report(run, cov, fmt, verbose, min_coverage, show_coverage)
    below = min_coverage is not None and any(c.percent < min_coverage for c in cov.values())
    if show_coverage or min_coverage is not None:
        for policy_key, c in cov.items():
            _say(fmt, "coverage", f"coverage {policy_key}: {c.covered}/{len(c.rules)} rules pinned both ways by an "
                 f"expectation ({c.percent:.1f}%)")
            if show_coverage and fmt != "json":  # the JSON report lists each rule
                for r in c.rules:
                    if not r.covered:
                        click.echo(f"  {r.place}: {r.status} {r.name}: {r.missing}", err=True)
    failures = _test_failures(run, cov, min_coverage, below, fmt)
    if fmt == "text" or _json_notes(fmt):
        _finish(fmt, failures)
    else:  # a report for machines on stdout (piped, junit, github), not asked as JSON: stderr's errors are lines
        _emit_diagnostics(failures, "text")
    if run.diagnostics and not run.usage_only:
        sys.exit(EXIT_POLICY)
    if run.diagnostics:  # nothing was selected to run (no test files, -k matched nothing)
        sys.exit(EXIT_USAGE)
    if below or run.failed:
        sys.exit(EXIT_TESTS_FAILED)


def _test_failures(run: Any, cov: dict[str, Any], min_coverage: float | None, below: bool, fmt: str) -> list[Any]:
    """What sets the test run's failing exit code, as the errors of stderr's JSON document (``ok: false`` whenever
    the exit code is not 0): invalid files (4), nothing selected (2), failed cases and coverage short (1). In text
    only coverage short is a line of its own: the report says the rest. Beside a report for machines not asked as
    JSON (piped) they are lines for people, each invalid file's problem at its place as the text report lists it:
    the report on stdout is not where a person looks for why the run failed."""
    from .diagnostics import Diagnostic

    short = []
    if below and min_coverage is not None:
        shown = ", ".join(f"{key} {c.percent:.1f}%" for key, c in cov.items() if c.percent < min_coverage)
        short.append(Diagnostic("coverage-below", f"rule coverage is below --min-coverage {min_coverage:g}% ({shown})"))
    if fmt == "text":
        return short
    failures: list[Any] = []
    if run.diagnostics and not run.usage_only and not _json_notes(fmt):
        failures += run.diagnostics
    elif run.diagnostics and not run.usage_only:
        files = {d.file for d in run.diagnostics if d.severity == "error"}
        failures.append(Diagnostic("files-invalid", f"{len(files)} policy or test file(s) invalid: the report's "
                                   "errors name each problem (no coverage gate is met while one is)"))
    elif run.diagnostics:  # nothing was selected to run
        failures += run.diagnostics
    if run.failed:
        failures.append(Diagnostic("tests-failed", f"{run.failed} of {len(run.results)} case(s) failed: the report "
                                   "names each expectation that did not hold"))
    return failures + short


def _emit_test_report(run: Any, cov: dict[str, Any], fmt: str, verbose: bool, min_coverage: float | None,
                      show_coverage: bool) -> None:
    """The test run on stdout in the chosen format (text: failures, the diagnostics on stderr, the counts)."""
    if fmt == "junit":
        from .review.reporting import junit_tests

        click.echo(junit_tests(run, cov, min_coverage), nl=False)
    elif fmt == "github":
        from .review.reporting import github_tests

        click.echo(github_tests(run, cov, min_coverage, show_coverage), nl=False)
    elif fmt == "json":
        import json

        # an invalid policy or test file leaves its version's coverage unmeasured: the gate is not met; nor is it
        # when nothing was measured (no test file found: 'met' beside no-tests read as a pass)
        invalid = bool(run.diagnostics) and not run.usage_only
        gate = {} if min_coverage is None else {"min_coverage": {
            "required": min_coverage,
            "met": bool(cov) and not invalid and not any(c.percent < min_coverage for c in cov.values()),
            "below": [key for key, c in cov.items() if c.percent < min_coverage]}}
        click.echo(json.dumps({**run.to_dict(with_coverage=False),
                               "coverage": {key: c.to_dict() for key, c in cov.items()}, **gate},
                              ensure_ascii=False, indent=2))
    else:
        for r in run.results:
            if not r.passed:
                from .review.reporting import failures_at_lines

                click.echo(f"FAIL {r.file}:{r.line} [{r.policy}] {r.name}")
                for line in failures_at_lines(r):
                    click.echo(f"     {line}")
            elif verbose:
                click.echo(f"ok   {r.file}:{r.line} [{r.policy}] {r.name}")
        if run.diagnostics:
            _emit_diagnostics(run.diagnostics, "text")
        click.echo(f"{run.passed} passed, {run.failed} failed")


# ---------------------------------------------------------------------- diff


@main.command()
@click.argument("old")
@click.argument("new")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default=None,
              help="text (default on a terminal), json, or markdown (for a pull-request comment).")
@click.option("--exit-code", "exit_code", is_flag=True,
              help="Exit 1 when there is a change (as git diff --exit-code), 0 when none.")
@click.pass_context
@handle_errors
def diff(ctx: click.Context, old: str, new: str, fmt: str | None, exit_code: bool) -> None:
    """What changed between two policies, rule by rule (files, ID@VERSION, or REV:path in git).

    Two versions of a module (module files, MODULE-ID@VERSION, REV:path): for each policy of the registry
    that imports the old version, what moving its pin to the new one changes.
    """
    import json

    from .review.diffing import diff_policies, render_markdown, render_text, resolve
    from .review.module_diff import module_ref

    fmt = fmt or _default_format()
    root = ctx.obj["policies"]
    ma, mb = module_ref(old, root), module_ref(new, root)
    if ma is not None or mb is not None:
        changed = _diff_modules(old, new, ma, mb, root, fmt)
        if exit_code and changed:
            sys.exit(EXIT_TESTS_FAILED)
        return
    a, b = resolve(old, root), resolve(new, root)
    changes = diff_policies(a, b)
    if fmt == "json":
        click.echo(json.dumps({"old": {"id": a.id, "version": a.version, "sha256": a.sha256},
                               "new": {"id": b.id, "version": b.version, "sha256": b.sha256},
                               "changes": [c.to_dict() for c in changes]}, ensure_ascii=False, indent=2))
    elif fmt == "markdown":
        click.echo(render_markdown(a, b, changes), nl=False)
    else:
        click.echo(render_text(a, b, changes), nl=False)
    if exit_code and changes:
        sys.exit(EXIT_TESTS_FAILED)


def _diff_modules(old: str, new: str, ma: Any, mb: Any, root: Path, fmt: str) -> bool:
    """Render a module diff; whether any importer would change (or not compile)."""
    import json

    from .diagnostics import Diagnostic, UsageError
    from .review import module_diff

    missing = new if ma is not None else old
    mid, at, version = missing.partition("@")
    if ma is None or mb is None:
        from .policy.modules import FolderModules

        known = FolderModules(root).versions(mid) if at and ":" not in missing else []
        if known:
            raise UsageError([Diagnostic("unknown-version", f"module {mid} has no version '{version}'",
                                         hint=f"versions: {', '.join(known)}")])
        raise UsageError([Diagnostic("module-and-policy", f"'{new if ma is not None else old}' is not a module, "
                                     f"'{old if ma is not None else new}' is: diff compares two policies or two "
                                     "versions of one module")])
    found = module_diff.diff_module(ma, mb, root)
    if fmt == "json":
        click.echo(json.dumps({"module": {"id": ma.id, "old": ma.version, "new": mb.version,
                                          "old_sha256": ma.sha256, "new_sha256": mb.sha256},
                               "importers": [f.to_dict() for f in found]}, ensure_ascii=False, indent=2))
    elif fmt == "markdown":
        click.echo(module_diff.render_markdown(ma, mb, found), nl=False)
    else:
        click.echo(module_diff.render_text(ma, mb, found), nl=False)
    return any(f.changes or f.problems for f in found)


_total_option = click.option(
    "--total", "total", multiple=True, metavar="METRIC",
    help="Sum and mean of this number metric under each version, overall and by segment (repeatable).")
_list_option = click.option(
    "--list", "max_listed", type=click.IntRange(min=0), default=200, show_default=True, metavar="N",
    help="List at most N of the clients that changed, in portfolio order (0: none; every count covers them all).")


def _totals(total: tuple[str, ...], gates: tuple[str, ...]) -> tuple[str, ...]:
    """The metrics to total: those asked for, then those a gate reads; every gate checked before any run."""
    from .review.impact import gate_metrics

    return tuple(dict.fromkeys([*total, *gate_metrics(gates)]))


@main.command()
@click.argument("old")
@click.argument("new")
@click.option("--portfolio", type=click.Path(path_type=Path), required=True,
              help="Clients to decide under both versions (CSV, JSON Lines, Parquet, Excel); for two versions "
                   "with scopes, debtor records (JSON Lines) or a folder of long tables.")
@click.option("--as-of", default=None, help="Decision date for every client (default: each row's as_of).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default=None)
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a self-contained HTML report with charts.")
@click.option("--fail-if", "gates", multiple=True,
              help="Exit 1 when this holds, e.g. 'grade_changed_share > 0.05', 'rejected > 0' or "
                   "'total.expected_loss.change_share > 0.05' (repeatable).")
@_total_option
@_list_option
@_rejects_option
@_csv_for_excel_option
@_encoding_option
@_lang_option
@click.pass_context
@handle_errors
def impact(ctx: click.Context, old: str, new: str, portfolio: Path, as_of: str | None, fmt: str | None,
           html_out: Path | None, gates: tuple[str, ...], total: tuple[str, ...], max_listed: int,
           rejects_out: Path | None, csv_for_excel: bool, encoding: str, lang: str) -> None:
    """Champion / challenger: decide a portfolio under two policy versions and report what moves.

    OLD and NEW are files, ID@VERSION, REV:path in git, or a bare policy ID (each client under the
    version in force on its day). A row rejected on either side is not compared: the count is on
    stderr and in the report. --total METRIC adds the metric's sum and mean under each version, for
    all compared clients and by segment (a gate on total.METRIC.FIELD adds it too).

    NEW may decide debtors with several exposures (client record 2.0) while OLD reads 1.x records:
    each row is then converted (as `convert` does) before NEW decides it, the debtor's grade is
    compared with the 1.x grade, and the report lists the facts the conversion assumed. NEW as a bare
    id takes each row's version by its day (1.x rows stay 1.x, later rows are converted); when OLD
    decides debtors, NEW must be pinned. Two such versions compare debtors as batch reads them: a
    JSON Lines file of debtor records or a folder of long tables (orphaned rows are reported).
    """
    from .review.impact import analyse, reads_debtors
    from .run import read_portfolio, refuse_empty

    fmt = fmt or _default_format()
    _check_as_of(as_of)
    from .portfolio.batch import check_outputs

    check_outputs(portfolio, None, {"--html": html_out, "--rejects": rejects_out})
    total = _totals(total, gates)
    refs = _side_ref(ctx, old), _side_ref(ctx, new)
    if not portfolio.exists():
        from .diagnostics import Diagnostic, UsageError

        raise UsageError([Diagnostic("file-missing", f"no such file: {portfolio}", file=str(portfolio))])
    if reads_debtors(*refs):  # decided as batch decides debtors: read once, by each side, and never flattened
        if portfolio.is_file():
            refuse_empty(portfolio, "debtor", lines=True)
        source: Any = portfolio
    elif portfolio.is_dir():
        raise click.BadParameter(f"'{portfolio}' is a folder: long tables hold debtors with several exposures, "
                                 "which only two versions with scopes compare, each pinned (ID@VERSION)",
                                 param_hint="'--portfolio'")
    else:
        source = read_portfolio(portfolio, encoding=encoding)
    result = analyse(*refs, source, as_of, progress=_progress("deciding"), total=total, max_listed=max_listed,
                     encoding=encoding)
    _folder_notes(fmt, portfolio, result)
    _pinned_notes(fmt, portfolio, refs, result)
    _emit_migration(result, fmt, html_out, gates, "Portfolio impact", rejects_out, lang, csv_for_excel)


def _pinned_notes(fmt: str, portfolio: Path, refs: tuple[Any, Any], result: Any) -> None:
    """A side pinned to a version not in force on some rows' day says so, as batch does: the comparison holds,
    but its figures are not those of the policy then in force."""
    import pandas as pd

    from .portfolio.tables import not_in_force

    for side, ref, run in zip(("old", "new"), refs, result.runs or (), strict=False):
        decisions = getattr(run, "decisions", None) if run.parts else None  # a side that decided nothing has none
        if ref.pinned is None or not isinstance(decisions, pd.DataFrame) or "as_of" not in decisions.columns:
            continue
        late = not_in_force(ref.pinned, decisions["as_of"])
        if late is not None:
            _not_in_force_note(fmt, str(portfolio), late, f"{side} side: ")


def _not_in_force_note(fmt: str, where: str, late: Mapping[str, Any], prefix: str = "") -> None:
    """Decisions made under a pinned version not in force on their day, said as decide says it for one client."""
    span = f"from {late['effective_from']}" + (f" to {late['effective_to']}" if late["effective_to"] else "")
    _note(fmt, where, "not-in-force", f"{prefix}{late['decided']} decision(s) made under {late['id']} "
          f"{late['version']} as pinned, not in force on their day (it applies {span})")


def _folder_notes(fmt: str, folder: Path, result: Any) -> None:
    """What batch warns of in a folder of long tables (a column missing or misspelt, a table empty, debtors decided
    without exposures), for each side whose policy reads the folder differently (once when both read it alike)."""
    import types

    said: list[Any] = []
    for side in result.runs or ():
        gaps = getattr(side, "gaps", None)
        if gaps is not None and gaps not in said:
            said.append(gaps)
            _batch_notes(fmt, str(folder), folder, types.SimpleNamespace(
                misspelt=[(side.policy.id, given, meant) for given, meant in gaps["misspelt"]], summary=gaps))


@main.command()
@click.argument("source")
@click.option("--to", "target", type=click.Choice(["2.0"]), required=True, help="The record version to write.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the converted records here (one JSON record for a .json input, else JSON Lines); "
                   "default stdout.")
@click.option("--assumptions", "assumptions_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write each record's notes (assumed, unknown, not carried), one JSON line per record.")
@click.option("--as-of", default=None, help="Decision date for records that have no as_of.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default=None,
              help="Form of the summary (stdout with --out, else stderr).")
@_rejects_option
@_csv_for_excel_option
@_encoding_option
@handle_errors
def convert(source: str, target: str, out: Path | None, assumptions_out: Path | None, as_of: str | None,
            fmt: str | None, rejects_out: Path | None, csv_for_excel: bool, encoding: str) -> None:
    """Convert 1.x client records (SOURCE: a .json record, JSON Lines, a CSV/Parquet portfolio, or - for stdin)
    to client record 2.0, with every fact the conversion had to assume listed.

    A record that is not a 1.x record is a reject with its reasons (exit 3 for a single record).
    """
    import json

    from .diagnostics import Diagnostic, InputError
    from .portfolio.batch import write_rejects
    from .review.convert import convert_all

    _check_as_of(as_of)
    items, single = _convert_items(source, encoding)
    result = convert_all(items, as_of)
    if single and result.rejects:
        raise InputError([Diagnostic(p["code"], p["message"], file=source, path=p["field"])
                          for p in result.rejects[0]["problems"]])
    records = [c.record for _, c in result.conversions]
    text = json.dumps(records[0], ensure_ascii=False, indent=2) + "\n" if single else "".join(
        json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
    if assumptions_out is not None:
        with assumptions_out.open("w", encoding="utf-8") as fh:
            for row, c in result.conversions:
                assert c.record is not None
                fh.write(json.dumps({"row": row, "client_id": c.record["client_id"],
                                     "notes": [n.to_dict() for n in c.notes]}, ensure_ascii=False) + "\n")
    summary = result.summary()
    fmt = fmt or (_default_format() if out is not None else "text")
    if rejects_out is not None:
        write_rejects(result.rejects, rejects_out)
        if csv_for_excel and out is None and fmt == "json":  # the summary is stderr's one JSON document: it says it
            from .portfolio.spreadsheet import guard_outputs

            summary["formulas_quoted"] = guard_outputs((rejects_out,))
        elif csv_for_excel:
            _guard_formulas(fmt, (rejects_out,))
    _convert_summary(summary, fmt, to_stdout=out is not None)
    _emit_notes()


def _convert_items(source: str, encoding: str) -> tuple[list[Any], bool]:
    """The records to convert (row, record, read problems) and whether SOURCE is one JSON record."""
    from .diagnostics import Diagnostic, UsageError
    from .review.convert import json_items, table_items
    from .run import read_portfolio, refuse_empty

    if source == "-":
        data = sys.stdin.buffer.read()
        if not data.strip():  # as decide -c - answers nothing sent
            raise UsageError([Diagnostic("no-client-data", "no client data in <stdin>", file="<stdin>",
                                         hint="pipe a 1.x client record, or JSON Lines of them, to convert -")])
        whole = json_items(data, lines=False)
        if not whole[0][2] and isinstance(whole[0][1], dict):
            return whole, True
        return json_items(data, lines=True), False
    path = Path(source)
    if not path.is_file():
        from .portfolio.batch import check_input

        check_input(path)
        raise UsageError([Diagnostic("file-missing", f"no such file: {source}", file=source)])
    if path.suffix.lower() == ".json":
        return json_items(path.read_bytes(), lines=False), True
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        refuse_empty(path)  # as batch names it
        return json_items(path.read_bytes(), lines=True), False
    return table_items(read_portfolio(path, encoding=encoding)), False


def _convert_summary(summary: dict[str, Any], fmt: str, to_stdout: bool) -> None:
    import json

    if fmt == "json":
        click.echo(json.dumps(summary, ensure_ascii=False, indent=2), err=not to_stdout)
        return
    lines = [f"{summary['rows_read']:,} read: {summary['converted']:,} converted, {summary['rejected']:,} rejected"]
    for code, a in summary["assumptions"].items():
        lines.append(f"  {a['records']:>7,}  {a['kind']:<11} {code}: {a['reason']}")
    click.echo("\n".join(lines), err=not to_stdout)


def _side_ref(ctx: click.Context, ref: str) -> Any:
    """A policy named for impact or simulate: pinned (file, ID@VERSION, REV:path) or an id resolved per client."""
    from .review.diffing import resolve
    from .run import PolicyRef

    if "@" in ref or ":" in ref or Path(ref).suffix in (".yaml", ".yml") or Path(ref).is_file():
        return PolicyRef(resolve(ref, ctx.obj["policies"]))
    return _ref(ctx, ref, None)


def _emit_migration(result: Any, fmt: str, html_out: Path | None, gates: tuple[str, ...], heading: str,
                    rejects_out: Path | None, lang: str = "en", csv_for_excel: bool = False) -> None:
    """impact and simulate: the report in the chosen form, the HTML page, the rejects, and the --fail-if gates."""
    import json

    from .portfolio.batch import write_rejects
    from .review.impact import gate_results, render_html, render_markdown, render_text, with_labels

    report = with_labels(result.report, result.new, result.old)
    checked = gate_results(report, gates)
    readable = {**report, "gates": checked}  # the text, markdown and HTML forms show them too
    failed = [g["says"] for g in checked if g["failed"]]
    rejects = result.rejects
    if rejects_out is not None:
        write_rejects(rejects, rejects_out)
        if csv_for_excel:
            _guard_formulas(fmt, (rejects_out,))
    if html_out is not None:
        html_out.write_text(render_html(readable, heading, lang), encoding="utf-8")
    if fmt == "json":
        click.echo(json.dumps({**report, "gates": checked, "failed_gates": failed}, ensure_ascii=False, indent=2))
    elif fmt == "markdown":
        click.echo(render_markdown(readable, heading, lang), nl=False)
    else:
        click.echo(render_text(readable, heading, lang), nl=False)
    if rejects:
        orphaned = sum(1 for r in rejects if r.get("orphaned"))  # long tables: rows joining no debtor
        unit = "debtor(s)" if report.get("records") == "debtors" else "row(s)"
        said = " and ".join(t for t in (f"{len(rejects) - orphaned} {unit} rejected and not compared"
                                        if len(rejects) > orphaned else "",
                                        f"{orphaned} orphaned row(s) of the tables" if orphaned else "") if t)
        _say(fmt, "rows-rejected", said + (f"; see {rejects_out}" if rejects_out else
                                           " (write them with --rejects FILE)"))
    from .diagnostics import Diagnostic

    _finish(fmt, [Diagnostic("gate-failed", f"gate failed: {f}") for f in failed])
    if failed:
        sys.exit(EXIT_TESTS_FAILED)


@main.command()
@click.argument("policy")
@click.option("--portfolio", type=click.Path(path_type=Path), required=True,
              help="Clients to stress (CSV, JSON Lines, Parquet, Excel); under a version with scopes, debtor "
                   "records (JSON Lines) or a folder of long tables.")
@click.option("--scenario", "scenario_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Shocks in YAML (see scenarios/).")
@click.option("--as-of", default=None)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default=None)
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--fail-if", "gates", multiple=True,
              help="As for impact, e.g. 'downgrade_share > 0.1', 'rejected > 0' or "
                   "'total.expected_loss.change_share > 0.2'.")
@_total_option
@_list_option
@_rejects_option
@_csv_for_excel_option
@_encoding_option
@_lang_option
@click.pass_context
@handle_errors
def simulate(ctx: click.Context, policy: str, portfolio: Path, scenario_file: Path, as_of: str | None,
             fmt: str | None, html_out: Path | None, gates: tuple[str, ...], total: tuple[str, ...],
             max_listed: int, rejects_out: Path | None, csv_for_excel: bool, encoding: str, lang: str) -> None:
    """Stress test: apply a scenario's shocks and report the migration against the unshocked portfolio.

    A policy id decides each client under the version in force on its day (or on --as-of).
    --total METRIC adds the metric's sum and mean unshocked and shocked, overall and by segment.
    """
    from .review.scenario import checked_version, load_scenario, one_version, refuse_table_for_debtors
    from .review.scenario import simulate as run_scenario
    from .run import _folder_days, _folder_policy, read_portfolio

    fmt = fmt or _default_format()
    _check_as_of(as_of)
    from .portfolio.batch import check_outputs

    check_outputs(portfolio, scenario_file, {"--html": html_out, "--rejects": rejects_out})
    total = _totals(total, gates)
    ref = _side_ref(ctx, policy)
    if portfolio.is_dir():  # long tables: decided under one version with scopes, as batch decides the folder
        version = _folder_policy(ref, portfolio, as_of, encoding)
        one_version(ref, version, [as_of] if as_of else _folder_days(portfolio, encoding), portfolio)
        source: Any = portfolio
    else:
        source = read_portfolio(portfolio, encoding=encoding)
        version = checked_version(ref, source, as_of)
        refuse_table_for_debtors(version, source, portfolio)  # before its shocks are checked against the version
    scenario = load_scenario(scenario_file, version)
    result, changed = run_scenario(version if portfolio.is_dir() else ref, source, scenario, as_of,
                                   progress=_progress("deciding"), total=total, max_listed=max_listed,
                                   encoding=encoding)
    for i, n in enumerate(changed):
        if n == 0:  # the portfolio has no such column, or no client of the segment: say so
            _note(fmt, str(scenario_file), "shock-changed-nothing", f"shock {i + 1} ({scenario.shocks[i].field}) "
                  f"changed no cell of {portfolio}")
    _emit_migration(result, fmt, html_out, gates, f"Scenario {scenario.name}", rejects_out, lang, csv_for_excel)


# --------------------------------------------------------------------- batch


@main.command()
@click.argument("input_file", type=click.Path(path_type=Path))
@click.option("--policy", "-p", required=True,
              help="Policy id (each row decided under the version in force on its day) or a policy file.")
@click.option("--policy-version", default=None, help="Pin a version of the policy id.")
@click.option("--as-of", default=None,
              help="Decision date for every row, and the day its version is chosen for (default: each row's "
                   "as_of, else today; a row on a day no version is in force is rejected).")
@click.option("--financials", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Periodic financials as a long table (client_id + one row per period).")
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="Decisions table: .parquet, .csv or .jsonl (with --engine dask: a directory).")
@click.option("--rejects", "rejects_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              callback=_rejects_path, help="One line per rejected row with every problem: .jsonl or .csv.")
@click.option("--records", "records_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the full decision records (as `decide` prints them), one JSON per line.")
@click.option("--exposures-out", "exposures_out", type=click.Path(path_type=Path), default=None,
              help="Policy with scopes: one row per exposure (debtor, exposure id, own and final grade, deciding "
                   "rule, floors, metrics): .parquet, .csv or .jsonl.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default=None,
              help="Summary on stdout: text (default on a terminal) or json.")
@click.option("--fail-on-rejects", is_flag=True, help="Exit 3 when any row was rejected (or orphaned).")
@_csv_for_excel_option
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="dask: INPUT is a directory of partitions (Parquet files; JSON Lines of debtors; folders of long "
                   "tables), decided partition by partition on a cluster.")
@click.option("--scheduler", default=None, help="Dask scheduler address (default: a LocalCluster on this machine).")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Threads (local) or LocalCluster worker processes (dask).")
@_encoding_option
@_with_audit_options
@click.pass_context
@handle_errors
def batch(ctx: click.Context, input_file: Path, policy: str, policy_version: str | None, as_of: str | None,
          financials: Path | None, out: Path | None, rejects_out: Path | None, records_out: Path | None,
          exposures_out: Path | None, fmt: str | None, fail_on_rejects: bool, csv_for_excel: bool, engine: str,
          scheduler: str | None, workers: int, encoding: str, no_audit: bool, command_audit_db: Path | None,
          audit_inputs: str) -> None:
    """Decide a portfolio (CSV, JSON Lines, Parquet or Excel) column-wise.

    Prints the accounting (rows read = decided + rejected) and counts by grade, warning,
    action and segment. Output row order follows the input. Each row is decided under the version
    in force on its day, and every decision is recorded in the decision store (unless --no-audit).
    A policy with scopes decides JSON Lines of debtor records (one debtor a line, its exposures
    nested): one decisions row per debtor, one --exposures-out row per exposure. It also decides a
    folder of long tables (debtors, exposures, payments, ... as Parquet or CSV, joined by ids; see
    docs/scopes.md) under one version: each debtor recorded from the nested record the tables hold.
    """
    from .portfolio.batch import render_summary

    fmt = fmt or _default_format()
    _check_as_of(as_of)
    ref = _ref(ctx, policy, policy_version)
    audit_db = _audit_db(ctx, no_audit, command_audit_db)
    before = _stored_texts(audit_db)
    options = {"as_of": as_of, "out": out, "rejects": rejects_out, "records": records_out,
               "audit_db": audit_db, "audit_inputs": audit_inputs,
               "workers": workers, "progress": _progress("deciding"), "exposures": exposures_out}
    if engine == "dask":
        import codecs

        from .portfolio.distributed import run_dataset

        if codecs.lookup(encoding).name != "utf-8":  # the workers read UTF-8 only: never read other text silently
            raise click.BadParameter(f"--engine dask reads CSV as UTF-8 only, not {encoding}: save the files as "
                                     "'CSV UTF-8', or decide them without --engine dask", param_hint="--encoding")

        outcome = run_dataset(ref, input_file, financials=financials, scheduler=scheduler, **options)
    else:
        from .run import run_batch

        outcome = run_batch(ref, input_file, financials=financials, encoding=encoding, **options)

    where = str(input_file)  # the warnings: text lines, or with --format json one JSON document on stderr
    _batch_notes(fmt, where, Path(input_file), outcome)
    _warn_new_texts(fmt, where, audit_db, before)
    if csv_for_excel:
        _guard_formulas(fmt, (out, exposures_out, rejects_out))
    s = {**outcome.summary, "misspelt_columns": [{"given": g, "did_you_mean": m} for _, g, m in outcome.misspelt]}
    if outcome.already_recorded:
        _note(fmt, where, "already-recorded", f"{outcome.already_recorded} client(s) of this batch were already "
              f"recorded; {outcome.recorded} recorded now")
    rejected, period_rejects = outcome.rejected, len(outcome.period_rejects)
    if fmt == "json":
        import json

        click.echo(json.dumps(s, ensure_ascii=False, indent=2))
    else:
        click.echo(render_summary(s), nl=False)
    failing = fail_on_rejects and bool(rejected or period_rejects)
    if rejected or period_rejects:
        _batch_rejects(fmt, outcome, financials, rejects_out, failing)
    if not failing:
        _emit_notes()
    if failing:
        sys.exit(EXIT_INPUT)


def _guard_formulas(fmt: str, outputs: Sequence[Path | None]) -> None:
    """--csv-for-excel: the CSV outputs rewritten with formula cells quoted, and how many, since the data changed."""
    from .portfolio.spreadsheet import guard_outputs

    changed = guard_outputs(outputs)
    if changed:
        names = ", ".join(str(p) for p in outputs if p is not None and (p.is_dir() or p.suffix.lower() == ".csv"))
        _note(fmt, names, "formulas-quoted", f"{changed} cell(s) that a spreadsheet would run as a formula were "
              "written with a leading apostrophe (--csv-for-excel)")


def _batch_notes(fmt: str, where: str, source: Path, outcome: Any) -> None:
    """What a batch says beside its summary: columns misspelt or missing, tables empty, debtors decided without
    their elements, a pinned version not in force."""
    what = "field" if source.suffix.lower() in (".jsonl", ".ndjson") else "column"  # a debtor line's
    for pid, given, meant in outcome.misspelt:  # column names are the client's text: shown escaped
        _note(fmt, where, "misspelt-column", f"{what} '{given}' is not read by policy {pid}; did you mean "
              f"'{meant}'? (as given, '{meant}' is missing)")
    for absent in outcome.summary.get("missing_columns", []):
        _note(fmt, where, "missing-column", f"table {absent['table']} has no column '{absent['column']}', which every "
              "row needs: each of its rows is rejected (or orphaned) for it")
    for empty in outcome.summary.get("empty_tables", []):  # nothing rejected, every decision concerned
        if empty.get("orphaned"):
            _note(fmt, where, "empty-table", f"no row of table {empty['table']} joined a row of {empty['parent']} "
                  f"({empty['orphaned']:,} orphaned): each of {empty['parent']} was decided without any (check the ids "
                  "joining the tables: written otherwise in one of them?)")
            continue
        _note(fmt, where, "empty-table", f"table {empty['table']} has no row, though {empty['parent']} has decided "
              "rows: each was decided without any (check that the file is complete)")
    if outcome.summary.get("graded_table"):
        n = outcome.summary["decided_without_elements"]
        if source.is_dir():
            _note(fmt, where, "decided-without-elements", f"{n} debtor(s) decided without any row of "
                  f"{outcome.summary['graded_table']}: graded by the debtor's rules alone (check the ids joining the "
                  "tables; their rows, if any, are orphaned)")
        else:  # debtor records (JSON Lines): no table joins them, an empty or missing list does
            _note(fmt, where, "decided-without-elements", f"{n} debtor(s) decided without any element of "
                  f"{outcome.summary['graded_table']}: graded by the debtor's rules alone (check that their records "
                  "were not cut short)")
    late = outcome.summary.get("not_in_force")
    if late:
        _not_in_force_note(fmt, where, late)


def _batch_rejects(fmt: str, outcome: Any, financials: Path | None, rejects_out: Path | None, failing: bool) -> None:
    """The rows rejected, beside the summary; with --fail-on-rejects and --format json, the failure's document."""
    rejected, period_rejects = outcome.rejected, len(outcome.period_rejects)
    tables = hasattr(outcome.run, "orphans")  # a folder of long tables: rejects count debtors, orphans rows
    orphaned = len(getattr(outcome.run, "orphans", ()))
    unit = "debtor(s)" if tables else "row(s)"
    what = " and ".join(t for t in (f"{rejected - orphaned} {unit}" if rejected - orphaned else "",
                                    f"{orphaned} orphaned row(s)" if orphaned else "",
                                    f"{period_rejects} row(s) of {financials}" if period_rejects else "") if t)
    message = f"{what} rejected" + (f"; see {rejects_out}" if rejects_out else " (write them with --rejects FILE)")
    if failing and _json_notes(fmt):  # the run fails (exit 3): stderr's document is a failure's, the warnings after
        from .diagnostics import Diagnostic

        _emit_diagnostics([Diagnostic("rows-rejected", message, hint="--fail-on-rejects")], "json")
    else:
        _say(fmt, "rows-rejected", message)


# --------------------------------------------------------------------- audit


@main.group()
def audit() -> None:
    """The decision store: list, show, export, verify and replay recorded decisions."""


def _store(ctx: click.Context) -> Any:
    from .record.audit import AuditStore

    return AuditStore(ctx.find_root().obj["audit_db"], create=False)


_filters = [
    click.option("--client", default=None, help="Only this client id."),
    click.option("--policy", "policy_id", default=None, help="Only this policy id."),
    click.option("--policy-version", default=None, help="Only this policy version."),
    click.option("--grade", default=None, help="Only this grade."),
    click.option("--from", "date_from", default=None, help="as_of on or after this date."),
    click.option("--to", "date_to", default=None, help="as_of on or before this date."),
]


def _with_filters(fn: F) -> F:
    for opt in reversed(_filters):
        fn = opt(fn)
    return fn


@audit.command("list")
@_with_filters
@click.option("--limit", type=click.IntRange(min=1), default=None)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default=None)
@click.pass_context
@handle_errors
def audit_list(ctx: click.Context, client: str | None, policy_id: str | None, policy_version: str | None,
               grade: str | None, date_from: str | None, date_to: str | None, limit: int | None,
               fmt: str | None) -> None:
    """Recorded decisions (a table on a terminal, JSON lines otherwise)."""
    import json

    from .record.audit import check_filters

    fmt = fmt or _default_format()
    with _store(ctx) as store:
        check_filters(store, policy_id, policy_version, grade, date_from, date_to)
        rows = store.query(client, policy_id, policy_version, grade, date_from, date_to, limit)
        from .safetext import printable

        if fmt == "text":
            click.echo(f"{'seq':>7}  {'recorded_at':<24} {'client':<14} {'as_of':<10}  {'policy':<30} {'grade':<16} "
                       "decision_id")
        for r in rows:
            if fmt == "text":
                click.echo(printable(f"{r['seq']:>7}  {r['recorded_at']:<24} {r['client_id']:<14} {r['as_of']:<10}  "
                                     f"{r['policy_id'] + '@' + r['policy_version']:<30} {r['grade']:<16} "
                                     f"{r['decision_id']}"))
            else:
                click.echo(json.dumps({k: r[k] for k in ("seq", "decision_id", "client_id", "as_of", "policy_id",
                                                          "policy_version", "grade", "recorded_at")}))


@audit.command("show")
@click.argument("ref")
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True,
              help="Language of the explanation: en (English) or zh (中文).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default=None)
@click.pass_context
@handle_errors
def audit_show(ctx: click.Context, ref: str, lang: str, fmt: str | None) -> None:
    """One recorded decision (by decision_id or record number) and its explanation."""
    import json

    from .decide.evaluate import SUMMARY
    from .decide.explain import explain as render
    from .decide.explain import explain_summary

    fmt = fmt or _default_format()
    with _store(ctx) as store:
        row = store.get(ref)
        edited = store.record_problem(row)
        snapshot = store.snapshot_problem(row["policy_sha256"])
        decision, note = store.full_decision(row)
        policy = store.compiled_policy(row["policy_sha256"])
    if edited is not None:  # shown all the same (an auditor looks at what is there), never as if it were sound
        _note(fmt, f"record {row['seq']}", "record-edited", f"record {row['seq']}: {edited}; what follows is not what "
              "was decided (`audit verify` checks the whole chain)")
    if snapshot is not None:  # the explanation's rule texts come from it
        _note(fmt, f"record {row['seq']}", "snapshot-edited", f"record {row['seq']}: {snapshot}; the explanation "
              "below reads the changed text")
    text = (explain_summary if decision.get("record") == SUMMARY else render)(decision, policy, lang)
    if fmt == "json":
        click.echo(json.dumps({"seq": row["seq"], "recorded_at": row["recorded_at"], "hash": row["hash"],
                               "decision": decision, "note": note, "explanation": text}, ensure_ascii=False,
                              indent=2))
    else:
        click.echo(f"record {row['seq']}  hash {row['hash']}" + ("  FAILS ITS HASH: edited after it was recorded"
                                                                 if edited is not None else "") + "\n")
        if note:
            click.echo(f"note: {note}\n")
        click.echo(text, nl=False)
    _finish(fmt, [])


@audit.command("export")
@_with_filters
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help=".jsonl (full decision records) or .parquet (one row per record, decision as JSON).")
@click.option("--full", is_flag=True,
              help="In .jsonl, each line the whole record, as the Parquet columns: seq, chain hashes, input hash, "
                   "and the input and decision as objects.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default=None,
              help="Format of the lines on stderr (json: one JSON document, errors included); the export is the file.")
@click.pass_context
@handle_errors
def audit_export(ctx: click.Context, client: str | None, policy_id: str | None, policy_version: str | None,
                 grade: str | None, date_from: str | None, date_to: str | None, out: Path, full: bool,
                 fmt: str | None) -> None:
    """Export recorded decisions."""
    from .portfolio.batch import check_outputs
    from .record.audit import check_filters, export_records

    fmt = fmt or _default_format()

    if out.suffix not in (".jsonl", ".parquet"):
        raise click.BadParameter("use a .jsonl or .parquet file name", param_hint="--out")
    if full and out.suffix != ".jsonl":
        raise click.BadParameter("--full is for a .jsonl export: a .parquet export has every column already",
                                 param_hint="--full")
    with _store(ctx) as store:
        check_outputs(store.path, None, {"--out": out})  # not the store itself, nor a folder that is not there
        check_filters(store, policy_id, policy_version, grade, date_from, date_to)
        n = export_records(store, store.query(client, policy_id, policy_version, grade, date_from, date_to), out,
                           full)
        lost = None if any(f is not None for f in (client, policy_id, policy_version, grade, date_from, date_to)) \
            else _records_missing(store, n, "exported")
    if lost is not None:
        _finish(fmt, [lost])
        sys.exit(EXIT_AUDIT)
    _say(fmt, "exported", f"exported {n} decision(s) to {out}")
    _finish(fmt, [])


def _records_missing(store: Any, read: int, done: str) -> Any:
    """The error of a run over every record that read fewer than the chain counts (a batch segment deleted: its
    records vanish from every listing, and replay and export carried on, exit 0); None when none is missing."""
    from .diagnostics import Diagnostic

    total = store.head()[0]
    if read >= total:
        return None
    return Diagnostic("records-missing", f"{done} {read} of the {total} records the chain counts: {total - read} are "
                      "missing from the store", file=str(store.path),
                      hint="run `audit verify` to see where; what was there was " + done)


@audit.command("verify")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default=None)
@click.pass_context
@handle_errors
def audit_verify(ctx: click.Context, fmt: str | None) -> None:
    """Walk the hash chain; name the first broken record and how it broke (exit 6)."""
    import json

    from .progress import progress

    fmt = fmt or _default_format()
    with _store(ctx) as store:
        head_seq, head_hash = store.head()
        with progress("verifying", head_seq, "records") as shown:
            checked, broken = store.verify(shown.update)
        edited = store.edited_versions()
    for d in edited:  # not a break: every record names the text it was decided under
        _note(fmt, d.file or "", d.code, d.message, d.hint)
    head = {"seq": head_seq, "hash": head_hash}  # publish it elsewhere to prove the store was not rewritten whole
    if fmt == "json":
        click.echo(json.dumps({"records": checked, "ok": broken is None,
                               "break": broken.to_dict() if broken else None, "head": head}))
    elif broken is None:
        click.echo(f"chain intact: {checked} record(s); head: record {head_seq}, hash {head_hash}")
    else:
        click.echo(f"chain BROKEN at record {broken.seq} ({broken.decision_id or '-'}): {broken.kind}: "
                   f"{broken.detail}")
    if broken is not None:
        if _json_notes(fmt):  # the report is on stdout; stderr's document says what set exit 6, as other reports do
            from .diagnostics import Diagnostic

            _finish(fmt, [Diagnostic("chain-broken", f"the chain breaks at record {broken.seq} "
                                     f"({broken.decision_id or '-'}): {broken.kind}: {broken.detail}",
                                     file=str(store.path), hint="`audit show` the record; restore the store from "
                                     "a copy whose head hash was published")])
        sys.exit(EXIT_AUDIT)
    _finish(fmt, [])


@audit.command("replay")
@click.argument("ref", required=False)
@click.option("--all", "replay_all", is_flag=True,
              help="Replay every recorded decision (with filters: every one they match).")
@_with_filters
@click.option("--strict", is_flag=True,
              help="Exit 6 also when a record cannot be replayed (its input stored as a hash only) or when nothing "
                   "matched: a CI check that replayed nothing has not passed.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default=None)
@click.pass_context
@handle_errors
def audit_replay(ctx: click.Context, ref: str | None, replay_all: bool, client: str | None, policy_id: str | None,
                 policy_version: str | None, grade: str | None, date_from: str | None, date_to: str | None,
                 strict: bool, fmt: str | None) -> None:
    """Re-decide from the stored policy text and input with today's engine; exit 6 on any difference
    (with --strict, on a record that cannot be replayed or on filters that match nothing too).

    Give one decision (ID or record number), --all, or the filters of `audit list` to replay what they match.
    """
    from .progress import Progress, progress
    from .record.audit import check_filters

    filters = (client, policy_id, policy_version, grade, date_from, date_to)
    filtered = any(f is not None for f in filters)
    if ref and (replay_all or filtered):
        raise click.UsageError("give one decision (ID or record number), or --all / filters, not both")
    if not ref and not replay_all and not filtered:
        raise click.UsageError("give one decision (ID or record number), --all, or filters such as --grade")
    fmt = fmt or _default_format()
    counts = {"identical": 0, "different": 0, "not-replayable": 0}
    with _store(ctx) as store:
        if not ref:
            check_filters(store, policy_id, policy_version, grade, date_from, date_to)
        rows = [store.get(ref)] if ref else store.query(*filters)
        # Every record is to be replayed: the chain head's number is the total; filtered, the count so far.
        shown = Progress("", enabled=False) if ref else \
            progress("replaying", None if filtered else store.head()[0], "records")
        with shown:
            reworded = _replay_rows(store, rows, fmt, bool(ref), shown, counts)
        lost = None if ref or filtered else _records_missing(store, sum(counts.values()), "replayed")
    from .diagnostics import Diagnostic

    anew = f" ({reworded} with their reasons for missing data worded anew)" if reworded else ""
    said = (f"{counts['identical']} identical{anew}, {counts['different']} different, "
            f"{counts['not-replayable']} not replayable")
    failures = []
    if not any(counts.values()):  # filters of records that exist, none of them together (or a store of none)
        nothing = Diagnostic("nothing-replayed", "no recorded decision matches: nothing was replayed",
                             hint="`audit list` with the same filters shows what is recorded")
        if strict:
            failures.append(nothing)
        else:
            _note(fmt, str(store.path), nothing.code, nothing.message)
    if counts["different"]:
        failures.append(Diagnostic("replay-different", said))
    if strict and counts["not-replayable"]:  # nothing differs: these were never re-decided
        n = counts["not-replayable"]
        failures.append(Diagnostic(
            "not-replayable", f"{n} record{'s' if n != 1 else ''} cannot be replayed ({said}): only the input's hash "
            "was stored", hint="decisions recorded with --audit-inputs full (the default) keep their input"))
    if lost is not None:
        failures.append(lost)
    if not failures:
        _say(fmt, "replayed", said)
    _finish(fmt, failures)
    failed = bool(failures)
    if failed:
        sys.exit(EXIT_AUDIT)


def _replay_rows(store: Any, rows: Any, fmt: str, one: bool, shown: Any, counts: dict[str, int]) -> int:
    """Replay each row, writing its line (text: a difference, or ``one`` record asked for), counting each status;
    how many replayed identical with their reasons for missing data worded otherwise by this engine."""
    import json

    reworded = 0
    for r in rows:
        status, diffs, worded = store.replay_worded(r)
        shown.update()
        counts[status] += 1
        reworded += bool(worded) and status == "identical"
        if fmt == "json":
            line = {"seq": r["seq"], "decision_id": r["decision_id"], "status": status, "differences": diffs}
            click.echo(json.dumps({**line, "reworded": worded} if worded else line, ensure_ascii=False))
        elif status != "identical" or one:
            shown.clear()  # the difference gets its own line, not the tail of the progress line
            click.echo(f"record {r['seq']} ({r['decision_id']}): {status}")
            for d in diffs:
                click.echo(f"    {d}")
            for d in worded:
                click.echo(f"    reworded: {d}")
    return reworded


# ------------------------------------------------------------------ generate


_GENERATE_DAY = "2025-06-30"


def _generate_day(ctx: click.Context, policy: str | None) -> str:
    """generate's day when --as-of is not given: 2025-06-30, or today for a policy none of whose versions
    applies then (a new one): the portfolio is one its version decides."""
    import datetime as dt

    from .diagnostics import UsageError

    if policy is None:
        return _GENERATE_DAY
    ref = _ref(ctx, policy, None)
    for day in (_GENERATE_DAY, dt.date.today().isoformat()):
        try:
            chosen = ref.for_day(day)
        except UsageError:
            continue
        if ref.pinned is None or chosen.applies_on(day):
            return day
    return _GENERATE_DAY  # the version chosen then says why it cannot be


def _policy_ref(ctx: click.Context, ref: str, day: str | None = None) -> Any:
    """ID (the version in force on ``day``, default today), ID@VERSION, or a policy file: one compiled policy."""
    return _ref(ctx, ref, None).for_day(day)


@main.command()
@click.option("--n", "count", type=click.IntRange(min=1), default=1000, show_default=True, help="Number of clients.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=7, show_default=True,
              help="Same seed, same portfolio (0 or more).")
@click.option("--as-of", default=None,
              help="Date the portfolio describes (default 2025-06-30; with -p, today when the policy has no version "
                   "in force on 2025-06-30, such as one just made by init).")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True,
              help="Output file: .csv (flat columns) or .jsonl (one client record per line); with --tables, a folder.")
@click.option("--policy", "-p", default=None,
              help="Draw the clients from this policy's inputs (ID: the version in force on --as-of, ID@VERSION or "
                   "a file); without it, the tuned portfolio of the reference client record.")
@click.option("--periods", type=click.IntRange(min=1, max=400), default=4, show_default=True,
              help="With --policy: periods of each series (some clients get fewer).")
@click.option("--tables", "tables", type=click.Choice(["parquet", "csv"]), default=None,
              help="With a policy with scopes: write the long tables (debtors, exposures, payments, ...) of this "
                   "format into the folder --out, chunk by chunk.")
@click.option("--partitions", type=click.IntRange(min=1), default=None,
              help="With --tables: a dataset for batch --engine dask, K folders part-NNNNN of consecutive debtors "
                   "(the same debtors as without it).")
@click.pass_context
@handle_errors
def generate(ctx: click.Context, count: int, seed: int, as_of: str | None, out: Path, policy: str | None,
             periods: int, tables: str | None, partitions: int | None) -> None:
    """Write a seeded synthetic portfolio: for any policy from its declared inputs (-p), or the reference one."""
    from .decide.inputs import parse_date
    from .portfolio import synthetic
    from .progress import progress

    given = as_of is not None
    as_of = as_of or _generate_day(ctx, policy)
    if parse_date(as_of) is None:
        raise click.BadParameter(f"{as_of!r} is not a date YYYY-MM-DD", param_hint="--as-of")
    if partitions is not None and tables is None:
        raise click.BadParameter("partitions of long tables: give --tables parquet (or csv)", param_hint="--partitions")
    if partitions is not None and partitions > count:
        raise click.BadParameter(f"{partitions} partitions of {count} debtors: a partition would hold none",
                                 param_hint="--partitions")
    if tables is not None:
        _generate_tables(ctx, count, seed, as_of, out, policy, periods, tables, partitions or 0, given)
        return
    if out.is_dir():
        raise click.BadParameter(f"{out} is a folder: name a .csv or .jsonl file (or write long tables with "
                                 "--tables)", param_hint="--out")
    if out.suffix not in (".csv", ".jsonl"):
        raise click.BadParameter("use a .csv or .jsonl file name", param_hint="--out")
    # An id: the version in force on the portfolio's day, the one `decide -p ID` will choose for its records.
    compiled = _policy_ref(ctx, policy, as_of) if policy is not None else None
    if compiled is not None and compiled.scoped is not None and out.suffix == ".csv":
        raise click.BadParameter(f"{compiled.id} {compiled.version} declares scopes (a debtor with several exposures): "
                                 "its records are nested, one per line: use a .jsonl file name", param_hint="--out")
    with progress("generating", count, "clients") as shown:
        if out.suffix == ".csv":
            if compiled is None:
                synthetic.write_csv(out, count, seed, as_of, progress=shown.update)
            else:
                synthetic.write_policy_csv(compiled, out, count, seed, as_of, periods, progress=shown.update)
        else:
            import orjson

            from .safetext import json_line

            clients = synthetic.generate_clients(count, seed, as_of) if compiled is None \
                else synthetic.policy_clients(compiled, count, seed, as_of, periods)
            with out.open("wb") as fh:
                for client in clients:
                    fh.write(json_line(orjson.dumps(client)) + b"\n")
                    shown.update()
    click.echo(f"wrote {count} clients to {out}" + (f" for {compiled.id} {compiled.version}" if compiled else ""),
               err=True)


def _generate_tables(ctx: click.Context, count: int, seed: int, as_of: str, out: Path, policy: str | None,
                     periods: int, fmt: str, partitions: int = 0, day_given: bool = True) -> None:
    """``generate --tables``: the long tables of a policy with scopes, one file per table in the folder ``out``.

    The debtors are drawn for the version in force on their day, the one ``batch`` decides them under: without
    --as-of, when that of generate's usual day has no scopes, the day is today's (drawn for today's version and
    dated 2025-06-30, every debtor was refused by the batch of the folder)."""
    import datetime as dt

    from .portfolio import synthetic
    from .progress import progress

    if policy is None:
        raise click.BadParameter("long tables are drawn from a policy with scopes: name it with -p",
                                 param_hint="--tables")
    if out.suffix in (".csv", ".jsonl", ".parquet") or out.is_file():
        raise click.BadParameter(f"{out} names a file: --tables writes a folder of tables", param_hint="--out")
    compiled = _policy_ref(ctx, policy, as_of)
    if compiled.scoped is None and not day_given:
        as_of = dt.date.today().isoformat()
        compiled = _policy_ref(ctx, policy, as_of)
    if compiled.scoped is None:
        raise click.BadParameter(f"{compiled.id} {compiled.version} declares no scopes: its portfolio is one table "
                                 "(a .csv or .jsonl file, without --tables)", param_hint="--tables")
    stale = synthetic.stale_entries(compiled, out, f".{fmt}", partitions)
    if stale:  # a batch of the folder would read them with what this run writes
        raise click.BadParameter(f"{out} holds {', '.join(stale[:3])}{' ...' if len(stale) > 3 else ''}, which this "
                                 "run would not overwrite: a batch of the folder would read them too; give an empty "
                                 "or new folder", param_hint="--out")
    with progress("generating", count, "debtors") as shown:
        rows = synthetic.write_long_tables(compiled, out, count, seed, as_of, periods, f".{fmt}",
                                           progress=shown.update, partitions=partitions)
    listed = ", ".join(f"{name}.{fmt} {n}" for name, n in rows.items())
    where = f"{out} ({partitions} partitions)" if partitions else str(out)
    click.echo(f"wrote the long tables of {count} debtors to {where} for {compiled.id} {compiled.version}: {listed}",
               err=True)


# -------------------------------------------------------------------- schema


@main.command()
@click.argument("name", type=click.Choice(["policy", "module", "client", "decision", "policy-tests", "scenario",
                                           "validate-report", "test-report", "diff-report", "impact-report",
                                           "batch-summary", "errors", "stream-line", "audit-report"]))
@click.option("--policy", "-p", default=None,
              help="client only: the record this policy reads (ID, ID@VERSION or a file), generated from its inputs.")
@click.pass_context
@handle_errors
def schema(ctx: click.Context, name: str, policy: str | None) -> None:
    """Print a JSON Schema (policy, module, client, decision, policy-tests, scenario), or that of a command's JSON
    output (validate-report, test-report, diff-report, impact-report for impact and simulate, batch-summary,
    errors: what a command writes to stderr with --format json, stream-line: each line of decide --stream,
    audit-report: what audit verify, replay, list and show write).

    ``client -p POLICY`` is that policy's data contract (``-p ID``: the version in force today);
    without -p, the shipped client schema, client record 1.x (generated from the reference policy
    1.1.0; client record 2.0 is ``-p loss-client-management@2.0.0``).
    """
    if policy is not None:
        if name != "client":
            raise click.UsageError(f"-p applies to 'schema client' only, not to '{name}'")
        from .decide.contract import dumps, record_schema

        click.echo(dumps(record_schema(_policy_ref(ctx, policy))), nl=False)
        return
    from .policy.schemas import schema_path

    click.echo(schema_path(name).read_text(encoding="utf-8"), nl=False)


# A listing is read by people even through `| grep`: text unless json is asked for.
_list_format = click.option("--format", "fmt", type=click.Choice(["text", "json"]), default=None,
                            help="text (the default, unless the configuration sets one), or json for tools.")


@main.command()
@_list_format
@handle_errors
def functions(fmt: str | None) -> None:
    """List the functions policy expressions may call, the operators and their rules, the message
    formats, the null rules and the built-in names."""
    from .language.expressions import OPERATOR_REFERENCE
    from .language.functions import FUNCTIONS, describe, describe_text
    from .review.reference import language_reference, text

    ref = language_reference()
    if (fmt or _configured_format() or "text") == "json":
        import json

        click.echo(json.dumps({
            "functions": [describe(f) for f in FUNCTIONS.values()],
            "operators": [{"syntax": syntax, "doc": doc} for syntax, doc in OPERATOR_REFERENCE],
            **ref,
        }, ensure_ascii=False, indent=2))
        return
    for f in FUNCTIONS.values():
        click.echo(describe_text(f))
    click.echo("\noperators:")
    for syntax, doc in OPERATOR_REFERENCE:
        click.echo(f"  {syntax}\n      {doc}")
    click.echo(text(ref))


def _allowed_text(p: dict[str, Any]) -> str:
    """A parameter's values as a reader takes them in: an open range in words ('numbers, at least 0'), where the
    records keep the interval ('[0, ]')."""
    if p["type"] in ("integer", "number") and (p["min"] is None) != (p["max"] is None):
        what = "whole numbers" if p["type"] == "integer" else "numbers"
        return f"{what}, at least {p['min']:g}" if p["max"] is None else f"{what}, at most {p['max']:g}"
    return str(p["allowed"])


@main.command()
@_list_format
@click.option("--policy", "-p", default=None,
              help="The catalogue this policy sees (ID, ID@VERSION or a file): the engine's types plus its own.")
@click.pass_context
@handle_errors
def catalogue(ctx: click.Context, fmt: str | None, policy: str | None) -> None:
    """List the action types policies may recommend, with their parameters and the values each takes."""
    from .policy.catalogue import describe

    entries = describe(_policy_ref(ctx, policy).action_types if policy is not None else None)
    if (fmt or _configured_format() or "text") == "json":
        import json

        click.echo(json.dumps(entries, ensure_ascii=False, indent=2))
        return
    width = max((len(a["action"]) for a in entries), default=0)
    for a in entries:
        flag = "  [a restructuring when granted to a debtor in difficulty]" if a["may_restructure"] else ""
        own = "  [declared by the policy]" if a["origin"] == "policy" else ""
        click.echo(f"{a['action']:<{width}}  {a['en']} / {a['zh']}{flag}{own}")
        for name, p in a["params"].items():
            click.echo(f"    {name}{'' if p['required'] else ' (optional)'}: {_allowed_text(p)}")
        if a["conflicts"]:  # the decision keeps the higher priority of the two and lists the other as suppressed
            click.echo(f"    never beside: {', '.join(a['conflicts'])}")
