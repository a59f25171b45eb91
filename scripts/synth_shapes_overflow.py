"""More program shapes for CWE-787 (out-of-bounds write) and CWE-190 (integer overflow or wraparound), both in C.

Same conventions as ``synth_core.py``: every shape returns (vulnerable, patched) for one program, and the two versions
differ only in the lines of the fix; ``synth_vulns.py`` registers ``EXTRA``."""

from __future__ import annotations

from synth_core import *  # noqa: F401,F403
from synth_core import _c  # noqa: F401


# ------------------------------------------------------------------------------------------------------ CWE-787
def s787_sprintf(r: R, i: str):
    fn, msg, who = r.name("fn"), r.pick(("msg", "line", "banner", "status")), r.pick(("user", "who", "peer", "client"))
    size = r.pick((32, 48, 64, 80, 100))
    prefix = r.pick(("login", "denied", "welcome", "queued", "reject", "hello")) + r.pick(("", "-" + r.word()))
    what = r.pick(("code", "slot", "port", "retry", "level"))
    if size < len(prefix) + 40:
        size += 32
    fmt = f"{prefix}: %s ({what} %d)"
    head = (c_comment(r, f"Format the {what} line for one {who}") + f"int {fn}(const char *{who}, int {what})\n{{\n"
            + f"{i}char {msg}[{size}];\n")
    v = f"{i}sprintf({msg}, \"{fmt}\", {who}, {what});\n"
    prec = size - len(prefix) - 24
    p = r.pick((f"{i}snprintf({msg}, sizeof {msg}, \"{fmt}\", {who}, {what});\n",
                f"{i}sprintf({msg}, \"{prefix}: %.{prec}s ({what} %d)\", {who}, {what});\n"))
    out = r.pick((f"{i}puts({msg});\n", f"{i}fprintf(stderr, \"%s\\n\", {msg});\n",
                  f"{i}fputs({msg}, stdout);\n{i}fputc('\\n', stdout);\n"))
    tail = out + f"{i}return (int)strlen({msg});\n}}\n"
    main = r.pick((f"{i}return {fn}(argv[1], argc) < 0;\n",
                   f"{i}int n = {fn}(argv[1], {r.int(1, 9000)});\n{i}return n > 0 ? 0 : 1;\n"))
    return both(r, {"stdio.h", "string.h"}, head + v + tail, head + p + tail, main, i)


def s787_nul_room(r: R, i: str):
    fn, src, out = r.name("fn"), r.pick(("src", "text", "name", "word")), r.pick(("copy", "dup", "res", "clone"))
    ln = r.pick(("len", "n", "size"))
    kind = r.pick(("upper", "lower", "under"))
    body = {"upper": f"        {out}[k] = (char)toupper((unsigned char){out}[k]);\n",
            "lower": f"        {out}[k] = (char)tolower((unsigned char){out}[k]);\n",
            "under": f"        if ({out}[k] == ' ')\n            {out}[k] = '_';\n"}[kind]
    purpose = {"upper": "An upper-case copy of a string", "lower": "A lower-case copy of a key",
               "under": "A copy of a title with blanks turned into underscores"}[kind]
    head = c_comment(r, purpose) + f"char *{fn}(const char *{src})\n{{\n{i}size_t {ln} = strlen({src});\n"
    style = r.int(0, 2)
    if style == 0:
        v, p = f"{i}char *{out} = malloc({ln});\n", f"{i}char *{out} = malloc({ln} + 1);\n"
    elif style == 1:
        v, p = f"{i}char *{out} = malloc({ln} * sizeof(char));\n", f"{i}char *{out} = malloc(({ln} + 1) * sizeof(char));\n"
    else:
        v, p = f"{i}char *{out} = calloc({ln}, 1);\n", f"{i}char *{out} = calloc({ln} + 1, 1);\n"
    copy = r.pick((f"{i}strcpy({out}, {src});\n", f"{i}memcpy({out}, {src}, {ln} + 1);\n"))
    tail = (null_check(r, out, i, "return NULL;") + copy
            + block(f"    for (size_t k = 0; k < {ln}; k++) {{\n" + body + "    }\n", i) + f"{i}return {out};\n}}\n")
    main = (f"{i}char *s = {fn}(argv[1]);\n" + null_check(r, "s", i, "return 1;")
            + f"{i}puts(s);\n{i}free(s);\n{i}return 0;\n")
    return both(r, {"stdio.h", "stdlib.h", "string.h", "ctype.h"}, head + v + tail, head + p + tail, main, i)


