"""Build an image from a Dockerfile: stages, steps, cache, layers.

    build(context, Dockerfile) -> parse -> pick the stages the target needs -> per stage:
    FROM (store, earlier stage, locally made base, or scratch) -> per instruction:
      metadata (ENV, CMD, ...)  -> new config, no layer
      RUN / COPY / ADD / WORKDIR -> cache lookup by step key; on a miss the step writes its
                                   diff into a fresh temp `upper` dir -> LayerSink.add_dir
    -> ImageSink.put(final image, tags)

Every step works in its own temp dir under `<state>/build/tmp`, removed in `finally`: a
failing or cancelled step leaves neither a build container dir nor half a layer (a layer
is only created from a step that finished).
"""
from __future__ import annotations

import asyncio
import os
import posixpath
import tempfile
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from runtime.images import bases
from runtime.images.build import metadata
from runtime.images.build import parser as p
from runtime.images.build.cache import BuildCache, state_digest, step_key
from runtime.images.build.context import BuildContext
from runtime.images.build.copy import (
    Entry,
    Owner,
    UpperWriter,
    copy_entries,
    entries_of_dir,
    extract_archive,
    is_archive,
    resolve_chown,
)
from runtime.images.build.errors import BuildError
from runtime.images.build.interfaces import (
    DEFAULT_PATH,
    BuildImage,
    ImageConfig,
    ImageSink,
    LayerSink,
    Progress,
    RunStep,
)
from runtime.images.build.lex import used_names
from runtime.images.build.rootview import RootView, clean_abs
from runtime.images.build_leftovers import remove_tree

# a file step's body: (run, stage state, instruction, upper dir, step temp dir)
_Action = Callable[[Any, Any, Any, Path, Path], Awaitable[None]]
SCRATCH = BuildImage(layers=(), config=ImageConfig())
OUTPUT_TAIL_LINES = 20
# Docker's predefined proxy args: usable without an ARG line, never in the image
PREDEFINED_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
                   "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")


@dataclass
class _Stage:
    """The running state of one stage."""

    image: BuildImage
    index: int
    args: dict[str, str] = field(default_factory=dict)  # ARGs in scope with values

    @property
    def digest(self) -> str:
        return state_digest(self.image)

    def env(self) -> dict[str, str]:
        """What `$VAR` sees: ARGs, overridden by ENV (Docker's precedence)."""
        return {**self.args, **self.image.config.env_dict()}


@dataclass
class _Run:
    """One build(): inputs and bookkeeping shared by its stages."""

    dockerfile: p.Dockerfile
    context: BuildContext
    build_args: Mapping[str, str]
    no_cache: bool
    progress: Progress
    global_args: dict[str, str]
    pull: bool = False
    # Compose's additional_contexts: name -> ("image", ref) or ("dir", BuildContext)
    named: dict[str, tuple[str, Any]] = field(default_factory=dict)
    total: int = 0
    step: int = 0
    used_args: set[str] = field(default_factory=set)
    done: dict[int, BuildImage] = field(default_factory=dict)


def _named(contexts: Mapping[str, str]) -> dict[str, tuple[str, Any]]:
    out: dict[str, tuple[str, Any]] = {}
    for name, value in contexts.items():
        kind, _, target = value.partition(":")
        if kind == "image" and target:
            out[name] = ("image", target)
        elif kind == "dir" and target:
            out[name] = ("dir", BuildContext.open(Path(target)))
        else:
            raise BuildError(f"build context {name}={value!r}: use image:REF or dir:/path")
    return out


def _dir_context(run: _Run, state: _Stage, ref: str) -> BuildContext | None:
    """The directory named context `ref` names (a stage of that name wins, as BuildKit)."""
    if run.dockerfile.stage(ref) is not None and run.dockerfile.stage(ref).index < state.index:  # type: ignore[union-attr]
        return None
    entry = run.named.get(ref)
    return entry[1] if entry is not None and entry[0] == "dir" else None


