"""Building blocks of the synthetic vulnerable/patched programs (``synth_vulns.py``): drawn names, C and Python
surroundings (fillers, correct checks of other kinds, program assembly) and the first program shapes of each CWE.
The other ``synth_shapes_*.py`` modules add more shapes with the same blocks; ``synth_vulns.py`` registers them all."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Callable

CWES = ("cwe-22", "cwe-77", "cwe-79", "cwe-89", "cwe-190", "cwe-416", "cwe-476", "cwe-787")
LANG = {c: ("py" if c in ("cwe-79", "cwe-89") else "c") for c in CWES}


@dataclass(frozen=True)
class SynthPair:
    id: str
    cwe: str
    shape: str
    lang: str
    vulnerable: str
    patched: str


# ----------------------------------------------------------------------------------------------------------- names
NOUNS = ("record", "entry", "item", "packet", "frame", "token", "field", "slot", "block", "chunk", "sample", "row",
         "ticket", "order", "parcel", "badge", "sensor", "reading", "device", "account", "invoice", "message", "note",
         "segment", "cell", "tile", "voucher", "lease", "route", "probe", "metric", "channel", "job", "task", "batch",
         "widget", "asset", "volume", "shelf", "bucket", "region", "label", "event", "alarm", "meter", "beacon")
VERBS = ("load", "parse", "fetch", "store", "build", "apply", "emit", "scan", "merge", "pack", "unpack", "render",
         "report", "update", "collect", "handle", "process", "decode", "encode", "copy", "fill", "read", "write",
         "register", "publish", "archive", "import", "export", "dispatch", "resolve")
ADJ = ("next", "last", "first", "active", "pending", "spare", "local", "remote", "cached", "current", "raw", "new")
WORDS = ("inventory", "weather", "parking", "library", "greenhouse", "billing", "telemetry", "ticketing", "warehouse",
         "payroll", "clinic", "garage", "kiosk", "printer", "thermostat", "camera", "router", "scoreboard", "survey",
         "catalog", "gallery", "mailbox", "calendar", "fleet", "pantry", "workshop", "studio", "observatory")


class R:
    """Drawn names and small choices for one program (names unique within it)."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: set[str] = set()

    def pick(self, seq):
        return self.rng.choice(seq)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def int(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def name(self, style: str = "fn") -> str:
        for _ in range(100):
            if style == "fn":
                n = f"{self.pick(VERBS)}_{self.pick(NOUNS)}"
            elif style == "var":
                n = self.pick(NOUNS) if self.chance(0.5) else f"{self.pick(ADJ)}_{self.pick(NOUNS)}"
            elif style == "type":
                n = f"{self.pick(NOUNS)}"
            elif style == "const":
                n = f"{self.pick(('MAX', 'NUM', 'LIMIT', 'SIZE', 'CAP'))}_{self.pick(NOUNS).upper()}S"
            else:
                n = self.pick(WORDS)
            if n not in self.used:
                self.used.add(n)
                return n
        raise RuntimeError("ran out of names")

    def word(self) -> str:
        return self.pick(WORDS)

    def indent(self) -> str:
        return self.pick(("    ", "    ", "\t", "  "))

    def ret_err(self, void: bool = False) -> str:
        return "return;" if void else self.pick(("return -1;", "return -1;", "return 1;", "return 0;"))


def block(text: str, ind: str) -> str:
    """Re-indent a 4-space template with this program's indent."""
    return re.sub(r"^((?:    )+)", lambda m: ind * (len(m.group(1)) // 4), text, flags=re.M)


# ----------------------------------------------------------------------------------------------------- C fillers
def c_comment(r: R, what: str) -> str:
    w = r.word()
    style = r.int(0, 2)
    text = r.pick((f"{what} for the {w} service.", f"{what}; part of the {w} tool.", f"{what} ({w} build).",
                   f"Helper: {what.lower()}.", f"{what}. Used by the {w} daemon."))
    if r.chance(0.35):  # a longer explanation, as people write above a function
        more = r.pick((f"Called once per request by the {r.word()} front end.",
                       f"The caller owns the input; it comes straight from the {r.pick(('command line', 'network', 'user', 'form'))}.",
                       f"Kept small on purpose: the {r.word()} build runs on old hardware.",
                       f"Returns a negative value on failure, like the rest of the {r.word()} code.",
                       f"Written for the {r.word()} demo; see the notes in the {r.word()} folder."))
        return f"/*\n * {text}\n * {more}\n */\n"
    if style == 0:
        return f"/* {text} */\n"
    if style == 1:
        return f"// {text}\n"
    return f"/*\n * {text}\n */\n"


def c_filler_checksum(r: R, i: str) -> str:
    fn, v, acc = r.name("fn"), r.name("var"), r.pick(("sum", "acc", "h", "total"))
    mul, init = r.pick((31, 33, 131, 17, 65599)), r.pick((0, 5381, 7, 1))
    return (c_comment(r, "Hash of a byte string") + f"static unsigned long {fn}(const unsigned char *{v}, size_t n)\n{{\n"
            + block(f"    unsigned long {acc} = {init};\n    for (size_t k = 0; k < n; k++)\n"
                    f"        {acc} = {acc} * {mul} + {v}[k];\n    return {acc};\n", i) + "}\n")


def c_filler_clamp(r: R, i: str) -> str:
    fn, t = r.name("fn"), r.pick(("int", "long", "double"))
    lo, hi = r.int(-100, 0), r.int(10, 5000)
    return (c_comment(r, "Keep a value inside its range") + f"static {t} {fn}({t} x)\n{{\n"
            + block(f"    if (x < {lo})\n        return {lo};\n    if (x > {hi})\n        return {hi};\n    return x;\n", i)
            + "}\n")


def c_filler_struct(r: R, i: str) -> str:
    t = r.name("type")
    fields = r.rng.sample(["int id;", "char name[32];", "double value;", "unsigned flags;", "long stamp;",
                           "size_t count;", "char tag[8];", "int owner;", "float weight;"], r.int(2, 4))
    return f"struct {t}_info {{\n" + "".join(f"{i}{f}\n" for f in fields) + "};\n"


def c_filler_table(r: R, i: str) -> str:
    name = r.name("var")
    vals = ", ".join(str(r.int(0, 999)) for _ in range(r.int(3, 8)))
    return f"static const int {name}_table[] = {{{vals}}};\n"


def c_filler_trim(r: R, i: str) -> str:
    fn, s = r.name("fn"), r.pick(("s", "str", "text", "line"))
    return (c_comment(r, "Strip trailing blanks in place") + f"static void {fn}(char *{s})\n{{\n"
            + block(f"    size_t n = strlen({s});\n    while (n > 0 && ({s}[n - 1] == ' ' || {s}[n - 1] == '\\n'))\n"
                    f"        {s}[--n] = '\\0';\n", i) + "}\n")


def c_filler_count(r: R, i: str) -> str:
    fn, ch = r.name("fn"), r.pick(("','", "':'", "';'", "' '", "'='"))
    return (c_comment(r, "Count separators in a line") + f"static int {fn}(const char *p)\n{{\n"
            + block(f"    int n = 0;\n    for (; *p != '\\0'; p++) {{\n        if (*p == {ch})\n            n++;\n    }}\n"
                    "    return n;\n", i) + "}\n")


def c_filler_log(r: R, i: str) -> str:
    fn, tag = r.name("fn"), r.word()
    return (c_comment(r, "Print a status line") + f"static void {fn}(const char *what, int code)\n{{\n"
            + block(f'    fprintf(stderr, "[{tag}] %s: %d\\n", what, code);\n', i) + "}\n")


def c_filler_max(r: R, i: str) -> str:
    fn = r.name("fn")
    return (c_comment(r, "Largest element of an array") + f"static int {fn}(const int *a, int n)\n{{\n"
            + block("    int best = a[0];\n    for (int k = 1; k < n; k++) {\n        if (a[k] > best)\n"
                    "            best = a[k];\n    }\n    return best;\n", i) + "}\n")


def c_filler_define(r: R, i: str) -> str:
    return f"#define {r.name('const')} {r.pick((8, 16, 32, 64, 100, 128, 256, 512, 1000))}\n"


def c_safe_alloc(r: R, i: str) -> str:
    fn, buf = r.name("fn"), r.pick(("buf", "slots", "cells", "area"))
    cond = r.pick((f"{buf} == NULL", f"!{buf}"))
    return (c_comment(r, "Zeroed scratch table") + f"static int *{fn}(size_t n)\n{{\n"
            + block(f"    int *{buf} = calloc(n, sizeof *{buf});\n    if ({cond})\n        return NULL;\n    {buf}[0] = 1;\n"
                    f"    return {buf};\n", i) + "}\n")


def c_safe_key(r: R, i: str) -> str:
    fn, key = r.name("fn"), r.pick(("key", "section", "tag"))
    return (c_comment(r, "Accept a plain settings key") + f"static int {fn}(const char *{key})\n{{\n"
            + block(f"    if ({key} == NULL || strstr({key}, \"..\") != NULL || strchr({key}, '/') != NULL)\n        return 0;\n"
                    f"    return (int)strlen({key});\n", i) + "}\n")


def c_safe_charset(r: R, i: str) -> str:
    fn, s_ = r.name("fn"), r.pick(("s", "word", "label"))
    return (c_comment(r, "True for lower-case words and digits only") + f"static int {fn}(const char *{s_})\n{{\n"
            + block(f"    return {s_}[0] != '\\0' && strspn({s_}, \"abcdefghijklmnopqrstuvwxyz0123456789\") == strlen({s_});\n", i)
            + "}\n")


def c_safe_mul(r: R, i: str) -> str:
    fn = r.name("fn")
    return (c_comment(r, "Product of two sizes, 0 when it would wrap") + f"static size_t {fn}(size_t a, size_t b)\n{{\n"
            + block("    if (b != 0 && a > SIZE_MAX / b)\n        return 0;\n    return a * b;\n", i) + "}\n")


def c_safe_store(r: R, i: str) -> str:
    fn = r.name("fn")
    return (c_comment(r, "Store a value when the index is inside the table") + f"static void {fn}(int *table, int size, int k, int v)\n{{\n"
            + block("    if (k < 0 || k >= size)\n        return;\n    table[k] = v;\n", i) + "}\n")


def c_safe_release(r: R, i: str) -> str:
    fn = r.name("fn")
    return (c_comment(r, "Release a string and forget it") + f"static void {fn}(char **slot)\n{{\n"
            + block("    free(*slot);\n    *slot = NULL;\n", i) + "}\n")


def c_safe_copy(r: R, i: str) -> str:
    fn = r.name("fn")
    return (c_comment(r, "Bounded copy of a name") + f"static void {fn}(char *dst, size_t size, const char *src)\n{{\n"
            + block("    snprintf(dst, size, \"%s\", src);\n", i) + "}\n")


#: Helpers that hold a correct check of some kind, put in both versions of a program: the presence of a check
#: somewhere in a file says nothing; only the check that guards the flaw does.
C_SAFE = (c_safe_alloc, c_safe_key, c_safe_charset, c_safe_mul, c_safe_store, c_safe_release, c_safe_copy)


C_FILLERS = (c_filler_checksum, c_filler_clamp, c_filler_struct, c_filler_table, c_filler_trim, c_filler_count,
             c_filler_log, c_filler_max, c_filler_define)
C_BASE_INCLUDES = ("stdio.h", "stdlib.h", "string.h")
C_MORE_INCLUDES = ("ctype.h", "errno.h", "stdint.h", "stdbool.h", "unistd.h", "time.h", "limits.h", "stddef.h")


def c_program(r: R, includes: set[str], vuln: str, patched: str, main: str, i: str) -> tuple[str, str]:
    incs = sorted(set(C_BASE_INCLUDES) | includes)  # the fillers use stdio.h and string.h
    incs += [h for h in r.rng.sample(C_MORE_INCLUDES, r.int(0, 2)) if h not in incs]
    r.rng.shuffle(incs)
    head = "".join(f"#include <{h}>\n" for h in incs) + "\n"
    before = [f(r, i) for f in r.rng.sample(C_FILLERS, r.int(0, 3))]
    safe = r.rng.sample(C_SAFE, r.int(0, 2))
    if c_safe_mul in safe and "stdint.h" not in incs:
        incs.append("stdint.h")
    if safe:
        head = "".join(f"#include <{h}>\n" for h in incs) + "\n"
    before += [f(r, i) for f in safe]
    r.rng.shuffle(before)
    after = [f(r, i) for f in r.rng.sample(C_FILLERS, r.int(0, 2))]
    pre = "\n".join(before) + ("\n" if before else "")
    post = ("\n" + "\n".join(after)) if after else ""
    return (head + pre + vuln + post + "\n" + main, head + pre + patched + post + "\n" + main)


def c_main(r: R, i: str, body: str, argc: int = 2) -> str:
    usage = r.pick(("usage: %s ARG", "usage: %s INPUT", "%s: missing argument", "usage: %s VALUE"))
    code = r.pick((1, 2, 64))
    check = (block(f"    if (argc < {argc}) {{\n        fprintf(stderr, \"{usage}\\n\", argv[0]);\n        return {code};\n    }}\n", i)
             if argc > 1 else "")
    return "int main(int argc, char **argv)\n{\n" + check + block(body, i) + "}\n"


def both(r: R, includes, fn_vuln: str, fn_patch: str, main_body: str, i: str, argc: int = 2) -> tuple[str, str]:
    return c_program(r, set(includes), fn_vuln, fn_patch, c_main(r, i, main_body, argc), i)


def null_check(r: R, var: str, ind: str, err: str, msg: str | None = None) -> str:
    cond = r.pick((f"{var} == NULL", f"!{var}", f"NULL == {var}"))
    if msg is not None and r.chance(0.6):
        return (f"{ind}if ({cond}) {{\n{ind}{ind}fprintf(stderr, \"{msg}\\n\");\n{ind}{ind}{err}\n{ind}}}\n")
    return f"{ind}if ({cond})\n{ind}{ind}{err}\n"


# ------------------------------------------------------------------------------------------------------ CWE-476
def s476_lookup(r: R, i: str):
    t, fn, key, val = r.name("type"), r.name("fn"), r.pick(("key", "name", "code")), r.name("var")
    entries = r.rng.sample(NOUNS, r.int(2, 4))
    table = f"static const struct {t}_pair {{\n{i}const char *key;\n{i}const char *text;\n}} {t}_pairs[] = {{\n" + "".join(
        f'{i}{{"{e}", "{r.word()}"}},\n' for e in entries) + "};\n\n"
    look = (f"static const char *{fn}(const char *{key})\n{{\n"
            + block(f"    for (size_t k = 0; k < sizeof {t}_pairs / sizeof {t}_pairs[0]; k++) {{\n"
                    f"        if (strcmp({t}_pairs[k].key, {key}) == 0)\n            return {t}_pairs[k].text;\n    }}\n"
                    "    return NULL;\n", i) + "}\n\n")
    show = r.name("fn")
    use = r.pick((f'{i}printf("%s -> %s (%zu)\\n", k, {val}, strlen({val}));\n',
                  f'{i}printf("%c%s\\n", toupper((unsigned char){val}[0]), {val} + 1);\n',
                  f'{i}fputs({val}, stdout);\n{i}putchar(\'\\n\');\n'))
    top = f"int {show}(const char *k)\n{{\n{i}const char *{val} = {fn}(k);\n\n"
    body_v = top + use + f"{i}return 0;\n}}\n"
    body_p = top + null_check(r, val, i, "return 1;", "no such entry") + use + f"{i}return 0;\n}}\n"
    inc = {"stdio.h", "string.h", "ctype.h"}
    return both(r, inc, table + look + body_v, table + look + body_p, f"{i}return {show}(argv[1]);\n", i)


def s476_malloc(r: R, i: str):
    t, fn, p, n = r.name("type"), r.name("fn"), r.name("var"), r.pick(("n", "count", "len"))
    err = r.pick(("return NULL;",))
    head = (f"struct {t} {{\n{i}int id;\n{i}double *values;\n{i}size_t {n};\n}};\n\n"
            + c_comment(r, f"Allocate a {t} with room for its values") + f"struct {t} *{fn}(int id, size_t {n})\n{{\n")
    alloc = f"{i}struct {t} *{p} = malloc(sizeof(*{p}));\n"
    rest = block(f"    {p}->id = id;\n    {p}->{n} = {n};\n    {p}->values = calloc({n}, sizeof(double));\n    return {p};\n}}\n", i)
    v = head + alloc + rest
    pt = head + alloc + null_check(r, p, i, err) + rest
    main = (f"{i}struct {t} *x = {fn}(atoi(argv[1]), 4);\n"
            f"{i}if (x == NULL || x->values == NULL)\n{i}{i}return 1;\n{i}printf(\"%d\\n\", x->id);\n{i}return 0;\n")
    return both(r, {"stdlib.h", "stdio.h"}, v, pt, main, i)


def s476_getenv(r: R, i: str):
    fn, var, env = r.name("fn"), r.name("var"), r.pick(("HOME", "USER", "LANG", "SHELL", "TMPDIR", "EDITOR")) + \
        r.pick(("", "_DIR", "_NAME", "_PATH"))
    fallback = r.pick(('"/tmp"', '"default"', '"none"', '"C"'))
    head = c_comment(r, f"Length of ${env}, for the banner") + f"size_t {fn}(void)\n{{\n{i}const char *{var} = getenv(\"{env}\");\n"
    tail = f"{i}return strlen({var});\n}}\n"
    fix = r.pick((f"{i}if ({var} == NULL)\n{i}{i}{var} = {fallback};\n", f"{i}if (!{var})\n{i}{i}return 0;\n"))
    main = f"{i}printf(\"%zu\\n\", {fn}());\n{i}return 0;\n"
    return both(r, {"stdlib.h", "string.h", "stdio.h"}, head + tail, head + fix + tail, main, i, argc=1)


def s476_strchr(r: R, i: str):
    fn, line, sep, ch = r.name("fn"), r.pick(("line", "spec", "pair", "arg")), r.pick(("eq", "sep", "colon", "mark")), \
        r.pick(("'='", "':'", "','", "'@'"))
    head = (c_comment(r, "Split NAME=VALUE and print the value") + f"int {fn}(char *{line})\n{{\n"
            f"{i}char *{sep} = strchr({line}, {ch});\n")
    tail = block(f"    *{sep} = '\\0';\n    printf(\"name=%s value=%s\\n\", {line}, {sep} + 1);\n    return 0;\n}}\n", i)
    main = f"{i}return {fn}(argv[1]);\n"
    return both(r, {"string.h", "stdio.h"}, head + tail, head + null_check(r, sep, i, "return -1;", "missing separator") + tail,
                main, i)


def s476_fopen(r: R, i: str):
    fn, fp, buf = r.name("fn"), r.pick(("fp", "f", "in", "file")), r.pick(("buf", "line", "first"))
    size = r.pick((64, 128, 256, 512))
    head = (c_comment(r, "Print the first line of a file") + f"int {fn}(const char *path)\n{{\n"
            + block(f"    char {buf}[{size}];\n    FILE *{fp} = fopen(path, \"r\");\n", i))
    tail = block(f"    if (fgets({buf}, sizeof {buf}, {fp}) != NULL)\n        fputs({buf}, stdout);\n    fclose({fp});\n"
                 "    return 0;\n}\n", i)
    fix = null_check(r, fp, i, "return -1;", "cannot open file")
    return both(r, {"stdio.h"}, head + tail, head + fix + tail, f"{i}return {fn}(argv[1]) == 0 ? 0 : 1;\n", i)


def s476_list(r: R, i: str):
    t, fn, node, fld = r.name("type"), r.name("fn"), r.pick(("node", "cur", "it", "n")), r.pick(("score", "level", "size", "weight"))
    defs = (f"struct {t} {{\n{i}int id;\n{i}int {fld};\n{i}struct {t} *next;\n}};\n\n"
            f"static struct {t} *find_{t}(struct {t} *head, int id)\n{{\n"
            + block("    for (; head != NULL; head = head->next) {\n        if (head->id == id)\n            return head;\n"
                    "    }\n    return NULL;\n", i) + "}\n\n")
    head = c_comment(r, f"Raise the {fld} of one {t}") + f"int {fn}(struct {t} *list, int id, int delta)\n{{\n" \
        + f"{i}struct {t} *{node} = find_{t}(list, id);\n"
    tail = f"{i}{node}->{fld} += delta;\n{i}return {node}->{fld};\n}}\n"
    fix = null_check(r, node, i, "return -1;")
    main = (f"{i}struct {t} b = {{2, 10, NULL}}, a = {{1, 5, &b}};\n"
            f"{i}printf(\"%d\\n\", {fn}(&a, atoi(argv[1]), 3));\n{i}return 0;\n")
    return both(r, {"stdio.h", "stdlib.h"}, defs + head + tail, defs + head + fix + tail, main, i)


# ------------------------------------------------------------------------------------------------------ CWE-416
def s416_list_remove(r: R, i: str):
    t, fn, cur, nxt = r.name("type"), r.name("fn"), r.pick(("cur", "node", "p")), r.pick(("next", "after", "following"))
    link = r.pick(("pp", "prevp", "where", "hook"))  # the pointer to the link that holds {cur}
    cond = r.pick((f"{cur}->id < 0", f"{cur}->id == id", f"{cur}->id % 3 == 0"))
    head = (f"struct {t} {{\n{i}int id;\n{i}struct {t} *next;\n}};\n\n"
            + c_comment(r, f"Remove matching {t} nodes and return the new head")
            + f"struct {t} *{fn}(struct {t} *head, int id)\n{{\n"
            + block(f"    struct {t} **{link} = &head;\n    struct {t} *{cur} = head;\n    while ({cur} != NULL) {{\n"
                    f"        if ({cond}) {{\n", i))
    v = block(f"            *{link} = {cur}->next;\n            free({cur});\n            {cur} = {cur}->next;\n", i)
    p = block(f"            struct {t} *{nxt} = {cur}->next;\n            *{link} = {nxt};\n            free({cur});\n"
              f"            {cur} = {nxt};\n", i)
    tail = block(f"        }} else {{\n            {link} = &{cur}->next;\n            {cur} = {cur}->next;\n        }}\n    }}\n"
                 "    return head;\n}\n", i)
    main = (f"{i}struct {t} *head = NULL;\n{i}for (int k = 0; k < 5; k++) {{\n{i}{i}struct {t} *e = malloc(sizeof *e);\n"
            f"{i}{i}if (e == NULL)\n{i}{i}{i}return 1;\n{i}{i}e->id = k;\n{i}{i}e->next = head;\n{i}{i}head = e;\n{i}}}\n"
            f"{i}head = {fn}(head, atoi(argv[1]));\n{i}return head == NULL;\n")
    return both(r, {"stdlib.h"}, head + v + tail, head + p + tail, main, i)


def s416_log_after_free(r: R, i: str):
    fn, buf = r.name("fn"), r.pick(("msg", "text", "copy", "label"))
    head = (c_comment(r, "Send a copy of the text, then report it") + f"int {fn}(const char *src)\n{{\n"
            + block(f"    char *{buf} = strdup(src);\n    if ({buf} == NULL)\n        return -1;\n"
                    f"    size_t sent = fwrite({buf}, 1, strlen({buf}), stdout);\n", i))
    v = block(f"    free({buf});\n    fprintf(stderr, \"sent %zu bytes of '%s'\\n\", sent, {buf});\n", i)
    p = block(f"    fprintf(stderr, \"sent %zu bytes of '%s'\\n\", sent, {buf});\n    free({buf});\n", i)
    tail = f"{i}return 0;\n}}\n"
    return both(r, {"stdio.h", "stdlib.h", "string.h"}, head + v + tail, head + p + tail, f"{i}return {fn}(argv[1]);\n", i)


def s416_return_field(r: R, i: str):
    t, fn, obj, fld = r.name("type"), r.name("fn"), r.pick(("obj", "item", "rec", "s")), r.pick(("total", "count", "mark"))
    head = (f"struct {t} {{\n{i}char name[24];\n{i}int {fld};\n}};\n\n"
            + c_comment(r, f"Create a {t}, fill it, and give back its {fld}") + f"int {fn}(const char *name)\n{{\n"
            + block(f"    struct {t} *{obj} = calloc(1, sizeof *{obj});\n    if ({obj} == NULL)\n        return -1;\n"
                    f"    snprintf({obj}->name, sizeof {obj}->name, \"%s\", name);\n    {obj}->{fld} = (int)strlen({obj}->name) * 7;\n", i))
    v = block(f"    free({obj});\n    return {obj}->{fld};\n}}\n", i)
    p = block(f"    int result = {obj}->{fld};\n    free({obj});\n    return result;\n}}\n", i)
    return both(r, {"stdio.h", "stdlib.h", "string.h"}, head + v, head + p, f"{i}printf(\"%d\\n\", {fn}(argv[1]));\n{i}return 0;\n", i)


def s416_error_path(r: R, i: str):
    fn, buf, size = r.name("fn"), r.pick(("data", "payload", "block", "body")), r.pick((32, 64, 100, 200))
    head = (c_comment(r, "Read a small input, reject empty ones") + f"int {fn}(FILE *in)\n{{\n"
            + block(f"    char *{buf} = malloc({size});\n    if ({buf} == NULL)\n        return -1;\n"
                    f"    size_t got = fread({buf}, 1, {size} - 1, in);\n    {buf}[got] = '\\0';\n    if (got == 0) {{\n"
                    f"        free({buf});\n", i))
    v = block("    }\n", i)
    p = block("        return 0;\n    }\n", i)
    tail = block(f"    printf(\"read: %s\\n\", {buf});\n    free({buf});\n    return 1;\n}}\n", i)
    return both(r, {"stdio.h", "stdlib.h"}, head + v + tail, head + p + tail,
                f"{i}return {fn}(stdin) < 0;\n", i, argc=1)


def s416_cache(r: R, i: str):
    fn, ev, cache, n = r.name("fn"), r.name("fn"), r.name("var"), r.pick((4, 8, 16))
    defs = (f"static char *{cache}[{n}];\n\n" + c_comment(r, "Drop one cached string") + f"void {ev}(int k)\n{{\n")
    v = f"{i}free({cache}[k]);\n}}\n\n"
    p = f"{i}free({cache}[k]);\n{i}{cache}[k] = NULL;\n}}\n\n"
    rest = (f"const char *{fn}(int k, const char *fresh)\n{{\n"
            + block(f"    if ({cache}[k] == NULL)\n        {cache}[k] = strdup(fresh);\n    return {cache}[k];\n}}\n", i))
    main = (f"{i}int k = atoi(argv[1]) % {n};\n{i}if (k < 0)\n{i}{i}return 1;\n{i}{fn}(k, \"{r.word()}\");\n{i}{ev}(k);\n"
            f"{i}puts({fn}(k, \"{r.word()}\"));\n{i}return 0;\n")
    return both(r, {"stdio.h", "stdlib.h", "string.h"}, defs + v + rest, defs + p + rest, main, i)


# ------------------------------------------------------------------------------------------------------ CWE-787
def s787_strcpy(r: R, i: str):
    fn, buf, size = r.name("fn"), r.pick(("name", "title", "label", "dest")), r.pick((16, 32, 40, 64))
    head = (c_comment(r, "Store a display name and print it") + f"void {fn}(const char *src)\n{{\n{i}char {buf}[{size}];\n")
    v = f"{i}strcpy({buf}, src);\n"
    p = r.pick((f"{i}if (strlen(src) >= sizeof {buf})\n{i}{i}return;\n{i}strcpy({buf}, src);\n",
                f"{i}snprintf({buf}, sizeof {buf}, \"%s\", src);\n",
                f"{i}strncpy({buf}, src, sizeof {buf} - 1);\n{i}{buf}[sizeof {buf} - 1] = '\\0';\n"))
    tail = f"{i}printf(\"[%s]\\n\", {buf});\n}}\n"
    return both(r, {"stdio.h", "string.h"}, head + v + tail, head + p + tail, f"{i}{fn}(argv[1]);\n{i}return 0;\n", i)


def s787_loop_bound(r: R, i: str):
    fn, arr, n = r.name("fn"), r.name("var"), r.pick((5, 8, 10, 12, 16))
    const = r.name("const")
    head = f"#define {const} {n}\n\n" + c_comment(r, "Fill the table with squares") + f"int {fn}(int base)\n{{\n{i}int {arr}[{const}];\n"
    v = f"{i}for (int k = 0; k <= {const}; k++)\n{i}{i}{arr}[k] = base + k * k;\n"
    p = f"{i}for (int k = 0; k < {const}; k++)\n{i}{i}{arr}[k] = base + k * k;\n"
    tail = f"{i}return {arr}[{const} - 1];\n}}\n"
    return both(r, {"stdio.h", "stdlib.h"}, head + v + tail, head + p + tail, f"{i}printf(\"%d\\n\", {fn}(atoi(argv[1])));\n{i}return 0;\n", i)


def s787_index(r: R, i: str):
    fn, arr, n, idx = r.name("fn"), r.name("var"), r.pick((4, 8, 10, 20, 32)), r.pick(("slot", "idx", "pos", "k"))
    head = f"static int {arr}[{n}];\n\n" + c_comment(r, "Record a value in its slot") + f"void {fn}(int {idx}, int value)\n{{\n"
    fix = r.pick((f"{i}if ({idx} < 0 || {idx} >= {n})\n{i}{i}return;\n",
                  f"{i}if ({idx} < 0 || {idx} >= (int)(sizeof {arr} / sizeof {arr}[0])) {{\n{i}{i}fprintf(stderr, \"bad slot %d\\n\", {idx});\n{i}{i}return;\n{i}}}\n"))
    tail = f"{i}{arr}[{idx}] = value;\n}}\n"
    main = f"{i}{fn}(atoi(argv[1]), {r.int(1, 99)});\n{i}printf(\"%d\\n\", {arr}[0]);\n{i}return 0;\n"
    return both(r, {"stdio.h", "stdlib.h"}, head + tail, head + fix + tail, main, i)


def s787_memcpy(r: R, i: str):
    fn, dst, size, ln = r.name("fn"), r.pick(("out", "frame", "dst", "packet")), r.pick((32, 64, 128, 256)), r.pick(("len", "n", "size"))
    head = (c_comment(r, "Copy a payload into the frame buffer") + f"int {fn}(const unsigned char *src, size_t {ln})\n{{\n"
            f"{i}unsigned char {dst}[{size}];\n")
    fix = f"{i}if ({ln} > sizeof {dst})\n{i}{i}return -1;\n"
    tail = block(f"    memcpy({dst}, src, {ln});\n    return {dst}[0];\n}}\n", i)
    main = f"{i}return {fn}((const unsigned char *)argv[1], strlen(argv[1]) + 1) < 0;\n"
    return both(r, {"string.h"}, head + tail, head + fix + tail, main, i)


def s787_strcat(r: R, i: str):
    fn, out, size = r.name("fn"), r.pick(("out", "joined", "line", "acc")), r.pick((32, 48, 64, 80))
    head = (c_comment(r, "Join the words with spaces") + f"void {fn}(int argc, char **argv)\n{{\n"
            + block(f"    char {out}[{size}] = \"\";\n    size_t used = 0;\n    for (int k = 1; k < argc; k++) {{\n"
                    "        size_t len = strlen(argv[k]);\n", i))
    fix = block(f"        if (used + len + 2 > sizeof {out})\n            break;\n", i)
    tail = block(f"        memcpy({out} + used, argv[k], len);\n        used += len;\n        {out}[used++] = ' ';\n"
                 f"        {out}[used] = '\\0';\n    }}\n    puts({out});\n}}\n", i)
    return both(r, {"stdio.h", "string.h"}, head + tail, head + fix + tail, f"{i}{fn}(argc, argv);\n{i}return 0;\n", i)


def s787_getc(r: R, i: str):
    fn, buf, size = r.name("fn"), r.pick(("word", "buf", "token")), r.pick((16, 32, 64))
    head = (c_comment(r, "Read one word from a stream") + f"int {fn}(FILE *in)\n{{\n"
            + block(f"    char {buf}[{size}];\n    int c, n = 0;\n", i))
    v = f"{i}while ((c = fgetc(in)) != EOF && c != ' ' && c != '\\n')\n{i}{i}{buf}[n++] = (char)c;\n"
    p = f"{i}while (n < {size} - 1 && (c = fgetc(in)) != EOF && c != ' ' && c != '\\n')\n{i}{i}{buf}[n++] = (char)c;\n"
    tail = f"{i}{buf}[n] = '\\0';\n{i}puts({buf});\n{i}return n;\n}}\n"
    return both(r, {"stdio.h"}, head + v + tail, head + p + tail, f"{i}return {fn}(stdin) == 0;\n", i, argc=1)


# ------------------------------------------------------------------------------------------------------ CWE-190
def s190_malloc_mul(r: R, i: str):
    t, fn, cnt = r.name("type"), r.name("fn"), r.pick(("count", "n", "items", "num"))
    ct = r.pick(("unsigned int", "size_t", "unsigned"))
    lim = "SIZE_MAX" if ct == "size_t" else "UINT_MAX"
    head = (f"struct {t} {{\n{i}int id;\n{i}double value;\n}};\n\n" + c_comment(r, f"Allocate {t} records for a batch")
            + f"struct {t} *{fn}({ct} {cnt})\n{{\n")
    fix = f"{i}if ({cnt} == 0 || {cnt} > {lim} / sizeof(struct {t}))\n{i}{i}return NULL;\n"
    tail = block(f"    struct {t} *all = malloc({cnt} * sizeof(struct {t}));\n    if (all == NULL)\n        return NULL;\n"
                 f"    for ({ct} k = 0; k < {cnt}; k++)\n        all[k].id = (int)k;\n    return all;\n}}\n", i)
    main = f"{i}struct {t} *b = {fn}(({ct})strtoul(argv[1], NULL, 10));\n{i}free(b);\n{i}return b == NULL;\n"
    inc = {"stdlib.h", "stdint.h" if lim == "SIZE_MAX" else "limits.h"}
    return both(r, inc, head + tail, head + fix + tail, main, i)


def s190_short_sum(r: R, i: str):
    fn, a, b = r.name("fn"), r.pick(("head_len", "prefix", "hdr")), r.pick(("body_len", "rest", "data_len"))
    t = r.pick(("uint16_t", "unsigned short", "uint8_t"))
    head = (c_comment(r, "Build one message from a header and a body") + f"char *{fn}({t} {a}, {t} {b})\n{{\n")
    v = f"{i}{t} total = {a} + {b};\n"
    p = f"{i}size_t total = (size_t){a} + (size_t){b};\n"
    tail = block(f"    char *msg = malloc(total + 1);\n    if (msg == NULL)\n        return NULL;\n"
                 f"    memset(msg, 'x', (size_t){a} + {b});\n    msg[(size_t){a} + {b}] = '\\0';\n    return msg;\n}}\n", i)
    main = f"{i}char *m = {fn}(({t})atoi(argv[1]), 200);\n{i}free(m);\n{i}return 0;\n"
    return both(r, {"stdlib.h", "string.h", "stdint.h"}, head + v + tail, head + p + tail, main, i)


def s190_int_add(r: R, i: str):
    fn, l1, l2 = r.name("fn"), r.pick(("len1", "a_len", "left")), r.pick(("len2", "b_len", "right"))
    head = (c_comment(r, "Concatenate two sized strings") + f"char *{fn}(const char *x, int {l1}, const char *y, int {l2})\n{{\n")
    fix = f"{i}if ({l1} < 0 || {l2} < 0 || {l1} > INT_MAX - {l2} - 1)\n{i}{i}return NULL;\n"
    tail = block(f"    int need = {l1} + {l2} + 1;\n    char *out = malloc(need);\n    if (out == NULL)\n        return NULL;\n"
                 f"    memcpy(out, x, {l1});\n    memcpy(out + {l1}, y, {l2});\n    out[{l1} + {l2}] = '\\0';\n    return out;\n}}\n", i)
    main = f"{i}char *s = {fn}(argv[1], atoi(argv[2]), argv[1], atoi(argv[2]));\n{i}free(s);\n{i}return 0;\n"
    return both(r, {"stdlib.h", "string.h", "limits.h"}, head + tail, head + fix + tail, main, i, argc=3)


def s190_image(r: R, i: str):
    fn, w, h = r.name("fn"), r.pick(("width", "w", "cols")), r.pick(("height", "h", "rows"))
    bpp = r.pick((3, 4))
    head = (c_comment(r, "Allocate a pixel buffer") + f"unsigned char *{fn}(int {w}, int {h})\n{{\n")
    fix = f"{i}if ({w} <= 0 || {h} <= 0 || {w} > INT_MAX / {bpp} / {h})\n{i}{i}return NULL;\n"
    tail = block(f"    int bytes = {w} * {h} * {bpp};\n    unsigned char *px = malloc(bytes);\n    if (px != NULL)\n"
                 "        memset(px, 0, bytes);\n    return px;\n}\n", i)
    main = f"{i}unsigned char *img = {fn}(atoi(argv[1]), atoi(argv[2]));\n{i}free(img);\n{i}return img == NULL;\n"
    return both(r, {"stdlib.h", "string.h", "limits.h"}, head + tail, head + fix + tail, main, i, argc=3)


def s190_counter(r: R, i: str):
    fn, cnt = r.name("fn"), r.pick(("hits", "visits", "count", "tally"))
    t = r.pick(("unsigned char", "uint8_t", "short"))
    lim = {"unsigned char": "UCHAR_MAX", "uint8_t": "UINT8_MAX", "short": "SHRT_MAX"}[t]
    head = f"static {t} {cnt}[16];\n\n" + c_comment(r, "Count one more event of a kind") + f"int {fn}(int kind)\n{{\n"
    head += f"{i}kind &= 15;\n"
    fix = f"{i}if ({cnt}[kind] == {lim})\n{i}{i}return -1;\n"
    tail = f"{i}{cnt}[kind]++;\n{i}return {cnt}[kind];\n}}\n"
    main = f"{i}for (int k = 0; k < 300; k++)\n{i}{i}{fn}(atoi(argv[1]));\n{i}return 0;\n"
    return both(r, {"stdlib.h", "stdint.h", "limits.h"}, head + tail, head + fix + tail, main, i)


# ------------------------------------------------------------------------------------------------------- CWE-22
def _traversal_check(r: R, name: str, i: str, err: str) -> str:
    return r.pick((f"{i}if ({name}[0] == '/' || strstr({name}, \"..\") != NULL)\n{i}{i}{err}\n",
                   f"{i}if (strstr({name}, \"..\") || strchr({name}, '/'))\n{i}{i}{err}\n",
                   f"{i}for (const char *c = {name}; *c; c++) {{\n{i}{i}if (!isalnum((unsigned char)*c) && *c != '.' && *c != '_')\n"
                   f"{i}{i}{i}{err}\n{i}}}\n{i}if ({name}[0] == '.')\n{i}{i}{err}\n"))


def s22_open_read(r: R, i: str):
    fn, name, root = r.name("fn"), r.pick(("name", "file", "doc", "page")), r.pick(("/srv/", "/var/www/", "/opt/", "/home/")) + r.word()
    head = (c_comment(r, "Send a file from the public folder") + f"int {fn}(const char *{name}, FILE *out)\n{{\n"
            + block("    char path[512];\n    char chunk[256];\n    size_t got;\n", i))
    tail = block(f"    snprintf(path, sizeof path, \"%s/%s\", \"{root}\", {name});\n    FILE *fp = fopen(path, \"rb\");\n"
                 "    if (fp == NULL)\n        return -1;\n    while ((got = fread(chunk, 1, sizeof chunk, fp)) > 0)\n"
                 "        fwrite(chunk, 1, got, out);\n    fclose(fp);\n    return 0;\n}\n", i)
    fix = _traversal_check(r, name, i, "return -1;")
    return both(r, {"stdio.h", "string.h", "ctype.h"}, head + tail, head + fix + tail, f"{i}return {fn}(argv[1], stdout) != 0;\n", i)


def s22_realpath(r: R, i: str):
    fn, base = r.name("fn"), r.pick(("/data/", "/srv/files/", "/var/lib/")) + r.word()
    head = (f"#define BASE_DIR \"{base}\"\n\n" + c_comment(r, "Open a document under the base folder")
            + f"FILE *{fn}(const char *rel)\n{{\n"
            + block("    char joined[4096];\n    snprintf(joined, sizeof joined, \"%s/%s\", BASE_DIR, rel);\n", i))
    v = f"{i}return fopen(joined, \"r\");\n}}\n"
    p = block("    char real[PATH_MAX];\n    if (realpath(joined, real) == NULL)\n        return NULL;\n"
              "    if (strncmp(real, BASE_DIR \"/\", strlen(BASE_DIR) + 1) != 0)\n        return NULL;\n"
              "    return fopen(real, \"r\");\n}\n", i)
    main = f"{i}FILE *f = {fn}(argv[1]);\n{i}if (f == NULL)\n{i}{i}return 1;\n{i}fclose(f);\n{i}return 0;\n"
    return both(r, {"stdio.h", "stdlib.h", "string.h", "limits.h"}, head + v, head + p, main, i)


def s22_delete(r: R, i: str):
    fn, name, spool = r.name("fn"), r.pick(("job", "upload", "entry", "id")), r.pick(("/var/spool/", "/tmp/", "/srv/queue/")) + r.word()
    head = (c_comment(r, "Delete one finished upload") + f"int {fn}(const char *{name})\n{{\n{i}char target[300];\n")
    tail = block(f"    snprintf(target, sizeof target, \"{spool}/%s\", {name});\n    return unlink(target);\n}}\n", i)
    fix = _traversal_check(r, name, i, "return -1;")
    return both(r, {"stdio.h", "string.h", "unistd.h", "ctype.h"}, head + tail, head + fix + tail,
                f"{i}return {fn}(argv[1]) != 0;\n", i)


def s22_write(r: R, i: str):
    fn, user, note = r.name("fn"), r.pick(("user", "owner", "who")), r.pick(("note", "title", "key"))
    d = r.pick(("/var/notes", "/srv/memo", "/home/shared"))
    head = (c_comment(r, "Save a note in the user's folder") + f"int {fn}(const char *{user}, const char *{note}, const char *text)\n{{\n"
            f"{i}char path[256];\n")
    fix = _traversal_check(r, user, i, "return -1;") + _traversal_check(r, note, i, "return -1;")
    tail = block(f"    snprintf(path, sizeof path, \"{d}/%s/%s.txt\", {user}, {note});\n    FILE *fp = fopen(path, \"w\");\n"
                 "    if (fp == NULL)\n        return -1;\n    fputs(text, fp);\n    return fclose(fp);\n}\n", i)
    main = f"{i}return {fn}(argv[1], argv[2], \"{r.word()}\") != 0;\n"
    return both(r, {"stdio.h", "string.h", "ctype.h"}, head + tail, head + fix + tail, main, i, argc=3)


# ------------------------------------------------------------------------------------------------------- CWE-77
def _shell_check(r: R, arg: str, i: str, err: str) -> str:
    return r.pick((f"{i}if (strpbrk({arg}, \";|&`$<>\\\\'\\\"\\n\") != NULL)\n{i}{i}{err}\n",
                   f"{i}for (const char *c = {arg}; *c != '\\0'; c++) {{\n{i}{i}if (!isalnum((unsigned char)*c) && *c != '.' && *c != '-')\n"
                   f"{i}{i}{i}{err}\n{i}}}\n",
                   f"{i}if ({arg}[0] == '-' || strspn({arg}, \"abcdefghijklmnopqrstuvwxyz0123456789.-\") != strlen({arg}))\n{i}{i}{err}\n"))


def s77_system(r: R, i: str):
    fn, arg = r.name("fn"), r.pick(("host", "target", "addr", "server"))
    tool = r.pick(("ping -c 2", "traceroute -m 8", "nslookup", "host -W 2", "dig +short"))
    head = (c_comment(r, "Run a network check for the admin page") + f"int {fn}(const char *{arg})\n{{\n"
            f"{i}char cmd[{r.pick((128, 256, 300))}];\n")
    tail = block(f"    snprintf(cmd, sizeof cmd, \"{tool} %s\", {arg});\n    return system(cmd);\n}}\n", i)
    fix = _shell_check(r, arg, i, "return -1;")
    return both(r, {"stdio.h", "stdlib.h", "string.h", "ctype.h"}, head + tail, head + fix + tail,
                f"{i}return {fn}(argv[1]) == 0 ? 0 : 1;\n", i)


def s77_popen(r: R, i: str):
    fn, pat = r.name("fn"), r.pick(("pattern", "word", "query", "needle"))
    logf = r.pick(("/var/log/syslog", "/var/log/app.log", "access.log", "events.txt"))
    head = (c_comment(r, "Count log lines that match a word") + f"int {fn}(const char *{pat})\n{{\n"
            + block("    char cmd[256];\n    char line[64];\n    int n = -1;\n", i))
    fix = _shell_check(r, pat, i, "return -1;")
    tail = block(f"    snprintf(cmd, sizeof cmd, \"grep -c %s {logf}\", {pat});\n    FILE *p = popen(cmd, \"r\");\n"
                 "    if (p == NULL)\n        return -1;\n    if (fgets(line, sizeof line, p) != NULL)\n        n = atoi(line);\n"
                 "    pclose(p);\n    return n;\n}\n", i)
    return both(r, {"stdio.h", "stdlib.h", "string.h", "ctype.h"}, head + tail, head + fix + tail,
                f"{i}printf(\"%d\\n\", {fn}(argv[1]));\n{i}return 0;\n", i)


def s77_exec(r: R, i: str):
    fn, arg = r.name("fn"), r.pick(("archive", "src", "folder", "name"))
    tool, flag = r.pick((("tar", "-czf"), ("zip", "-r"), ("gzip", "-k")))
    head = c_comment(r, "Pack a folder for download") + f"int {fn}(const char *{arg})\n{{\n"
    v = block(f"    char cmd[512];\n    snprintf(cmd, sizeof cmd, \"{tool} {flag} /tmp/out %s\", {arg});\n"
              "    return system(cmd);\n}\n", i)
    p = block(f"    pid_t pid = fork();\n    if (pid < 0)\n        return -1;\n    if (pid == 0) {{\n"
              f"        execlp(\"{tool}\", \"{tool}\", \"{flag}\", \"/tmp/out\", \"--\", {arg}, (char *)NULL);\n        _exit(127);\n    }}\n"
              "    int status;\n    waitpid(pid, &status, 0);\n    return status;\n}\n", i)
    return c_program(r, {"stdio.h", "stdlib.h", "unistd.h", "sys/wait.h"}, head + v, head + p,
                     c_main(r, i, f"{i}return {fn}(argv[1]) != 0;\n"), i)


def s77_env(r: R, i: str):
    fn, var = r.name("fn"), r.pick(("printer", "queue", "device", "profile"))
    env = var.upper() + r.pick(("", "_NAME"))
    head = (c_comment(r, "Print a file on the configured printer") + f"int {fn}(const char *file)\n{{\n"
            f"{i}const char *{var} = getenv(\"{env}\");\n{i}char cmd[256];\n{i}if ({var} == NULL)\n{i}{i}{var} = \"default\";\n")
    fix = _shell_check(r, var, i, "return -1;") + _shell_check(r, "file", i, "return -1;")
    tail = block(f"    snprintf(cmd, sizeof cmd, \"lpr -P %s %s\", {var}, file);\n    return system(cmd);\n}}\n", i)
    return both(r, {"stdio.h", "stdlib.h", "string.h", "ctype.h"}, head + tail, head + fix + tail,
                f"{i}return {fn}(argv[1]) != 0;\n", i)


# ------------------------------------------------------------------------------------------------ Python programs
def twin(r: R, body: Callable, vulnerable: object, patched: object) -> tuple[str, str]:
    """``body`` rendered for the vulnerable and for the patched version with the same draws (one program)."""
    state = r.rng.getstate()
    v = body(vulnerable)
    r.rng.setstate(state)
    return v, body(patched)


def py_program(r: R, imports: list[str], body_v: str, body_p: str, fix_imports: list[str] = (), flask: bool = True,
               app: str = "app") -> tuple[str, str]:
    extra = r.rng.sample(["import json", "import logging", "import time", "import re", "from datetime import datetime",
                          "import hashlib"], r.int(0, 2))
    imps = sorted(set(imports) | set(extra))
    fixed = sorted(set(imps) | set(fix_imports))
    tail = ""
    if flask:
        tail = f"\n\nif __name__ == \"__main__\":\n    {app}.run(port={r.int(5000, 9000)})\n"
    picked = r.rng.sample(PY_FILLERS, r.int(0, 2)) + r.rng.sample(PY_SAFE, r.int(0, 1))
    r.rng.shuffle(picked)
    helpers = [f(r) for f in picked]
    if py_safe_title in picked:
        imps = sorted(set(imps) | {"import html"})
        fixed = sorted(set(fixed) | {"import html"})
    mid = "".join(h + "\n\n" for h in helpers)
    note = r.pick(("service", "web app", "backend", "site", "dashboard", "API"))
    top = (f"# The {r.word()} {note}.\n{app} = Flask({r.pick(('__name__', repr(r.word())))})\n\n\n" if flask
           else "\n")
    v = "\n".join(imps) + "\n\n" + top + mid + body_v + tail
    p = "\n".join(fixed) + "\n\n" + top + mid + body_p + tail
    return v, p


def py_filler_slug(r: R) -> str:
    fn = r.name("fn")
    return f"def {fn}(text):\n    \"\"\"Lower-case words joined by dashes.\"\"\"\n    return \"-\".join(text.lower().split())\n"


def py_filler_pages(r: R) -> str:
    fn, per = r.name("fn"), r.pick((10, 20, 25, 50))
    return (f"def {fn}(total, per_page={per}):\n    \"\"\"Number of pages for a listing.\"\"\"\n"
            f"    return max(1, (total + per_page - 1) // per_page)\n")


def py_filler_const(r: R) -> str:
    return f"{r.name('const')} = {r.pick((10, 50, 100, 500, 1024))}\n"


def py_filler_fmt(r: R) -> str:
    fn = r.name("fn")
    return (f"def {fn}(amount):\n    \"\"\"Money with two decimals.\"\"\"\n    return f\"{{amount:.2f}} {r.pick(('EUR', 'USD', 'GBP'))}\"\n")


def py_safe_count(r: R) -> str:
    fn, table = r.name("fn"), r.name("var")
    return (f"def {fn}(conn, kind):\n    \"\"\"How many {table} rows of one kind.\"\"\"\n"
            f"    cur = conn.execute(\"SELECT COUNT(*) FROM {table} WHERE kind = ?\", (kind,))\n    return cur.fetchone()[0]\n")


def py_safe_title(r: R) -> str:
    fn = r.name("fn")
    return (f"def {fn}(text):\n    \"\"\"A page title, escaped for HTML.\"\"\"\n"
            f"    return \"<title>\" + html.escape(text.strip()) + \"</title>\"\n")


PY_FILLERS = (py_filler_slug, py_filler_pages, py_filler_const, py_filler_fmt)
PY_SAFE = (py_safe_count, py_safe_title)  # a correct query or escape elsewhere in both versions (see C_SAFE)


def _route(r: R, name: str) -> str:
    return f"/{r.word()}/{name}" if r.chance(0.5) else f"/{name}"


def _db(r: R) -> str:
    return r.pick((f"{r.word()}.db", f"data/{r.word()}.sqlite", f"{r.word()}.sqlite3"))


# -------------------------------------------------------------------------------------------------------- CWE-89
#: Per kind of statement: the text before and after the user's value in the unsafe query, the safe statement, and
#: its parameter (``{field}`` is the variable holding the value).
SQL_KINDS = {
    "select": ("SELECT id, {col} FROM {table} WHERE {col} = '", "'",
               "SELECT id, {col} FROM {table} WHERE {col} = ?", "{field}"),
    "delete": ("DELETE FROM {table} WHERE id = ", "", "DELETE FROM {table} WHERE id = ?", "{field}"),
    "insert": ("INSERT INTO {table} ({col}) VALUES ('", "')", "INSERT INTO {table} ({col}) VALUES (?)", "{field}"),
    "like": ("SELECT id FROM {table} WHERE {col} LIKE '%", "%'", "SELECT id FROM {table} WHERE {col} LIKE ?",
             "\"%\" + {field} + \"%\""),
}


def _unsafe_sql(before: str, after: str, field: str, fmt: str) -> str:
    """The query with the value pasted in: an f-string, concatenation, %-formatting or str.format."""
    if fmt == "f":
        return f"f\"{before}{{{field}}}{after}\""
    if fmt == "concat":
        return f"\"{before}\" + {field}" + (f" + \"{after}\"" if after else "")
    if fmt == "percent":
        return f"\"{before.replace('%', '%%')}%s{after.replace('%', '%%')}\" % {field}"
    return f"\"{before}{{}}{after}\".format({field})"


def _sql_shape(r: R, kind: str):
    table, col, field = r.name("var"), r.pick(("name", "title", "email", "city", "code", "owner")), r.pick(("q", "term", "name", "who"))
    fn, conn = r.name("fn"), r.pick(("conn", "db", "con"))
    fmt = r.pick(("f", "concat", "percent", "format"))
    before, after, safe, param = (s.format(table=table, col=col, field=field) for s in SQL_KINDS[kind])
    sql_p = f"\"{safe}\", ({param},)"
    return table, col, field, fn, conn, _unsafe_sql(before, after, field, fmt), sql_p


def s89_flask(r: R, kind: str):
    table, col, field, fn, conn, sql_v, sql_p = _sql_shape(r, kind)
    src = r.pick((f"request.args.get(\"{field}\", \"\")", f"request.form[\"{field}\"]", f"request.values.get(\"{field}\", \"\")"))
    method = ', methods=["POST"]' if "form" in src or kind in ("delete", "insert") else ""
    res = "rows = cur.fetchall()\n    return {\"rows\": [list(r) for r in rows]}" if kind in ("select", "like") else \
        f"{conn}.commit()\n    return \"ok\", 200"

    def body(sql):
        return (f"@app.route(\"{_route(r, fn.split('_')[0])}\"{method})\ndef {fn}():\n"
                f"    \"\"\"{r.pick(('Look up', 'Change', 'Query', 'Handle'))} {table} for the {r.word()} page.\"\"\"\n"
                f"    {field} = {src}\n    {conn} = sqlite3.connect(\"{_db(r)}\")\n    cur = {conn}.cursor()\n"
                f"    cur.execute({sql})\n    {res}\n")
    return py_program(r, ["import sqlite3", "from flask import Flask, request"], *twin(r, body, sql_v, sql_p))


def s89_select(r):
    return s89_flask(r, "select")


def s89_delete(r):
    return s89_flask(r, "delete")


def s89_insert(r):
    return s89_flask(r, "insert")


def s89_like(r):
    return s89_flask(r, "like")


def s89_cli(r: R):
    table, col, field, fn, conn, sql_v, sql_p = _sql_shape(r, r.pick(("select", "like")))
    db = _db(r)

    def body(sql):
        return (f"def {fn}({conn}, {field}):\n    \"\"\"Rows of {table} matching the given {col}.\"\"\"\n"
                f"    cur = {conn}.execute({sql})\n    return cur.fetchall()\n\n\n"
                f"def main():\n    parser = argparse.ArgumentParser(description=\"search the {r.word()} list\")\n"
                f"    parser.add_argument(\"{field}\")\n    args = parser.parse_args()\n"
                f"    with sqlite3.connect(\"{db}\") as {conn}:\n        for row in {fn}({conn}, args.{field}):\n"
                f"            print(*row)\n\n\nif __name__ == \"__main__\":\n    main()\n")
    return py_program(r, ["import argparse", "import sqlite3"], body(sql_v), body(sql_p), flask=False)


# -------------------------------------------------------------------------------------------------------- CWE-79
def _esc(r: R) -> tuple[str, str]:
    return r.pick((("from markupsafe import escape", "escape"), ("import html", "html.escape"),
                   ("from html import escape", "escape")))


def s79_greeting(r: R):
    fn, field = r.name("fn"), r.pick(("name", "nickname", "user", "guest"))
    imp, esc = _esc(r)
    tag = r.pick(("h1", "h2", "p", "div"))
    greet = r.pick(("Hello", "Welcome", "Hi", "Good to see you"))

    def body(expr):
        return (f"@app.route(\"{_route(r, fn.split('_')[0])}\")\ndef {fn}():\n"
                f"    {field} = request.args.get(\"{field}\", \"{r.pick(('guest', 'friend', 'visitor'))}\")\n"
                f"    return f\"<{tag}>{greet}, {{{expr}}}!</{tag}>\"\n")
    return py_program(r, ["from flask import Flask, request"], *twin(r, body, field, f"{esc}({field})"), [imp])


def s79_list(r: R):
    fn, items = r.name("fn"), r.name("var")
    imp, esc = _esc(r)
    src = r.pick((f"{items} = request.args.getlist(\"item\")", f"{items} = request.form.get(\"items\", \"\").split(\",\")"))

    def body(expr):
        return (f"@app.route(\"{_route(r, fn.split('_')[0])}\", methods=[\"GET\", \"POST\"])\ndef {fn}():\n"
                f"    \"\"\"Show the {r.word()} items the visitor sent.\"\"\"\n    {src}\n"
                f"    rows = \"\".join(\"<li>\" + {expr} + \"</li>\" for x in {items})\n"
                f"    return \"<ul>\" + rows + \"</ul>\"\n")
    return py_program(r, ["from flask import Flask, request"], *twin(r, body, "x", f"{esc}(x)"), [imp])


def s79_error(r: R):
    fn, q = r.name("fn"), r.pick(("q", "query", "term", "path"))
    imp, esc = _esc(r)

    def body(expr):
        return (f"@app.route(\"{_route(r, 'search')}\")\ndef {fn}():\n    {q} = request.args.get(\"{q}\", \"\")\n"
                f"    if not {q}.isalnum():\n"
                f"        return \"<p class='error'>Nothing found for \" + {expr} + \"</p>\", 404\n"
                f"    return \"<p>Results for {r.word()}</p>\"\n")
    return py_program(r, ["from flask import Flask, request"], *twin(r, body, q, f"{esc}({q})"), [imp])


def s79_format(r: R):
    fn, field = r.name("fn"), r.pick(("comment", "bio", "title", "message"))
    imp, esc = _esc(r)

    def body(expr):
        return (f"PAGE = \"<html><body><h3>{{who}}</h3><p>{{text}}</p></body></html>\"\n\n\n"
                f"@app.route(\"{_route(r, field)}\", methods=[\"POST\"])\ndef {fn}():\n"
                f"    who = request.form.get(\"author\", \"anonymous\")\n    text = request.form.get(\"{field}\", \"\")\n"
                f"    return PAGE.format(who={expr('who')}, text={expr('text')})\n")
    return py_program(r, ["from flask import Flask, request"], *twin(r, body, lambda x: x, lambda x: f"{esc}({x})"), [imp])


def s79_cookie(r: R):
    fn, ck = r.name("fn"), r.pick(("theme", "lang", "last_search", "display_name"))
    imp, esc = _esc(r)

    def body(expr):
        return (f"@app.route(\"{_route(r, 'prefs')}\")\ndef {fn}():\n    value = request.cookies.get(\"{ck}\", \"\")\n"
                f"    resp = make_response(\"<span id='pref'>\" + {expr} + \"</span>\")\n"
                f"    resp.headers[\"Content-Type\"] = \"text/html\"\n    return resp\n")
    return py_program(r, ["from flask import Flask, make_response, request"], *twin(r, body, "value", f"{esc}(value)"), [imp])


def _c(shape: Callable) -> Callable[[R], tuple[str, str]]:
    def run(r: R) -> tuple[str, str]:
        i = r.indent()
        v, p = shape(r, i)
        return v, p
    return run