def s787_signed_bucket(r: R, i: str):
    fn, hist, const = r.name("fn"), r.name("var"), r.name("const")
    n, low, width = r.pick((8, 10, 12, 16, 20)), r.pick((0, 10, -40, 100, 32)), r.pick((5, 10, 25, 50))
    b, val = r.pick(("b", "bucket", "bin", "slot")), r.pick(("value", "ms", "v", "obs"))
    head = (f"#define {const} {n}\n\nstatic unsigned {hist}[{const}];\n\n"
            + c_comment(r, f"Count one {val} in its histogram bucket") + f"int {fn}(int {val})\n{{\n"
            + f"{i}int {b} = ({val} - ({low})) / {width};\n\n")
    v = r.pick((f"{i}if ({b} >= {const})\n", f"{i}if ({b} > {const} - 1)\n"))
    p = r.pick((f"{i}if ({b} < 0 || {b} >= {const})\n", f"{i}if ((unsigned){b} >= {const})\n",
                f"{i}if ({b} >= {const} || {b} < 0)\n"))
    tail = f"{i}{i}return -1;\n{i}{hist}[{b}]++;\n{i}return {b};\n}}\n"
    main = block(f"    for (int k = 1; k < argc; k++)\n        {fn}(atoi(argv[k]));\n"
                 f"    for (int k = 0; k < {const}; k++)\n        printf(\"%2d %u\\n\", k, {hist}[k]);\n    return 0;\n", i)
    return both(r, {"stdio.h", "stdlib.h"}, head + v + tail, head + p + tail, main, i)


def s787_strncpy_len(r: R, i: str):
    t, fn, obj, fld = r.name("type"), r.name("fn"), r.pick(("rec", "obj", "e", "item")), r.pick(("name", "label", "title", "owner"))
    size, src, n = r.pick((12, 16, 24, 32)), r.pick(("src", "text", "value")), r.pick(("n", "len", "count"))
    defs = f"struct {t} {{\n{i}int id;\n{i}char {fld}[{size}];\n{i}unsigned flags;\n}};\n\n"
    head = (defs + c_comment(r, f"Set the {fld} of a {t}") + f"void {fn}(struct {t} *{obj}, const char *{src})\n{{\n")
    style = r.int(0, 1)
    if style == 0:
        v = f"{i}size_t {n} = strlen({src});\n"
        p = f"{i}size_t {n} = strnlen({src}, sizeof {obj}->{fld} - 1);\n"
    else:
        v = f"{i}size_t {n} = strlen({src});\n"
        p = f"{i}size_t {n} = strlen({src});\n{i}if ({n} >= sizeof {obj}->{fld})\n{i}{i}{n} = sizeof {obj}->{fld} - 1;\n"
    tail = f"{i}strncpy({obj}->{fld}, {src}, {n});\n{i}{obj}->{fld}[{n}] = '\\0';\n{i}{obj}->flags |= 1u;\n}}\n"
    main = (f"{i}struct {t} x = {{{r.int(1, 99)}, \"\", 0}};\n{i}{fn}(&x, argv[1]);\n"
            f"{i}printf(\"%d %s %u\\n\", x.id, x.{fld}, x.flags);\n{i}return 0;\n")
    return both(r, {"stdio.h", "string.h"}, head + v + tail, head + p + tail, main, i)


def s787_packet(r: R, i: str):
    t, fn, m, size = r.name("type"), r.name("fn"), r.pick(("msg", "out", "pkt", "rec")), r.pick((16, 24, 32, 48, 64))
    raw, n = r.pick(("raw", "wire", "buf", "data")), r.pick(("n", "len", "avail"))
    defs = (f"struct {t}_msg {{\n{i}unsigned char type;\n{i}unsigned char len;\n{i}unsigned char payload[{size}];\n}};\n\n")
    head = (defs + c_comment(r, f"Decode one type-length-value {t} message")
            + f"int {fn}(const unsigned char *{raw}, size_t {n}, struct {t}_msg *{m})\n{{\n"
            + block(f"    if ({n} < 2)\n        return -1;\n    {m}->type = {raw}[0];\n    {m}->len = {raw}[1];\n", i))
    style = r.int(0, 1)
    if style == 0:
        v = f"{i}if ({m}->len > {n} - 2)\n{i}{i}return -1;\n"
        p = f"{i}if ({m}->len > {n} - 2 || {m}->len > sizeof {m}->payload)\n{i}{i}return -1;\n"
    else:
        v = f"{i}if ({m}->len > {n} - 2)\n{i}{i}return -1;\n"
        p = (f"{i}if ({m}->len > {n} - 2)\n{i}{i}return -1;\n"
             f"{i}if ({m}->len > sizeof {m}->payload) {{\n{i}{i}fprintf(stderr, \"payload too long: %u\\n\", {m}->len);\n"
             f"{i}{i}return -1;\n{i}}}\n")
    tail = f"{i}memcpy({m}->payload, {raw} + 2, {m}->len);\n{i}return {m}->type;\n}}\n"
    main = block(f"    unsigned char in[{r.pick((300, 512, 1024))}];\n    struct {t}_msg one;\n"
                 "    size_t got = fread(in, 1, sizeof in, stdin);\n"
                 f"    if ({fn}(in, got, &one) < 0)\n        return 1;\n    printf(\"type %u, %u bytes\\n\", one.type, one.len);\n"
                 "    return 0;\n", i)
    return both(r, {"stdio.h", "string.h"}, head + v + tail, head + p + tail, main, i, argc=1)


