"""``vidtl-compare``: train several recipes on your data with one budget and tabulate them.

    vidtl-compare data=folder data.root=/data/mine trainer.max_epochs=12
    vidtl-compare --recipes probe,full_tsm --views 1x1,3x3 data=csv data.root=/data/mine

Arguments that are not options are ``vidtl-train`` overrides for every recipe
(``conf/recipe/``). Every recipe's config is composed and its time estimated
(:mod:`vidtl.cli.recipe_estimate`) before anything trains; the recipes then run cheapest first,
each as its own ``vidtl-train`` process in ``<out>/<recipe>/`` (a failed one is listed, the
others go on), are scored again at ``--views`` with ``vidtl-eval``, and ``<out>/results.csv``
is rewritten after each (:mod:`vidtl.sweeps.recipe_table`). docs/recipes.md has the details.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from vidtl.assembly.config_files import config_dir
from vidtl.cli.comparison_folder import (
    FolderLock,
    check_folder,
    path_value,
    recorded_minutes,
    settings,
    write_plan,
)
from vidtl.cli.recipe_estimate import (
    cache_identity,
    estimated_minutes,
    measure_data,
    measure_model,
)
from vidtl.core.errors import UserError
from vidtl.sweeps.recipe_table import format_table, recipe_row, run_checkpoint, write_recipe_table
from vidtl.sweeps.sweep_table import read_metrics

DEFAULT_RECIPES = ("probe", "probe_transformer", "probe_224", "adapter", "full_avg", "full_tsm")


def available_recipes() -> list[str]:
    return sorted(p.stem for p in (Path(config_dir()) / "recipe").glob("*.yaml"))


def parse_view(text: str) -> tuple[int, int]:
    """``"3x1"`` as (clips, crops)."""
    clips, _, crops = text.partition("x")
    if not (clips.isdecimal() and crops.isdecimal() and int(clips) > 0 and int(crops) > 0):
        raise argparse.ArgumentTypeError(f"a view count is CLIPSxCROPS such as 3x1, got {text!r}")
    return int(clips), int(crops)


def recipe_list(text: str) -> list[str]:
    """``"probe,full_tsm"`` as recipe names, each one of conf/recipe/."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in available_recipes()]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown recipe {', '.join(unknown) or repr(text)}; expected some of "
            + ", ".join(available_recipes()))
    return list(dict.fromkeys(names))


def view_list(text: str) -> list[str]:
    """``"1x1,3x3"`` as view counts (each checked)."""
    views = [parse_view(view.strip()) for view in text.split(",") if view.strip()]
    return list(dict.fromkeys(f"{clips}x{crops}" for clips, crops in views))


