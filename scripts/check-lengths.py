#!/usr/bin/env python3
"""Fails when Rust code outgrows what a newcomer can hold in their head (issue #18): a non-test
`.rs` file under `src/` or `crates/*/src/` longer than 600 lines, or a non-test function longer
than 60 lines (from its `fn` line to its closing brace).

Test code does not count: files named `*tests*.rs`, files under a `tests/` directory, items under
`#[cfg(test)]` (an inline `mod tests { ... }` and its lines; an out-of-line `mod name;` makes
that whole file test code) and functions marked `#[test]` or `#[...::test]`.

Usage: scripts/check-lengths.py [PATH...]   (report only on these files or directories)
Prints the offenders, then one summary line; exits 1 when there are offenders.
"""

import argparse
import bisect
import re
import sys
from fnmatch import fnmatch
from pathlib import Path

MAX_FILE_LINES = 600
MAX_FN_LINES = 60

ROOT = Path(__file__).resolve().parent.parent
IDENT = re.compile(r"[A-Za-z0-9_]")
FN = re.compile(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)")
CFG_TEST = re.compile(r"#\s*\[\s*cfg\s*\(\s*(?:all\s*\(\s*)?test\b")
INNER_CFG_TEST = re.compile(r"#!\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]")
MOD_DECL = re.compile(r"(?:pub\s*(?:\([^()]*\))?\s*)?mod\s+([A-Za-z_][A-Za-z0-9_]*)\s*;\Z")
PATH_ATTR = re.compile(r'path\s*=\s*"')
# What may stand between a function's attributes and its `fn`.
QUALIFIERS = re.compile(
    r'(?:\bpub\s*(?:\([^()]*\))?\s*)?(?:\b(?:default|const|async|unsafe|safe)\s+)*'
    r'(?:\bextern\s*(?:"[^"]*"\s*)?)?\Z'
)
TEST_ATTR = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*::)*test\b")


def blank(text):
    """`text` with comments and the contents of string and char literals replaced by spaces
    (newlines kept), so that braces, `fn` and attributes can be found by position alone."""
    out = list(text)
    n = len(text)

    def wipe(start, end):
        for k in range(max(start, 0), min(end, n)):
            if out[k] != "\n":
                out[k] = " "

    i = 0
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            wipe(i, end)
            i = end
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:  # block comments nest in Rust
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            wipe(i, j)
            i = j
        elif c in "rbc" and (i == 0 or not IDENT.match(text[i - 1])):
            m = re.compile(r'(?:br|cr|r)(#*)"').match(text, i)
            if not m:
                i += 1
                continue
            close = '"' + m.group(1)
            end = text.find(close, m.end())
            end = n if end < 0 else end
            wipe(m.end(), end)
            i = end + len(close)
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            wipe(i + 1, j)
            i = j + 1
        elif c == "'":
            # A char literal ('x', '\n', '\u{..}'), else a lifetime or label, left as is.
            if i + 1 < n and text[i + 1] == "\\":
                end = text.find("'", i + 3)
            elif i + 2 < n and text[i + 2] == "'":
                end = i + 2
            else:
                i += 1
                continue
            end = n if end < 0 else end
            wipe(i + 1, end)
            i = end + 1
        else:
            i += 1
    return "".join(out)


def matching(code):
    """Position of each `{` / `[` / `(` mapped to its closer, and each closer to its opener."""
    pairs, stack = {}, []
    for i, c in enumerate(code):
        if c in "{[(":
            stack.append(i)
        elif c in "}])" and stack:
            j = stack.pop()
            pairs[j], pairs[i] = i, j
    return pairs


def item_end(code, start):
    """The first `{` or `;` outside parentheses and brackets from `start`: where an item's body
    begins, or where a bodiless item ends."""
    depth = 0
    for i in range(start, len(code)):
        c = code[i]
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif depth == 0 and c in "{;":
            return i
    return None