def s787_stack_push(r: R, i: str):
    t, push, pop, const = r.name("type"), r.name("fn"), r.name("fn"), r.name("const")
    cap, s = r.pick((4, 8, 16, 32, 64)), r.pick(("s", "st", "stack"))
    et = r.pick(("int", "long", "double"))
    conv = {"int": "atoi", "long": "atol", "double": "atof"}[et]
    pf = {"int": "%d", "long": "%ld", "double": "%g"}[et]
    defs = (f"#define {const} {cap}\n\nstruct {t}_stack {{\n{i}{et} items[{const}];\n{i}int top;\n}};\n\n")
    head = c_comment(r, f"Push one {t} value") + f"int {push}(struct {t}_stack *{s}, {et} v)\n{{\n"
    v = r.pick((f"{i}if ({s}->top > {const})\n", f"{i}if ({s}->top == {const} + 1)\n", f"{i}if ({const} < {s}->top)\n"))
    p = r.pick((f"{i}if ({s}->top >= {const})\n", f"{i}if ({s}->top == {const})\n"))
    tail = (f"{i}{i}return -1;\n{i}{s}->items[{s}->top++] = v;\n{i}return 0;\n}}\n\n"
            + f"{et} {pop}(struct {t}_stack *{s})\n{{\n"
            + block(f"    if ({s}->top == 0)\n        return 0;\n    return {s}->items[--{s}->top];\n}}\n", i))
    main = block(f"    struct {t}_stack {s} = {{{{0}}, 0}};\n    for (int k = 1; k < argc; k++) {{\n"
                 f"        if ({push}(&{s}, {conv}(argv[k])) != 0)\n            break;\n    }}\n"
                 f"    while ({s}.top > 0)\n        printf(\"{pf}\\n\", {pop}(&{s}));\n    return 0;\n", i)
    return both(r, {"stdio.h", "stdlib.h"}, defs + head + v + tail, defs + head + p + tail, main, i)


def s787_scanf(r: R, i: str):
    fn, word, size = r.name("fn"), r.pick(("name", "cmd", "word", "code", "tag")), r.pick((8, 16, 20, 32, 64))
    num = r.pick(("qty", "count", "amount", "level"))
    src = r.pick(("stdin", "line"))
    if src == "stdin":
        call_v, call_p = f"scanf(\"%s %d\", {word}, &{num})", f"scanf(\"%{size - 1}s %d\", {word}, &{num})"
        sig, arg, argc = f"int {fn}(void)", "", 1
    else:
        call_v, call_p = f"sscanf(line, \"%s %d\", {word}, &{num})", f"sscanf(line, \"%{size - 1}s %d\", {word}, &{num})"
        sig, arg, argc = f"int {fn}(const char *line)", "argv[1]", 2
    head = (c_comment(r, f"Read a {word} and a {num}") + sig + "\n{\n"
            + block(f"    char {word}[{size}];\n    int {num};\n\n", i))
    tail = block(f"        return -1;\n    printf(\"%s x%d\\n\", {word}, {num});\n    return {num};\n}}\n", i)
    v = f"{i}if ({call_v} != 2)\n"
    p = f"{i}if ({call_p} != 2)\n"
    main = f"{i}return {fn}({arg}) < 0;\n"
    return both(r, {"stdio.h"}, head + v + tail, head + p + tail, main, i, argc=argc)


def s787_hex_decode(r: R, i: str):
    fn, hv, key, size = r.name("fn"), r.name("fn"), r.pick(("key", "mac", "digest", "bytes")), r.pick((4, 6, 8, 16, 20, 32))
    hx, n = r.pick(("hex", "text", "spec")), r.pick(("n", "used", "out_len"))
    helper = (f"static int {hv}(int c)\n{{\n"
              + block("    if (c >= '0' && c <= '9')\n        return c - '0';\n    c = tolower(c);\n"
                      "    if (c >= 'a' && c <= 'f')\n        return c - 'a' + 10;\n    return -1;\n}\n\n", i))
    head = (helper + c_comment(r, f"Decode a hex {key} and print its checksum") + f"int {fn}(const char *{hx})\n{{\n"
            + block(f"    unsigned char {key}[{size}];\n    size_t {n} = 0;\n    unsigned sum = 0;\n\n", i))
    loop_v = f"{i}for (size_t k = 0; {hx}[k] != '\\0' && {hx}[k + 1] != '\\0'; k += 2) {{\n"
    style = r.int(0, 1)
    if style == 0:
        lv, lp = loop_v, f"{i}for (size_t k = 0; {hx}[k] != '\\0' && {hx}[k + 1] != '\\0' && {n} < sizeof {key}; k += 2) {{\n"
        extra_v = extra_p = ""
    else:
        lv = lp = loop_v
        extra_v, extra_p = "", f"{i}{i}if ({n} == sizeof {key})\n{i}{i}{i}return -1;\n"
    inner = block(f"        int hi = {hv}((unsigned char){hx}[k]), lo = {hv}((unsigned char){hx}[k + 1]);\n"
                  "        if (hi < 0 || lo < 0)\n            return -1;\n", i)
    tail = block(f"        {key}[{n}++] = (unsigned char)((hi << 4) | lo);\n    }}\n"
                 f"    for (size_t k = 0; k < {n}; k++)\n        sum = sum * 31 + {key}[k];\n"
                 f"    printf(\"%zu bytes, sum %u\\n\", {n}, sum);\n    return 0;\n}}\n", i)
    return both(r, {"stdio.h", "ctype.h"}, head + lv + inner + extra_v + tail, head + lp + inner + extra_p + tail,
                f"{i}return {fn}(argv[1]) != 0;\n", i)