def folder(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("--out needs a folder")
    return Path(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidtl-compare", description=__doc__.split("\n\n")[0],
        epilog="Recipes: " + ", ".join(available_recipes()) + " (conf/recipe/*.yaml).")
    parser.add_argument("--recipes", type=recipe_list, default=list(DEFAULT_RECIPES),
                        metavar="R1,R2", help="comma-separated (default: "
                        + ",".join(DEFAULT_RECIPES) + ")")
    parser.add_argument("--views", type=view_list, default=[], metavar="CxK,...",
                        help="test views per recipe, e.g. 1x1,3x1,3x3 (clips x crops; "
                             "default: the data's num_test_clips x num_test_crops, 1x1)")
    parser.add_argument("--out", type=folder, default=None,
                        help="default: <paths.log_dir>/compare/<start time>")
    parser.add_argument("--estimate-only", action="store_true",
                        help="print the plan and the estimates, train nothing")
    parser.add_argument("--no-estimate", action="store_true",
                        help="skip the measurements that make the estimate")
    parser.add_argument("overrides", nargs="*", help="vidtl-train overrides, e.g. data.root=DIR")
    return parser


def check_overrides(overrides: list[str]) -> None:
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if "=" not in override and not override.startswith("~"):
            raise UserError(f"{override!r} is not an override: give key=value, e.g. "
                            "data.root=/data/mine (or ~key to delete one)")
        if (key in ("recipe", "hydra", "paths.output_dir")
                or key.startswith(("hydra.", "hydra/", "recipe.", "recipe/"))):
            raise UserError(f"{override!r}: vidtl-compare sets the recipe and the run folders "
                            "itself (--recipes, --out)")


def recipe_keys(recipe: str) -> set[str]:
    """What ``conf/recipe/<recipe>.yaml`` sets: its dotted keys and the groups it overrides
    (``model/temporal``), with those of the recipes it builds on."""
    config = OmegaConf.load(Path(config_dir()) / "recipe" / f"{recipe}.yaml")
    keys: set[str] = set()
    for entry in config.get("defaults") or []:
        if isinstance(entry, str) and entry != "_self_":
            keys |= recipe_keys(entry)  # a recipe it builds on
        elif isinstance(entry, DictConfig):
            keys |= {str(k).removeprefix("override ").strip("/") for k in entry}
    body = OmegaConf.to_container(config)
    assert isinstance(body, dict)
    body.pop("defaults", None)

    def walk(node: Any, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                keys.add(f"{prefix}{key}")

    walk(body, "")
    return keys


def recipe_overrides(recipe: str, overrides: list[str]) -> list[str]:
    """``overrides`` less those the recipe sets itself (a recipe's own settings win: the
    command line sets everything else)."""
    own = recipe_keys(recipe)
    kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in own]
    dropped = [o for o in overrides if o not in kept]
    if dropped:
        print(f"{recipe}: keeps its own settings, not {' '.join(dropped)}", flush=True)
    return kept


def compose_recipes(recipes: list[str], overrides: list[str]
                    ) -> dict[str, tuple[DictConfig, list[str]]]:
    """Each recipe's full training config, composed as ``vidtl-train`` would, with the
    overrides it runs with; a recipe that would run exactly as an earlier one is left out."""
    configs: dict[str, tuple[DictConfig, list[str]]] = {}
    with initialize_config_dir(config_dir(), version_base="1.3"):
        for recipe in recipes:
            own = recipe_overrides(recipe, overrides)
            try:
                cfg = compose("train", overrides=[f"recipe={recipe}", *own])
            except HydraException as error:
                raise UserError(f"recipe {recipe} with {' '.join(own)}: {error}") from error
            same = [r for r, (c, _) in configs.items() if same_run(c, cfg)]
            if same:
                print(f"{recipe}: the same run as {same[0]} with these settings, left out",
                      flush=True)
                continue
            configs[recipe] = (cfg, own)
    return configs


def same_run(first: DictConfig, second: DictConfig) -> bool:
    """Whether two composed configs train the same run (the recipe's name aside)."""
    def plain(cfg: DictConfig) -> Any:
        body = OmegaConf.to_container(cfg, resolve=False)
        assert isinstance(body, dict)
        body.pop("recipe", None)
        return body

    return plain(first) == plain(second)


def measured(recipe: str, measure: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """``measure(cfg)``; a recipe whose data or model cannot be built stops the comparison
    before anything trains, with one line naming it."""
    try:
        return measure(cfg)
    except UserError:
        raise
    except (HydraException, OmegaConfBaseException, ValueError, TypeError, KeyError,
            OSError) as error:
        raise UserError(f"recipe {recipe} cannot be built: {error}") from None


def estimate_recipes(configs: dict[str, DictConfig]) -> dict[str, float]:
    """Minutes per recipe on this machine (:mod:`vidtl.cli.recipe_estimate`), in the order
    they will run (cheapest first; of the recipes sharing a feature cache, the first
    extracts)."""
    first = next(iter(configs.values()))
    print("estimating: decoding a few training clips, a few steps of each recipe ...",
          flush=True)
    data = measured(next(iter(configs)), measure_data, first)
    print(f"data: {data.train_videos} training, {data.val_videos} validation, "
          f"{data.test_videos} test videos; {data.decode_seconds:.2f} s to decode a clip",
          flush=True)
    models = {recipe: measured(recipe, measure_model, cfg) for recipe, cfg in configs.items()}
    alone = {r: estimated_minutes(configs[r], data, models[r]) for r in configs}
    estimates, caches = {}, set()
    for recipe in sorted(configs, key=alone.__getitem__):
        cache = cache_identity(configs[recipe])
        estimates[recipe] = estimated_minutes(configs[recipe], data, models[recipe],
                                              extracted=cache in caches)
        caches.add(cache)
    return estimates


def describe(recipe: str) -> str:
    """The summary line of ``conf/recipe/<recipe>.yaml`` (``# recipe=<name>: <summary>``)."""
    lines = (Path(config_dir()) / "recipe" / f"{recipe}.yaml").read_text().splitlines()
    summary = next((line for line in lines if line.startswith(f"# recipe={recipe}: ")), "")
    return summary.split(": ", 1)[-1].rstrip(".")


def minutes_text(minutes: float) -> str:
    return "<1 min" if minutes < 1 else f"~{minutes:.0f} min"


def print_plan(order: list[str], estimates: dict[str, float], epochs: Any) -> None:
    count = f"{len(order)} recipe" + ("s" if len(order) != 1 else "")
    print(f"\nvidtl-compare: {count}, trainer.max_epochs={epochs} each, "
          "cheapest first", flush=True)
    for number, recipe in enumerate(order, 1):
        guess = minutes_text(estimates[recipe]) if recipe in estimates else "no estimate"
        print(f"  {number}. {recipe:<18} {guess:>12}  {describe(recipe)}", flush=True)
    if estimates:
        print(f"  total: {minutes_text(sum(estimates.values()))} on this machine, without "
              f"each run's start-up ({time.strftime('%H:%M')} now)\n", flush=True)


def vidtl_command(module: str, overrides: list[str], lock: FolderLock) -> int:
    """Run ``python -m <module> <overrides>`` (no shell) and wait; its exit status. The child
    is stopped when this process is interrupted (Ctrl-C, SIGTERM), so that no training goes on
    writing into the comparison's folder."""
    child = subprocess.Popen([sys.executable, "-m", module, *overrides],
                             env={**os.environ, "HYDRA_FULL_ERROR": "0"})
    lock.running(child.pid)
    try:
        return child.wait()
    finally:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        lock.running(None)


def train_recipe(recipe: str, run_dir: Path, overrides: list[str], lock: FolderLock
                 ) -> tuple[str, float | None]:
    """Train one recipe (or reuse its finished run); its status and minutes. A run stopped
    earlier continues from its last checkpoint (``resume=auto``, unless the overrides say)."""
    if run_checkpoint(run_dir) is not None:
        print(f"{recipe}: finished in an earlier run of this comparison, reused", flush=True)
        return "done", recorded_minutes(run_dir)
    resume = [] if "resume" in settings(overrides) else ["resume=auto"]
    start = time.perf_counter()
    code = vidtl_command("vidtl.cli.train", [f"recipe={recipe}", *overrides, *resume,
                                             f"hydra.run.dir={path_value(run_dir)}"], lock)
    minutes = (time.perf_counter() - start) / 60
    return ("done" if code == 0 else f"failed (exit {code})"), minutes


def own_view(cfg: DictConfig) -> str:
    """The view count the training run tests with (``1x1`` by default)."""
    return f"{cfg.data.get('num_test_clips', 1)}x{cfg.data.get('num_test_crops', 1)}"


EVAL_KEYS = ("data.num_workers", "data.persistent_workers", "data.pin_memory",
             "data.batch_size", "data.backend", "trainer.accelerator", "trainer.devices",
             "trainer.precision", "custom_imports", "trusted_targets")


def eval_overrides(overrides: list[str]) -> list[str]:
    """The overrides that also concern ``vidtl-eval`` (how to load and where to compute; the
    rest of the data settings come from the checkpoint)."""
    return [o for o in overrides if o.split("=", 1)[0] in EVAL_KEYS]


def score_views(run_dir: Path, views: list[str], own: str, overrides: list[str],
                lock: FolderLock) -> tuple[dict[str, dict[str, Any] | None], list[str]]:
    """Test metrics of the run's evaluated checkpoint at each view count (``own``: the
    training run's own test, already in its metrics), scored with ``vidtl-eval`` and the
    loader and device settings among ``overrides``; and the view counts that failed."""
    scored: dict[str, dict[str, Any] | None] = {}
    failed = []
    checkpoint = run_checkpoint(run_dir)
    for view in views:
        if view == own or checkpoint is None:
            scored[view] = None
            continue
        clips, crops = parse_view(view)
        view_dir = run_dir / f"views_{view}"
        if read_metrics(view_dir / "metrics.json") is None:
            code = vidtl_command("vidtl.cli.evaluate", [
                f"ckpt_path={path_value(checkpoint)}", f"data.num_test_clips={clips}",
                f"data.num_test_crops={crops}", "subsets=[test]", "logger=none",
                *eval_overrides(overrides), f"hydra.run.dir={path_value(view_dir)}"], lock)
            if code != 0:
                failed.append(f"{view} (exit {code})")
        scored[view] = read_metrics(view_dir / "metrics.json")
    return scored, failed


def run_comparison(configs: dict[str, tuple[DictConfig, list[str]]], order: list[str],
                   out: Path, views: list[str], estimates: dict[str, float],
                   lock: FolderLock) -> list[dict]:
    """Train (and score at ``views``) each recipe of ``order``; the rows of results.csv."""
    rows: list[dict] = []
    for number, recipe in enumerate(order, 1):
        guess = f", estimated {minutes_text(estimates[recipe])}" if recipe in estimates else ""
        print(f"\n[{number}/{len(order)}] {recipe}{guess}, started {time.strftime('%H:%M')}",
              flush=True)
        run_dir = out / recipe
        cfg, overrides = configs[recipe]
        status, minutes = train_recipe(recipe, run_dir, overrides, lock)
        own = own_view(cfg)
        wanted = views or [own]
        scored: dict[str, dict[str, Any] | None] = {v: None for v in wanted}
        if status == "done":
            scored, failed = score_views(run_dir, wanted, own, overrides, lock)
            status = f"done; views failed: {', '.join(failed)}" if failed else status
        rows.append(recipe_row(recipe, run_dir, status, minutes, estimates.get(recipe),
                               scored, own))
        table = write_recipe_table(out, rows)
        print(f"\n{format_table(rows)}\n(results: {table})", flush=True)
    return rows


def stop_on_sigterm(*_: object) -> None:
    raise KeyboardInterrupt  # the same way out as Ctrl-C: the running child is stopped


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        compare(args)
    finally:  # a caller's own handler back (main may run inside another program)
        signal.signal(signal.SIGTERM, previous)


def compare(args: argparse.Namespace) -> None:
    """The comparison :func:`main` runs, SIGTERM raising KeyboardInterrupt."""
    out = None
    try:
        check_overrides(args.overrides)
        if args.out is not None:
            check_folder(args.out, args.overrides)  # before anything is measured
        configs = compose_recipes(args.recipes, args.overrides)
        estimates = ({} if args.no_estimate
                     else estimate_recipes({r: cfg for r, (cfg, _) in configs.items()}))
        order = list(estimates) or list(configs)  # estimates: in the order they run
        first = configs[order[0]][0]
        epochs = OmegaConf.select(first, "trainer.max_epochs", throw_on_resolution_failure=False)
        print_plan(order, estimates, epochs)
        if args.estimate_only:
            return
        out = args.out or Path(str(first.paths.log_dir)) / "compare" / time.strftime(
            "%Y-%m-%d_%H-%M-%S")
        check_folder(out, args.overrides)
        write_plan(out, args.overrides)
        print(f"comparison folder: {out.resolve()}", flush=True)
        with FolderLock(out) as lock:
            rows = run_comparison(configs, order, out.resolve(), args.views, estimates, lock)
    except UserError as error:
        raise SystemExit(f"vidtl-compare: {error}") from None
    except KeyboardInterrupt:
        kept = (" the finished recipes are in its results.csv, and" if out is not None
                and (out / "results.csv").is_file() else "")
        raise SystemExit(f"vidtl-compare: interrupted;{kept} the same command with --out "
                         f"{out or '<comparison folder>'} continues") from None
    failed = [row["recipe"] for row in rows if row["status"] != "done"]
    if failed:
        raise SystemExit(f"vidtl-compare: {len(failed)} of {len(rows)} recipes did not finish "
                         f"cleanly ({', '.join(failed)}); see results.csv and their run folders")


if __name__ == "__main__":
    main()
