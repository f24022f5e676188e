"""Summarise a `mutmut run` (what `make mutate` prints): counts and score per module, then every survivor.

mutmut's own `results` lists survivor names only (``ordergate.pipeline.money.x_plain__mutmut_6``); this
reads the same files it writes (``mutants/**/*.py.meta`` for outcomes, ``*.py.spans`` for where each generated
function sits) and turns each survivor into ``file:line`` of the original source plus the changed line, so the answer
to "if I broke this line, which test would fail?" is readable without the interactive browser.

Survivors reviewed as equivalent (scripts/mutate_equivalent.py) are listed apart and not counted.
Exit status: 0 when every other mutant was killed (or timed out), 1 when any survived, had no test or was suspicious.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from mutate_equivalent import EQUIVALENT  # beside this script

MUTANTS = Path("mutants")
SEPARATOR = "ǁ"  # mutmut's class/method separator in generated names

# mutmut 3.8's exit-code meanings (mutmut/stats.py), copied so this script needs only the standard library.
STATUS_BY_EXIT_CODE: dict[int | None, str] = {
    1: "killed",
    3: "killed",
    0: "survived",
    5: "no tests",
    33: "no tests",
    34: "skipped",
    35: "suspicious",
    36: "timeout",
    37: "caught by type check",
    24: "timeout",
    -24: "timeout",
    152: "timeout",
    255: "timeout",
    -11: "segfault",
    -9: "segfault",
    2: "interrupted",
    None: "not checked",
}
DETECTED = {"killed", "timeout", "caught by type check", "segfault"}
UNDETECTED = {"survived", "no tests", "suspicious"}


@dataclass(frozen=True)
class Survivor:
    path: str
    line: int
    status: str
    name: str
    removed: list[str]
    added: list[str]


def status_of(code: int | None) -> str:
    return STATUS_BY_EXIT_CODE.get(code, "suspicious")


def def_line(source: str, function: str, klass: str | None) -> int:
    """Line of ``def function`` (inside ``class klass`` when given) in the original source; 0 if not found."""
    tree = ast.parse(source)
    scopes: list[ast.AST] = [tree]
    if klass is not None:
        scopes = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == klass]
    for scope in scopes:
        for node in ast.iter_child_nodes(scope):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == function:
                return node.lineno
    return 0


def split_key(local: str) -> tuple[str, str | None]:
    """``x_plain`` -> (plain, None); ``xǁPaperBrokerǁplace_order`` -> (place_order, PaperBroker)."""
    if SEPARATOR in local:
        _, klass, function = local.split(SEPARATOR, 2)
        return function, klass
    return local.removeprefix("x_"), None


def survivors_of(relative: Path, undetected: dict[str, str]) -> list[Survivor]:
    generated = (MUTANTS / relative).read_text().splitlines()
    spans: dict[str, list[int]] = json.loads((MUTANTS / f"{relative}.spans").read_text())["spans"]
    source = relative.read_text()
    found = []
    for name, status in undetected.items():
        local = name.rpartition(".")[2]  # x_plain__mutmut_6
        mangled, _, _ = local.partition("__mutmut_")
        function, klass = split_key(mangled)
        start, end = spans[f"{mangled}__mutmut_orig"]
        original = generated[start - 1 : end]
        start, end = spans[local]
        # the generated copies differ in their own name on the def line; that is not the mutation
        mutated = [text.replace(local, f"{mangled}__mutmut_orig") for text in generated[start - 1 : end]]
        offset, removed, added = 0, [], []
        matcher = difflib.SequenceMatcher(a=original, b=mutated, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag != "equal":
                offset = i1
                removed, added = original[i1:i2], mutated[j1:j2]
                break
        line = def_line(source, function, klass) + offset
        strip = [text.strip() for text in removed], [text.strip() for text in added]
        found.append(Survivor(str(relative), line, status, name, *strip))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", type=Path, help="report only these source files (default: all)")
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    wanted = {path.as_posix().removeprefix("./") for path in args.modules}

    rows: list[tuple[str, dict[str, int]]] = []
    survivors: list[Survivor] = []
    for meta in sorted(MUTANTS.rglob("*.py.meta")):
        relative = meta.relative_to(MUTANTS).with_suffix("")  # ordergate/pipeline/money.py
        if wanted and relative.as_posix() not in wanted:
            continue
        codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue
        statuses = {name: status_of(code) for name, code in codes.items()}
        counts: dict[str, int] = {}
        for status in statuses.values():
            counts[status] = counts.get(status, 0) + 1
        rows.append((str(relative), counts))
        survivors += survivors_of(relative, {n: s for n, s in statuses.items() if s in UNDETECTED})

    reviewed = {(path, before, after): why for path, before, after, why in EQUIVALENT}
    equivalent = [s for s in survivors if (s.path, " / ".join(s.removed), " / ".join(s.added)) in reviewed]
    survivors = [s for s in survivors if s not in equivalent]
    for path, counts in rows:
        for s in equivalent:
            if s.path == path:
                counts[s.status] -= 1
                counts["equivalent"] = counts.get("equivalent", 0) + 1

    header = f"{'module':<34} {'mutants':>7} {'killed':>6} {'timeout':>7} {'survived':>8} {'no test':>7} {'equiv':>5}"
    lines = [f"{header} {'score':>7}"]
    total: dict[str, int] = {}
    for path, counts in [*rows, ("TOTAL", total)]:
        if path != "TOTAL":
            for status, n in counts.items():
                total[status] = total.get(status, 0) + n
        checked = sum(n for status, n in counts.items() if status not in {"skipped", "not checked", "equivalent"})
        detected = sum(counts.get(status, 0) for status in DETECTED)
        score = f"{100 * detected / checked:.1f}%" if checked else "-"
        survived = counts.get("survived", 0) + counts.get("suspicious", 0)
        lines.append(
            f"{path:<34} {checked + counts.get('equivalent', 0):>7} {counts.get('killed', 0):>6} "
            f"{counts.get('timeout', 0):>7} {survived:>8} {counts.get('no tests', 0):>7} "
            f"{counts.get('equivalent', 0):>5} {score:>7}"
        )
    lines.append("score = (killed + timeout) / (mutants - equivalent)")
    if total.get("not checked"):
        lines.append(f"{total['not checked']} mutants were not checked (run interrupted?)")
    lines.append("")
    lines.append(f"{len(survivors)} survivors (no test fails when this line is changed so):")
    for s in sorted(survivors, key=lambda s: (s.path, s.line, s.name)):
        change = f"{' / '.join(s.removed)!r} -> {' / '.join(s.added)!r}"
        lines.append(f"{s.path}:{s.line}: [{s.status}] {change}  ({s.name.rpartition('.')[2]})")
    if equivalent:
        lines.append("")
        lines.append(f"{len(equivalent)} equivalent, not counted (reviewed in scripts/mutate_equivalent.py):")
        for s in sorted(equivalent, key=lambda s: (s.path, s.line, s.name)):
            why = reviewed[(s.path, " / ".join(s.removed), " / ".join(s.added))]
            lines.append(f"{s.path}:{s.line}: {' / '.join(s.added)!r}: {why}")
    report = "\n".join(lines) + "\n"
    print(report, end="")
    if args.output:
        args.output.write_text(report)
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