def s787_escape(r: R, i: str):
    fn, s, out, q = r.name("fn"), r.pick(("s", "field", "value", "in")), r.pick(("out", "esc", "res")), r.pick(("q", "w", "dst"))
    kind = r.pick(("csv", "backslash", "percent"))
    if kind == "csv":
        what, cond, put = "Quote a CSV field, doubling the quotes", f"*{s} == '\"'", f"*{q}++ = '\"';"
        pre, post = f"{i}*{q}++ = '\"';\n", f"{i}*{q}++ = '\"';\n"
        extra = 2
    elif kind == "backslash":
        what, cond, put = "Escape quotes and backslashes", f"*{s} == '\"' || *{s} == '\\\\'", f"*{q}++ = '\\\\';"
        pre = post = ""
        extra = 0
    else:
        what, cond, put = "Make a string safe to use as a printf format", f"*{s} == '%'", f"*{q}++ = '%';"
        pre = post = ""
        extra = 0
    head = (c_comment(r, what) + f"char *{fn}(const char *{s})\n{{\n" + f"{i}size_t len = strlen({s});\n")
    v = f"{i}char *{out} = malloc(len + {extra + 1});\n"
    p = r.pick((f"{i}char *{out} = malloc(2 * len + {extra + 1});\n", f"{i}char *{out} = malloc(len * 2 + {extra + 1});\n"))
    tail = (null_check(r, out, i, "return NULL;") + f"{i}char *{q} = {out};\n" + pre
            + block(f"    for (; *{s} != '\\0'; {s}++) {{\n        if ({cond})\n            {put}\n        *{q}++ = *{s};\n    }}\n", i)
            + post + f"{i}*{q} = '\\0';\n{i}return {out};\n}}\n")
    main = (f"{i}char *e = {fn}(argv[1]);\n" + null_check(r, "e", i, "return 1;")
            + f"{i}puts(e);\n{i}free(e);\n{i}return 0;\n")
    return both(r, {"stdio.h", "stdlib.h", "string.h"}, head + v + tail, head + p + tail, main, i)


def s787_trim_last(r: R, i: str):
    fn, line, size = r.name("fn"), r.pick(("line", "buf", "cmd", "input")), r.pick((64, 128, 256, 512))
    fp = r.pick(("in", "fp", "src"))
    style = r.pick(("fgets", "fread"))
    if style == "fgets":
        head = (c_comment(r, "Read a command line and drop its newline") + f"int {fn}(FILE *{fp})\n{{\n"
                + block(f"    char {line}[{size}];\n    if (fgets({line}, sizeof {line}, {fp}) == NULL)\n        return -1;\n", i))
        v = f"{i}{line}[strlen({line}) - 1] = '\\0';\n"
        p = r.pick((f"{i}{line}[strcspn({line}, \"\\n\")] = '\\0';\n",
                    f"{i}size_t n = strlen({line});\n{i}if (n > 0 && {line}[n - 1] == '\\n')\n{i}{i}{line}[n - 1] = '\\0';\n"))
    else:
        head = (c_comment(r, "Read a short record and strip the trailing newline") + f"int {fn}(FILE *{fp})\n{{\n"
                + block(f"    char {line}[{size}];\n    size_t n = fread({line}, 1, sizeof {line} - 1, {fp});\n"
                        f"    {line}[n] = '\\0';\n", i))
        v = f"{i}if ({line}[n - 1] == '\\n')\n{i}{i}{line}[n - 1] = '\\0';\n"
        p = f"{i}if (n > 0 && {line}[n - 1] == '\\n')\n{i}{i}{line}[n - 1] = '\\0';\n"
    tail = f"{i}printf(\"<%s>\\n\", {line});\n{i}return (int)strlen({line});\n}}\n"
    return both(r, {"stdio.h", "string.h"}, head + v + tail, head + p + tail, f"{i}return {fn}(stdin) < 0;\n", i, argc=1)