class Source:
    def __init__(self, path):
        self.path = path
        self.text = path.read_text(encoding="utf-8")
        self.code = blank(self.text)
        self.pairs = matching(self.code)
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", self.text)]
        self.lines = self.text.count("\n") + (0 if self.text.endswith("\n") else 1)

    def line(self, pos):
        return bisect.bisect_right(self.line_starts, pos)

    def skip_attributes(self, pos):
        """Past whitespace and outer attributes from `pos`; also the `#[path]` given, if any."""
        path = None
        while True:
            while pos < len(self.code) and self.code[pos].isspace():
                pos += 1
            if not self.code.startswith("#", pos):
                return pos, path
            bracket = self.code.find("[", pos)
            close = self.pairs.get(bracket)
            if close is None or self.code[pos + 1 : bracket].strip():
                return pos, path
            m = PATH_ATTR.search(self.code, bracket, close)
            if m:
                path = self.text[m.end() : self.text.index('"', m.end())]
            pos = close + 1

    def attributes_before(self, pos):
        """The outer attributes (their inner text) of the item whose keyword is at `pos`."""
        q = QUALIFIERS.search(self.code, max(0, pos - 200), pos)
        i = q.start() if q else pos
        attrs = []
        while True:
            j = i - 1
            while j >= 0 and self.code[j].isspace():
                j -= 1
            opener = self.pairs.get(j) if j >= 0 and self.code[j] == "]" else None
            hash_at = None if opener is None else self.code.rfind("#", 0, opener)
            if hash_at is None or hash_at < 0 or self.code[hash_at + 1 : opener].strip():
                return attrs
            attrs.append(self.code[opener + 1 : j].strip())
            i = hash_at

    def test_regions(self):
        """Line ranges of `#[cfg(test)]` items, and the files of out-of-line ones."""
        regions, files = [], []
        for m in CFG_TEST.finditer(self.code):
            attr_close = self.pairs.get(self.code.find("[", m.start()))
            if attr_close is None:
                continue
            start, path = self.skip_attributes(attr_close + 1)
            end = item_end(self.code, start)
            if end is None:
                continue
            if self.code[end] == "{":
                end = self.pairs.get(end, len(self.code) - 1)
            else:
                decl = MOD_DECL.match(" ".join(self.code[start : end + 1].split()))
                if decl:
                    files.append(self.module_file(decl.group(1), path))
            regions.append((self.line(m.start()), self.line(end)))
        return regions, files

    def module_file(self, name, path):
        if path is not None:
            return (self.path.parent / path).resolve()
        own_dir = self.path.name in ("mod.rs", "lib.rs", "main.rs")
        base = self.path.parent if own_dir else self.path.parent / self.path.stem
        flat = base / f"{name}.rs"
        return (flat if flat.exists() else base / name / "mod.rs").resolve()

    def functions(self):
        """(line, name, length in lines) of each function with a body and no test attribute."""
        for m in FN.finditer(self.code):
            body = item_end(self.code, m.end())
            if body is None or self.code[body] == ";":
                continue
            if any(TEST_ATTR.fullmatch(a) for a in self.attributes_before(m.start())):
                continue
            close = self.pairs.get(body, len(self.code) - 1)
            first = self.line(m.start())
            yield first, m.group(1), self.line(close) - first + 1


def is_test_file(path):
    rel = path.relative_to(ROOT)
    return fnmatch(path.name, "*tests*.rs") or "tests" in rel.parts[:-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="only report on these")
    args = parser.parse_args()
    only = [p.resolve() for p in args.paths]

    files = sorted(ROOT.glob("src/**/*.rs")) + sorted(ROOT.glob("crates/*/src/**/*.rs"))
    sources = [Source(p.resolve()) for p in files if not is_test_file(p.resolve())]
    regions, test_files = {}, set()
    for source in sources:
        regions[source.path], cfg_test_files = source.test_regions()
        test_files.update(cfg_test_files)
        if INNER_CFG_TEST.search(source.code):
            test_files.add(source.path)

    offenders, checked = [], 0
    longest_file, longest_fn = (0, None), (0, None)
    for source in sources:
        if source.path in test_files:
            continue
        if only and not any(source.path == o or o in source.path.parents for o in only):
            continue
        checked += 1
        rel = source.path.relative_to(ROOT)
        test_lines = set()
        for first, last in regions[source.path]:
            test_lines.update(range(first, last + 1))
        lines = source.lines - len(test_lines)
        longest_file = max(longest_file, (lines, f"{rel} ({lines} lines)"))
        if lines > MAX_FILE_LINES:
            offenders.append(f"{rel}: {lines} lines (limit {MAX_FILE_LINES})")
        for line, name, length in source.functions():
            if line in test_lines:
                continue
            where = f"{rel}:{line} fn {name} ({length} lines)"
            longest_fn = max(longest_fn, (length, where))
            if length > MAX_FN_LINES:
                offenders.append(f"{rel}:{line}: fn {name} is {length} lines (limit {MAX_FN_LINES})")

    for offender in offenders:
        print(offender)
    print(
        f"check-lengths: {checked} files checked; longest file: {longest_file[1]}; "
        f"longest function: {longest_fn[1]}; {len(offenders)} over the limits "
        f"({MAX_FILE_LINES} lines a file, {MAX_FN_LINES} a function)"
    )
    return 1 if offenders else 0


if __name__ == "__main__":
    sys.exit(main())