class Builder:
    """Builds images through the injected sinks and runner (see interfaces.py)."""

    def __init__(
        self,
        *,
        layers: LayerSink,
        images: ImageSink,
        runner: RunStep | None,
        state_root: Path,
        puller: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.layers = layers
        self.images = images
        self.runner = runner
        self.puller = puller  # `pull=True`: fetch a FROM image from its registry first
        self.dir = state_root / "build"
        self.cache = BuildCache(self.dir / "cache", layers)

    # -- entry point --

    async def build(
        self,
        context_dir: str | os.PathLike[str],
        dockerfile_path: str | os.PathLike[str] | None = None,
        *,
        tag: str | Sequence[str] = (),
        target: str | None = None,
        build_args: Mapping[str, str] | None = None,
        no_cache: bool = False,
        progress: Progress | None = None,
        dockerfile_text: str | None = None,
        labels: Mapping[str, str] | None = None,
        pull: bool = False,
        named_contexts: Mapping[str, str] | None = None,
        entitlements: Collection[str] = (),
    ) -> str:
        """Build and store the image; returns its id. Raises BuildError.
        `dockerfile_text`: the Dockerfile itself (Compose's dockerfile_inline; the context's
        .dockerignore applies); `labels` are added to the image's; `pull` fetches each FROM
        image FROM its registry before using it (Docker's --pull). `named_contexts` (Compose's
        additional_contexts): NAME -> "image:REF" (FROM NAME / COPY --from=NAME use that
        image) or "dir:/abs/dir" (COPY --from=NAME copies from that directory).
        `entitlements` (BuildKit's, granted by Compose's build.privileged / build.entitlements
        / build.network: host): "security.insecure" allows RUN --security=insecure,
        "network.host" RUN --network=host; a RUN that needs one not granted fails the build
        before any step runs (as BuildKit checks the whole graph first)."""
        out: Progress = progress or (lambda _line: None)
        started = time.monotonic()
        ctx_dir = Path(context_dir)
        if dockerfile_text is not None:
            text, shown, df_for_ignore = dockerfile_text, "Dockerfile (inline)", None
        else:
            df_path = Path(dockerfile_path) if dockerfile_path is not None else ctx_dir / "Dockerfile"
            if not df_path.is_absolute() and not df_path.exists():
                df_path = ctx_dir / df_path
            try:
                text = df_path.read_text()
            except OSError as e:
                raise BuildError(f"cannot read the Dockerfile: {e.strerror}", file=str(df_path)) from e
            try:
                shown = str(df_path.resolve().relative_to(ctx_dir.resolve()))
            except ValueError:
                shown = str(df_path)
            df_for_ignore = df_path
        dockerfile = p.parse(text, shown)
        for w in dockerfile.warnings:
            out(f"[warning] {w}")
        args = dict(build_args or {})
        if pull and self.puller is None:
            raise BuildError("pull: this builder has no registry client")
        run = _Run(dockerfile, BuildContext.open(ctx_dir, df_for_ignore), args, no_cache, out,
                   self._global_args(dockerfile, args), pull, _named(named_contexts or {}))
        final = self._target(dockerfile, target)
        needed = self._needed(run, final)
        check_entitlements(dockerfile, needed, entitlements)
        run.total = sum(1 + len(dockerfile.stages[i].instructions) for i in needed)
        for i in needed:
            run.done[i] = await self._stage(run, dockerfile.stages[i])
        tags = (tag,) if isinstance(tag, str) else tuple(tag)
        image = run.done[final.index]
        if labels:
            image = replace(image, config=replace(image.config, labels={**image.config.labels, **labels}))
        image_id = self.images.put(image, tags=tags)
        unused = sorted(set(args) - run.used_args - set(PREDEFINED_ARGS))
        if unused:
            out(f"[warning] one or more build-args were not consumed: {', '.join(unused)}")
        out(f"Successfully built {_short(image_id)} in {time.monotonic() - started:.2f}s")
        for t in tags:
            out(f"Successfully tagged {t}")
        return image_id

    # -- planning --

    def _global_args(self, df: p.Dockerfile, build_args: Mapping[str, str]) -> dict[str, str]:
        scope: dict[str, str] = {}
        for inst in df.global_args:
            for name, default in inst.expand(scope).pairs:
                if name in build_args:
                    scope[name] = build_args[name]
                elif default is not None:
                    scope[name] = default
        return scope

    def _target(self, df: p.Dockerfile, target: str | None) -> p.Stage:
        if target is None:
            return df.stages[-1]
        st = df.stage(target)
        if st is None:
            names = ", ".join(s.name for s in df.stages if s.name) or "none"
            raise BuildError(f"target stage {target!r} not found (stages: {names})", file=df.filename)
        return st

    def _needed(self, run: _Run, final: p.Stage) -> list[int]:
        """Indexes of the stages `final` depends on (FROM <stage>, COPY --from), in order."""
        df = run.dockerfile
        seen: set[int] = set()

        def visit(st: p.Stage, path: tuple[int, ...]) -> None:
            if st.index in seen:
                return
            refs = [st.from_.expand(run.global_args).image]
            refs += [i.from_ for i in st.instructions if isinstance(i, p.Copy) and i.from_ is not None]
            for ref in refs:
                dep = self._stage_ref(df, ref, before=st.index)
                if dep is not None:
                    if dep.index in path:
                        raise BuildError(f"stage {st.name or st.index} depends on itself through {ref!r}",
                                         file=df.filename, line=st.from_.line)
                    visit(dep, (*path, dep.index))
            seen.add(st.index)

        visit(final, (final.index,))
        return sorted(seen)

    @staticmethod
    def _stage_ref(df: p.Dockerfile, ref: str, before: int) -> p.Stage | None:
        """The earlier stage `ref` names (name or index), or None: then it is an image."""
        st = df.stage(ref)
        return st if st is not None and st.index < before else None

    # -- a stage --

    async def _stage(self, run: _Run, st: p.Stage) -> BuildImage:
        frm = st.from_.expand(run.global_args)
        self._progress_step(run, frm.text)
        dep = self._stage_ref(run.dockerfile, frm.image, before=st.index)
        if dep is not None:
            image = run.done[dep.index]
        elif frm.image in run.named:
            kind, value = run.named[frm.image]
            if kind != "image":
                raise BuildError(f"FROM {frm.image}: that build context is a directory, not an image",
                                 file=run.dockerfile.filename, line=frm.line)
            image = await self._base(value, run, frm.line)
        elif frm.image.lower() == "scratch":
            image = SCRATCH
        else:
            image = await self._base(frm.image, run, frm.line)
        run.used_args |= used_names(st.from_.image, run.global_args) & set(run.build_args)
        state = _Stage(image, st.index)
        run.progress(f" ---> {_short(state.digest)}")
        for inst in st.instructions:
            self._progress_step(run, inst.text)
            await self._instruction(run, state, inst)
        return state.image

    async def _base(self, ref: str, run: _Run, line: int) -> BuildImage:
        if run.pull and self.puller is not None:
            run.progress(f"Pulling {ref}")
            try:
                await self.puller(ref)
            except Exception as e:  # noqa: BLE001 - any failure of the pull is the step's error
                raise BuildError(f"pull of {ref} failed (pull: true): {e}", file=run.dockerfile.filename,
                                 line=line) from e
        image = self.images.get(ref)
        if image is not None:
            return image
        if bases.can_create(ref):
            return await bases.ensure_base(ref, layers=self.layers, images=self.images,
                                           cache_dir=self.dir / "bases", progress=run.progress)
        raise BuildError(
            f"base image {ref!r} is not in the image store and cannot be created locally: "
            "load it with `composer image load FILE` (a `docker save` tar) and build again",
            file=run.dockerfile.filename, line=line,
        )

    def _progress_step(self, run: _Run, text: str) -> None:
        run.step += 1
        run.progress(f"Step {run.step}/{run.total} : {text}")

    async def _instruction(self, run: _Run, state: _Stage, inst: p.Instruction) -> None:
        df = run.dockerfile
        try:
            if isinstance(inst, p.Arg):
                self._arg(run, state, inst)
                return
            expanded = inst.expand(state.env())
            if isinstance(expanded, metadata.METADATA):
                before = state.image
                state.image = replace(before, config=metadata.apply(before.config, expanded))
                run.progress(f" ---> {_short(state.digest)}")
            elif isinstance(expanded, p.Run):
                await self._file_step(run, state, expanded, self._run_inputs(state), self._do_run)
            elif isinstance(expanded, p.Copy):
                # hashing the context reads every file COPY names: off the event loop, which
                # also answers the stack's DNS
                inputs = await asyncio.to_thread(self._copy_inputs, run, expanded)
                await self._file_step(run, state, expanded, inputs, self._do_copy)
            elif isinstance(expanded, p.Workdir):
                await self._workdir(run, state, expanded)
            else:  # pragma: no cover - parser and builder out of step
                raise BuildError(f"{inst.keyword} is not supported by the builder")
        except BuildError as e:
            if e.file is None:  # add where it happened
                raise BuildError(e.message, file=df.filename, line=e.line or inst.line,
                                 exit_code=e.exit_code, output=e.output) from e
            raise

    def _arg(self, run: _Run, state: _Stage, inst: p.Arg) -> None:
        for name, default in inst.expand(state.env()).pairs:
            if name in run.build_args:
                state.args[name] = run.build_args[name]
                run.used_args.add(name)
            elif default is not None:
                state.args[name] = default
            elif name in run.global_args:
                state.args[name] = run.global_args[name]
        run.progress(f" ---> {_short(state.digest)}")

    # -- steps that change files --

    def _run_inputs(self, state: _Stage) -> dict[str, str]:
        return {f"arg:{k}": v for k, v in sorted(state.args.items())}

    def _copy_inputs(self, run: _Run, inst: p.Copy) -> dict[str, str]:
        if inst.from_ is not None:
            return {"from": inst.from_}  # resolved to a digest in _file_step via _source_image
        sources = self._context_sources(run, inst)
        return {"context": run.context.digest(sources)}

    def _context_sources(self, run: _Run, inst: p.Copy, context: BuildContext | None = None) -> list[str]:
        ctx = context or run.context
        out: list[str] = []
        for src in inst.sources:
            if "://" in src or src.startswith("git@"):
                raise BuildError(f"{inst.keyword} {src}: remote sources are not supported offline: "
                                 "download the file into the build context and COPY it")
            found = ctx.expand_source(src)
            if not found:
                raise BuildError(f"{inst.keyword}: {src!r} not found in the build context "
                                 "(or excluded by .dockerignore)")
            out += found
        return out

    async def _source_image(self, run: _Run, state: _Stage, state_index_ref: str) -> BuildImage:
        dep = self._stage_ref(run.dockerfile, state_index_ref, before=state.index)
        if dep is not None:
            if dep.index not in run.done:
                raise BuildError(f"COPY --from={state_index_ref}: stage is not built before this one")
            return run.done[dep.index]
        if state_index_ref in run.named and run.named[state_index_ref][0] == "image":
            return await self._base(run.named[state_index_ref][1], run, 0)
        image = self.images.get(state_index_ref)
        if image is None and bases.can_create(state_index_ref):
            image = await bases.ensure_base(state_index_ref, layers=self.layers, images=self.images,
                                            cache_dir=self.dir / "bases", progress=run.progress)
        if image is None:
            raise BuildError(f"COPY --from={state_index_ref}: no such stage or image; "
                             "load the image with `composer image load FILE`")
        return image

    async def _file_step(self, run: _Run, state: _Stage, inst: Any,
                         inputs: dict[str, str], action: _Action) -> None:
        if isinstance(inst, p.Copy) and inst.from_ is not None:
            ctx = _dir_context(run, state, inst.from_)
            if ctx is not None:  # a directory named context: its files, as the build context's
                inputs = {"context:" + inst.from_: await asyncio.to_thread(
                    ctx.digest, self._context_sources(run, inst, ctx))}
            else:
                inputs = {"from": state_digest(await self._source_image(run, state, inst.from_))}
        key = step_key(state.digest, _canonical_text(inst), inputs)
        if not run.no_cache:
            hit = self.cache.get(key)
            if hit is not None:
                state.image = hit
                run.progress(" ---> Using cache")
                run.progress(f" ---> {_short(state.digest)}")
                return
        self.dir.joinpath("tmp").mkdir(parents=True, exist_ok=True)
        step_dir = Path(tempfile.mkdtemp(prefix="step-", dir=self.dir / "tmp"))
        try:
            upper = step_dir / "upper"
            upper.mkdir()
            os.chmod(step_dir, 0o700)
            await action(run, state, inst, upper, step_dir)
            if any(upper.iterdir()):
                layer = await asyncio.to_thread(self.layers.add_dir, upper)
                state.image = replace(state.image, layers=(*state.image.layers, layer))
        finally:
            await asyncio.to_thread(remove_tree, step_dir)
        self.cache.put(key, state.image)
        run.progress(f" ---> {_short(state.digest)}")

    def _view(self, image: BuildImage) -> RootView:
        return RootView([self.layers.path(layer) for layer in image.layers])

    async def _do_run(self, run: _Run, state: _Stage, inst: p.Run, upper: Path, _tmp: Path) -> None:
        if self.runner is None:
            raise BuildError("RUN needs a build runner and none is configured")
        if not state.image.layers:
            raise BuildError("RUN in an image without files (FROM scratch): nothing to run")
        cfg = state.image.config
        argv = (*cfg.shell, inst.command[0]) if inst.shell_form else inst.command
        env = dict(state.args)
        env.update(cfg.env_dict())
        env.setdefault("PATH", DEFAULT_PATH)
        tail: list[str] = []

        def on_output(line: str) -> None:
            tail.append(line)
            del tail[:-OUTPUT_TAIL_LINES]
            run.progress(line)

        extra: dict[str, Any] = {"secrets": inst.secrets} if inst.secrets else {}
        if inst.ssh:
            extra["ssh"] = inst.ssh
        if inst.network != "default":
            extra["network"] = inst.network
        if inst.security != "sandbox":
            extra["security"] = inst.security
        result = await self.runner.run(
            lowerdirs=[str(self.layers.path(layer)) for layer in state.image.layers],
            upper=str(upper), argv=list(argv), env=[f"{k}={v}" for k, v in env.items()],
            cwd=cfg.working_dir or "/", user=cfg.user, on_output=on_output, **extra,
        )
        if result.exit_code != 0:
            out_tail = "\n".join((result.output.splitlines() or tail)[-OUTPUT_TAIL_LINES:])
            shown = inst.command[0] if inst.shell_form else " ".join(inst.command)
            raise BuildError(
                f"RUN {_ellipsis(shown)} failed with exit code {result.exit_code}"
                + (f":\n{out_tail}" if out_tail else ""),
                exit_code=result.exit_code, output=out_tail,
            )

    async def _do_copy(self, run: _Run, state: _Stage, inst: p.Copy, upper: Path, tmp: Path) -> None:
        ctx = _dir_context(run, state, inst.from_) if inst.from_ else None
        src_image = await self._source_image(run, state, inst.from_) if inst.from_ and ctx is None else None
        await asyncio.to_thread(self._copy_sync, run, state, inst, upper, tmp, src_image, ctx)

    def _copy_sync(self, run: _Run, state: _Stage, inst: p.Copy, upper: Path, tmp: Path,
                   src_image: BuildImage | None, context: BuildContext | None = None) -> None:
        view = self._view(state.image)
        writer = UpperWriter(upper, view)
        owner = resolve_chown(inst.chown, view) if inst.chown else None
        chmod = int(inst.chmod, 8) if inst.chmod else None
        dest = clean_abs(inst.dest, state.image.config.working_dir or "/")
        many = len(inst.sources) > 1 or any(c in s for s in inst.sources for c in "*?[")
        dest_is_dir = dest.endswith("/") or view.is_dir(dest)
        if many and not dest_is_dir:
            raise BuildError(f"{inst.keyword} with more than one source needs a directory destination "
                             f"ending with '/': {inst.dest}/")
        dest_rel = dest.strip("/")
        if src_image is not None:
            self._copy_from_image(writer, inst, src_image, dest_rel, dest_is_dir, owner, chmod)
            return
        ctx = context or run.context
        for src in self._context_sources(run, inst, ctx):
            host = ctx.root / src
            if isinstance(inst, p.Add) and is_archive(host):
                extracted = extract_archive(host, tmp)
                copy_entries(writer, entries_of_dir(extracted), dest_rel, owner=owner, chmod=chmod,
                             keep_owner=True)
                continue
            entries = [Entry(posixpath.relpath(rel, src) if rel != src else "", ctx.root / rel, st)
                       for rel, st in ctx.walk(src)]
            is_dir = os.path.isdir(host) and not os.path.islink(host)
            target = dest_rel if is_dir or not dest_is_dir else posixpath.join(dest_rel, posixpath.basename(src))
            copy_entries(writer, entries, target, owner=owner, chmod=chmod, keep_owner=False)

    def _copy_from_image(self, writer: UpperWriter, inst: p.Copy, image: BuildImage, dest_rel: str,
                         dest_is_dir: bool, owner: Owner | None, chmod: int | None) -> None:
        src_view = self._view(image)
        for src in inst.sources:
            rel = src_view.resolve(src)
            if rel == "" and not src.strip("/."):
                matches = [""]
            elif any(c in src for c in "*?["):
                from runtime.images.build.context import go_match
                parent = src_view.resolve(posixpath.dirname(src.strip("/")))
                pat = posixpath.basename(src.rstrip("/"))
                matches = [f"{parent}/{n}" if parent else n for n in src_view.listdir(parent)
                           if go_match(pat, n)]
            else:
                matches = [rel] if src_view.lookup(rel) is not None else []
            if not matches:
                raise BuildError(f"COPY --from={inst.from_}: {src!r} not found in that stage/image")
            for m in matches:
                entries = [Entry(posixpath.relpath(r, m) if r != m else "", host, os.lstat(host))
                           for r, host in src_view.walk(m)]
                is_dir = bool(entries) and os.path.isdir(entries[0].host) and not os.path.islink(entries[0].host)
                target = dest_rel if is_dir or not dest_is_dir else posixpath.join(dest_rel, posixpath.basename(m))
                copy_entries(writer, entries, target, owner=owner, chmod=chmod, keep_owner=True)

    async def _workdir(self, run: _Run, state: _Stage, inst: p.Workdir) -> None:
        path = clean_abs(inst.path, state.image.config.working_dir or "/").rstrip("/") or "/"
        state.image = replace(state.image, config=replace(state.image.config, working_dir=path))
        if path == "/" or self._view(state.image).is_dir(path):
            run.progress(f" ---> {_short(state.digest)}")
            return

        async def mkdir(_run: _Run, st: _Stage, _inst: p.Instruction, upper: Path, _tmp: Path) -> None:
            UpperWriter(upper, self._view(st.image)).ensure_dir(path.strip("/"))

        await self._file_step(run, state, inst, {}, mkdir)


# what a RUN flag needs: (flag, value) -> BuildKit's entitlement, and how Compose grants it
ENTITLEMENTS = {
    ("security", "insecure"): ("security.insecure",
                               "build.privileged: true (or build.entitlements: [security.insecure])"),
    ("network", "host"): ("network.host",
                          "build.entitlements: [network.host] (or build.network: host)"),
}


def check_entitlements(df: p.Dockerfile, stages: Sequence[int], granted: Collection[str]) -> None:
    """A RUN of the stages built that needs an entitlement the build was not granted: one
    BuildError naming the line, the entitlement and the service key that grants it."""
    for i in stages:
        for inst in df.stages[i].instructions:
            if not isinstance(inst, p.Run):
                continue
            for flag, value in (("security", inst.security), ("network", inst.network)):
                need = ENTITLEMENTS.get((flag, value))
                if need is not None and need[0] not in granted:
                    raise BuildError(
                        f"RUN --{flag}={value} needs the {need[0]} entitlement, which this "
                        f"build was not granted: set {need[1]} on the service",
                        file=df.filename, line=inst.line)


def _canonical_text(inst: p.Instruction) -> str:
    """The instruction after substitution, without its line number (moving a line must not
    invalidate the cache)."""
    fields = {k: v for k, v in vars(inst).items() if k not in ("line", "escape")}
    return f"{inst.keyword} {fields!r}"


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def _ellipsis(s: str, n: int = 60) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 3] + "..."


async def build(
    context_dir: str | os.PathLike[str],
    dockerfile_path: str | os.PathLike[str] | None = None,
    *,
    layers: LayerSink,
    images: ImageSink,
    runner: RunStep | None,
    state_root: Path,
    tag: str | Sequence[str] = (),
    target: str | None = None,
    build_args: Mapping[str, str] | None = None,
    no_cache: bool = False,
    progress: Progress | None = None,
    dockerfile_text: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> str:
    """One-shot form of Builder(...).build(...)."""
    return await Builder(layers=layers, images=images, runner=runner, state_root=state_root).build(
        context_dir, dockerfile_path, tag=tag, target=target, build_args=build_args,
        no_cache=no_cache, progress=progress, dockerfile_text=dockerfile_text, labels=labels)