# ------------------------------------------------------------------------------------------------------ CWE-190
def s190_len_prefix(r: R, i: str):
    fn, text, rec, ln = r.name("fn"), r.pick(("text", "body", "name", "value")), r.pick(("rec", "frame", "out", "msg")), \
        r.pick(("len", "n", "size"))
    t = r.pick(("uint16_t", "unsigned short"))
    lim = "UINT16_MAX" if t == "uint16_t" else "USHRT_MAX"
    hdr = r.pick((2, 3, 4))
    head = (c_comment(r, f"Encode a string as a length-prefixed {r.name('type')} record")
            + f"unsigned char *{fn}(const char *{text}, size_t *out_len)\n{{\n{i}size_t {ln} = strlen({text});\n")
    style = r.int(0, 1)
    if style == 0:
        v, p = f"{i}{t} total = {ln} + {hdr};\n", f"{i}size_t total = {ln} + {hdr};\n"
    else:
        v = f"{i}{t} total = {ln} + {hdr};\n"
        p = f"{i}if ({ln} > {lim} - {hdr})\n{i}{i}return NULL;\n{i}{t} total = {ln} + {hdr};\n"
    tail = block(f"    unsigned char *{rec} = malloc(total);\n    if ({rec} == NULL)\n        return NULL;\n"
                 f"    memset({rec}, 0, {hdr});\n    {rec}[0] = (unsigned char)({ln} >> 8);\n    {rec}[1] = (unsigned char)({ln} & 0xff);\n"
                 f"    memcpy({rec} + {hdr}, {text}, {ln});\n    *out_len = total;\n    return {rec};\n}}\n", i)
    main = (f"{i}size_t n = 0;\n{i}unsigned char *r = {fn}(argv[1], &n);\n" + null_check(r, "r", i, "return 1;")
            + f"{i}fwrite(r, 1, n, stdout);\n{i}free(r);\n{i}return 0;\n")
    return both(r, {"stdio.h", "stdlib.h", "string.h", "stdint.h", "limits.h"}, head + v + tail, head + p + tail, main, i)


def s190_offset_check(r: R, i: str):
    fn, region, const = r.name("fn"), r.name("var"), r.name("const")
    size = r.pick((256, 1024, 4096, 512))
    off, ln = r.pick(("off", "offset", "pos", "start")), r.pick(("len", "count", "n"))
    t = r.pick(("uint32_t", "unsigned int", "size_t"))
    write = r.chance(0.5)
    if write:
        sig = f"int {fn}({t} {off}, {t} {ln}, const unsigned char *src)"
        op = f"{i}memcpy({region} + {off}, src, {ln});\n"
        what = "Patch a range of the shared region"
    else:
        sig = f"int {fn}({t} {off}, {t} {ln}, unsigned char *dst)"
        op = f"{i}memcpy(dst, {region} + {off}, {ln});\n"
        what = "Copy a range out of the shared region"
    head = f"#define {const} {size}\n\nstatic unsigned char {region}[{const}];\n\n" + c_comment(r, what) + sig + "\n{\n"
    v = r.pick((f"{i}if ({off} + {ln} > {const})\n", f"{i}if ({off} + {ln} > sizeof {region})\n"))
    fixes = [f"{i}if ({off} > {const} || {ln} > {const} - {off})\n",
             f"{i}if ({ln} > sizeof {region} || {off} > sizeof {region} - {ln})\n"]
    if t != "size_t":
        fixes.append(f"{i}if ((uint64_t){off} + {ln} > {const})\n")
    p = r.pick(fixes)
    tail = f"{i}{i}return -1;\n" + op + f"{i}return 0;\n}}\n"
    conv = "strtoul"
    main = block(f"    unsigned char tmp[{const}] = {{0}};\n"
                 f"    if ({fn}(({t}){conv}(argv[1], NULL, 0), ({t}){conv}(argv[2], NULL, 0), tmp) != 0)\n"
                 "        return 1;\n    printf(\"%02x\\n\", tmp[0]);\n    return 0;\n", i)
    return both(r, {"stdio.h", "stdlib.h", "string.h", "stdint.h"}, head + v + tail, head + p + tail, main, i, argc=3)


def s190_midpoint(r: R, i: str):
    fn, lo, hi, mid = r.name("fn"), r.pick(("lo", "low", "left")), r.pick(("hi", "high", "right")), r.pick(("mid", "m", "half"))
    structs = r.chance(0.5)
    if structs:
        t, fld = r.name("type"), r.pick(("id", "code", "key", "serial"))
        defs = f"struct {t} {{\n{i}int {fld};\n{i}const char *label;\n}};\n\n"
        sig = f"int {fn}(const struct {t} *a, int n, int want)"
        at = f"a[{mid}].{fld}"
        tbl = ", ".join(f"{{{k * r.int(2, 9) + 1}, \"{r.pick(NOUNS)}\"}}" for k in range(1, 6))
        main_tbl = f"{i}static const struct {t} tbl[] = {{{tbl}}};\n"
    else:
        defs, sig, at = "", f"int {fn}(const int *a, int n, int want)", f"a[{mid}]"
        main_tbl = f"{i}static const int tbl[] = {{{', '.join(str(k * r.int(3, 11)) for k in range(1, 8))}}};\n"
    head = (defs + c_comment(r, "Binary search in a sorted table; index or -1") + sig + "\n{\n"
            + block(f"    int {lo} = 0, {hi} = n - 1;\n    while ({lo} <= {hi}) {{\n", i))
    v = f"{i}{i}int {mid} = ({lo} + {hi}) / 2;\n"
    p = r.pick((f"{i}{i}int {mid} = {lo} + ({hi} - {lo}) / 2;\n", f"{i}{i}int {mid} = (int)(((long long){lo} + {hi}) / 2);\n",
                f"{i}{i}int {mid} = (int)(((unsigned){lo} + (unsigned){hi}) >> 1);\n"))
    tail = block(f"        if ({at} == want)\n            return {mid};\n        if ({at} < want)\n"
                 f"            {lo} = {mid} + 1;\n        else\n            {hi} = {mid} - 1;\n    }}\n    return -1;\n}}\n", i)
    main = main_tbl + f"{i}printf(\"%d\\n\", {fn}(tbl, (int)(sizeof tbl / sizeof tbl[0]), atoi(argv[1])));\n{i}return 0;\n"
    return both(r, {"stdio.h", "stdlib.h"}, head + v + tail, head + p + tail, main, i)


def s190_header_sub(r: R, i: str):
    fn, pkt, body, const = r.name("fn"), r.pick(("pkt", "frame", "dgram", "raw")), r.pick(("body", "payload", "text")), r.name("const")
    hdr = r.pick((4, 6, 8, 12, 16))
    ln = r.pick(("len", "n", "size"))
    head = (f"#define {const} {hdr}  /* bytes of header before the {body} */\n\n"
            + c_comment(r, f"Copy the {body} of a datagram into a string")
            + f"char *{fn}(const unsigned char *{pkt}, size_t {ln})\n{{\n")
    style = r.int(0, 2)
    if style == 0:
        v, p = "", f"{i}if ({ln} < {const})\n{i}{i}return NULL;\n"
    elif style == 1:
        v, p = f"{i}if ({ln} == 0)\n{i}{i}return NULL;\n", f"{i}if ({ln} < {const})\n{i}{i}return NULL;\n"
    else:
        v, p = f"{i}if ({ln} < 1)\n{i}{i}return NULL;\n", f"{i}if ({ln} <= {const})\n{i}{i}return NULL;\n"
    tail = block(f"    size_t {body}_len = {ln} - {const};\n    char *{body} = malloc({body}_len + 1);\n"
                 f"    if ({body} == NULL)\n        return NULL;\n    memcpy({body}, {pkt} + {const}, {body}_len);\n"
                 f"    {body}[{body}_len] = '\\0';\n    return {body};\n}}\n", i)
    main = block(f"    unsigned char in[{r.pick((512, 1500, 2048))}];\n    size_t got = fread(in, 1, sizeof in, stdin);\n"
                 f"    char *s = {fn}(in, got);\n    if (s == NULL)\n        return 1;\n    puts(s);\n    free(s);\n    return 0;\n", i)
    return both(r, {"stdio.h", "stdlib.h", "string.h"}, head + v + tail, head + p + tail, main, i, argc=1)


def s190_order_total(r: R, i: str):
    t, fn, ln, const = r.name("type"), r.name("fn"), r.pick(("l", "line", "it", "row")), r.name("const")
    limit = r.pick((1000000, 5000000, 100000000, 2000000000))
    price, qty = r.pick(("price_cents", "unit_price", "cost")), r.pick(("qty", "quantity", "units"))
    defs = f"#define {const} {limit}\n\nstruct {t}_line {{\n{i}char sku[16];\n{i}int {price};\n{i}int {qty};\n}};\n\n"
    head = (defs + c_comment(r, f"Cost of one {t} line, refused above the limit")
            + f"int {fn}(const struct {t}_line *{ln}, int *cost)\n{{\n"
            + block(f"    if ({ln}->{price} < 0 || {ln}->{qty} <= 0)\n        return -1;\n", i))
    v = f"{i}if ({ln}->{price} * {ln}->{qty} > {const})\n"
    p = r.pick((f"{i}if ({ln}->{price} > {const} / {ln}->{qty})\n",
                f"{i}if ((long long){ln}->{price} * {ln}->{qty} > {const})\n"))
    tail = f"{i}{i}return -1;\n{i}*cost = {ln}->{price} * {ln}->{qty};\n{i}return 0;\n}}\n"
    main = block(f"    struct {t}_line x = {{\"{r.pick(NOUNS)[:10]}\", atoi(argv[1]), atoi(argv[2])}};\n    int c = 0;\n"
                 f"    if ({fn}(&x, &c) != 0) {{\n        fprintf(stderr, \"refused\\n\");\n        return 1;\n    }}\n"
                 "    printf(\"%d.%02d\\n\", c / 100, c % 100);\n    return 0;\n", i)
    return both(r, {"stdio.h", "stdlib.h"}, head + v + tail, head + p + tail, main, i, argc=3)


def s190_concat_all(r: R, i: str):
    fn, parts, out, sep = r.name("fn"), r.pick(("parts", "words", "args", "items")), r.pick(("out", "joined", "cmd")), \
        r.pick((" ", ",", ":", "/"))
    t = r.pick(("int", "unsigned short", "uint16_t"))
    lim = {"int": "INT_MAX", "unsigned short": "USHRT_MAX", "uint16_t": "UINT16_MAX"}[t]
    head = (c_comment(r, f"Join the arguments with '{sep}'") + f"char *{fn}(int count, char **{parts})\n{{\n"
            + f"{i}{t} total = 1;\n\n{i}for (int k = 0; k < count; k++) {{\n{i}{i}size_t n = strlen({parts}[k]);\n")
    style = r.int(0, 1)
    add = f"{i}{i}total += n + 1;\n"
    if style == 0:
        v, p = add, f"{i}{i}if (n + 1 > (size_t)({lim} - total))\n{i}{i}{i}return NULL;\n" + add
        tv = tp = f"{i}{t} total = 1;\n"
    else:
        v = p = add
        tv, tp = f"{i}{t} total = 1;\n", f"{i}size_t total = 1;\n"
    head_v = head.replace(f"{i}{t} total = 1;\n", tv, 1)
    head_p = head.replace(f"{i}{t} total = 1;\n", tp, 1)
    tail = block(f"    }}\n    char *{out} = malloc(total);\n    if ({out} == NULL)\n        return NULL;\n    {out}[0] = '\\0';\n"
                 f"    for (int k = 0; k < count; k++) {{\n        if (k > 0)\n            strcat({out}, \"{sep}\");\n"
                 f"        strcat({out}, {parts}[k]);\n    }}\n    return {out};\n}}\n", i)
    main = (f"{i}char *s = {fn}(argc - 1, argv + 1);\n" + null_check(r, "s", i, "return 1;")
            + f"{i}puts(s);\n{i}free(s);\n{i}return 0;\n")
    return both(r, {"stdio.h", "stdlib.h", "string.h", "stdint.h", "limits.h"}, head_v + v + tail, head_p + p + tail, main, i)


def s190_units(r: R, i: str):
    fn, spec, out, n = r.name("fn"), r.pick(("spec", "text", "arg", "setting")), r.pick(("out", "bytes", "result")), \
        r.pick(("n", "num", "amount"))
    what = r.pick(("cache size", "upload limit", "buffer size", "log quota", "memory cap"))
    t = r.pick(("int", "unsigned"))
    lim = "INT_MAX" if t == "int" else "UINT_MAX"
    shift = r.chance(0.5)
    units = (("k", 10, 1024), ("m", 20, 1048576), ("g", 30, 1073741824))
    cases = "".join(f"    case '{u}':\n    case '{u.upper()}':\n        sh = {b};\n        break;\n" for u, b, _ in units) if shift else \
        "".join(f"    case '{u}':\n    case '{u.upper()}':\n        mul = {m};\n        break;\n" for u, _, m in units)
    var = "sh" if shift else "mul"
    init = "0" if shift else "1"
    head = (c_comment(r, f"Parse a {what} such as 64k or 2M")
            + f"int {fn}(const char *{spec}, {t} *{out})\n{{\n"
            + block(f"    char *end;\n    long {n} = strtol({spec}, &end, 10);\n    {t} {var} = {init};\n\n"
                    f"    if (end == {spec} || {n} < 0 || {n} > {lim})\n        return -1;\n    switch (*end) {{\n" + cases
                    + "    case '\\0':\n        break;\n    default:\n        return -1;\n    }\n", i))
    if shift:
        fix = r.pick((f"{i}if ({n} > ({lim} >> {var}))\n{i}{i}return -1;\n", f"{i}if (({n} << {var}) > {lim})\n{i}{i}return -1;\n"))
        calc = f"{i}*{out} = ({t}){n} << {var};\n"
    else:
        fix = r.pick((f"{i}if ({n} > {lim} / {var})\n{i}{i}return -1;\n", f"{i}if ({n} * {var} > {lim})\n{i}{i}return -1;\n"))
        calc = f"{i}*{out} = ({t}){n} * {var};\n"
    tail = calc + f"{i}return 0;\n}}\n"
    pf = "%d" if t == "int" else "%u"
    main = block(f"    {t} v;\n    if ({fn}(argv[1], &v) != 0)\n        return 1;\n    printf(\"{pf}\\n\", v);\n    return 0;\n", i)
    return both(r, {"stdio.h", "stdlib.h", "limits.h"}, head + tail, head + fix + tail, main, i)


def s190_grow(r: R, i: str):
    t, fn, vec, et = r.name("type"), r.name("fn"), r.pick(("v", "vec", "list", "arr")), r.pick(("int", "long", "double", "float"))
    ct = r.pick(("uint32_t", "unsigned int", "unsigned"))
    lim = "UINT32_MAX" if ct == "uint32_t" else "UINT_MAX"
    ncap = r.pick(("ncap", "bigger", "want"))
    grow = r.pick(("double", "half"))
    expr = f"{vec}->cap ? {vec}->cap * 2 : {r.pick((4, 8, 16))}" if grow == "double" else \
        f"{vec}->cap + {vec}->cap / 2 + {r.pick((4, 8, 16))}"
    defs = f"struct {t}_vec {{\n{i}{et} *items;\n{i}{ct} len;\n{i}{ct} cap;\n}};\n\n"
    head = (defs + c_comment(r, f"Append one value, growing the {t} list when full")
            + f"int {fn}(struct {t}_vec *{vec}, {et} x)\n{{\n{i}if ({vec}->len == {vec}->cap) {{\n")
    fix = (f"{i}{i}if ({vec}->cap > {lim} / 2 / sizeof *{vec}->items)\n{i}{i}{i}return -1;\n" if grow == "double" else
           f"{i}{i}if ({vec}->cap > {lim} / 3 / sizeof *{vec}->items)\n{i}{i}{i}return -1;\n")
    tail = block(f"        {ct} {ncap} = {expr};\n        {et} *p = realloc({vec}->items, {ncap} * sizeof *p);\n"
                 f"        if (p == NULL)\n            return -1;\n        {vec}->items = p;\n        {vec}->cap = {ncap};\n    }}\n"
                 f"    {vec}->items[{vec}->len++] = x;\n    return 0;\n}}\n", i)
    conv = "atoi" if et in ("int", "long") else "atof"
    main = block(f"    struct {t}_vec {vec} = {{NULL, 0, 0}};\n    for (int k = 1; k < argc; k++) {{\n"
                 f"        if ({fn}(&{vec}, {conv}(argv[k])) != 0)\n            return 1;\n    }}\n"
                 f"    printf(\"%u\\n\", (unsigned){vec}.len);\n    free({vec}.items);\n    return 0;\n", i)
    return both(r, {"stdio.h", "stdlib.h", "stdint.h", "limits.h"}, head + tail, head + fix + tail, main, i, argc=1)


def s190_align_up(r: R, i: str):
    fn, pool, used, const = r.name("fn"), r.name("var"), r.pick(("used", "top", "mark")), r.name("const")
    align, size = r.pick((8, 16, 32, 64)), r.pick((4096, 8192, 65536, 1024))
    n, need = r.pick(("n", "size", "bytes")), r.pick(("need", "rounded", "step"))
    head = (f"#define {const} {align}\n\nstatic unsigned char {pool}[{size}];\nstatic size_t {used};\n\n"
            + c_comment(r, f"Bump allocator: {align}-byte aligned blocks from a static pool")
            + f"void *{fn}(size_t {n})\n{{\n")
    fix = r.pick((f"{i}if ({n} > SIZE_MAX - ({const} - 1))\n{i}{i}return NULL;\n",
                  f"{i}if ({n} == 0 || {n} > sizeof {pool})\n{i}{i}return NULL;\n"))
    tail = block(f"    size_t {need} = ({n} + {const} - 1) & ~(size_t)({const} - 1);\n"
                 f"    if ({need} > sizeof {pool} - {used})\n        return NULL;\n    void *p = {pool} + {used};\n"
                 f"    {used} += {need};\n    return p;\n}}\n", i)
    main = block(f"    size_t want = (size_t)strtoull(argv[1], NULL, 0);\n    unsigned char *b = {fn}(want);\n"
                 "    if (b == NULL)\n        return 1;\n    memset(b, 0, want);\n    return 0;\n", i)
    return both(r, {"stdlib.h", "string.h", "stdint.h"}, head + tail, head + fix + tail, main, i)


EXTRA = {
    "cwe-787": {"sprintf": _c(s787_sprintf), "nul-room": _c(s787_nul_room), "signed-bucket": _c(s787_signed_bucket),
                "strncpy-len": _c(s787_strncpy_len), "tlv-packet": _c(s787_packet), "stack-push": _c(s787_stack_push),
                "scanf-word": _c(s787_scanf), "hex-decode": _c(s787_hex_decode), "escape-expand": _c(s787_escape),
                "trim-last": _c(s787_trim_last)},
    "cwe-190": {"len-prefix": _c(s190_len_prefix), "offset-check": _c(s190_offset_check), "midpoint": _c(s190_midpoint),
                "header-sub": _c(s190_header_sub), "order-total": _c(s190_order_total),
                "concat-all": _c(s190_concat_all), "units": _c(s190_units), "grow": _c(s190_grow),
                "align-up": _c(s190_align_up)},
}
