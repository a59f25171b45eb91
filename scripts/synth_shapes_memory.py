"""More program shapes for CWE-476 (NULL pointer dereference) and CWE-416 (use after free), both in C.

Same conventions as ``synth_core.py``: every shape returns (vulnerable, patched) for one program, and the two versions
differ only in the lines of the fix; ``synth_vulns.py`` registers ``EXTRA``."""

from __future__ import annotations

from synth_core import *  # noqa: F401,F403
from synth_core import _c  # noqa: F401


def _words(r: R, k: int) -> list[str]:
    """k distinct short words for string tables."""
    return r.rng.sample(NOUNS, k)


# ------------------------------------------------------------------------------------------------------ CWE-476
def s476_realloc_grow(r: R, i: str):
    t, fn, vals = r.name("type"), r.name("fn"), r.pick(("items", "vals", "data", "elems"))
    tmp, init = r.pick(("grown", "bigger", "fresh", "resized")), r.pick((4, 8, 16))
    et = r.pick(("int", "long", "double"))
    head = (f"struct {t}_vec {{\n{i}{et} *{vals};\n{i}size_t len;\n{i}size_t cap;\n}};\n\n"
            + c_comment(r, f"Append one value to a growing {t} vector")
            + f"int {fn}(struct {t}_vec *v, {et} x)\n{{\n"
            + block(f"    if (v->len == v->cap) {{\n        size_t ncap = v->cap ? v->cap * 2 : {init};\n", i))
    if r.chance(0.5):  # result kept in a temporary but never checked
        v = block(f"        {et} *{tmp} = realloc(v->{vals}, ncap * sizeof *{tmp});\n        v->{vals} = {tmp};\n", i)
        p = block(f"        {et} *{tmp} = realloc(v->{vals}, ncap * sizeof *{tmp});\n", i) \
            + "".join(i + ln + "\n" for ln in null_check(r, tmp, i, "return -1;", "out of memory").splitlines()) \
            + block(f"        v->{vals} = {tmp};\n", i)
    else:  # assigned straight back to the field
        v = block(f"        v->{vals} = realloc(v->{vals}, ncap * sizeof *v->{vals});\n", i)
        p = block(f"        {et} *{tmp} = realloc(v->{vals}, ncap * sizeof *{tmp});\n        if ({tmp} == NULL)\n"
                  f"            return -1;\n        v->{vals} = {tmp};\n", i)
    tail = block(f"        v->cap = ncap;\n    }}\n    v->{vals}[v->len++] = x;\n    return 0;\n}}\n", i)
    conv = {"int": "atoi(argv[k])", "long": "strtol(argv[k], NULL, 10)", "double": "atof(argv[k])"}[et]
    main = block(f"    struct {t}_vec v = {{NULL, 0, 0}};\n    for (int k = 1; k < argc; k++) {{\n"
                 f"        if ({fn}(&v, {conv}) != 0)\n            return 1;\n    }}\n"
                 f"    printf(\"%zu values\\n\", v.len);\n    free(v.{vals});\n    return 0;\n", i)
    return both(r, {"stdio.h", "stdlib.h"}, head + v + tail, head + p + tail, main, i, argc=1)


def s476_strtok_fields(r: R, i: str):
    fn, line = r.name("fn"), r.pick(("line", "rec", "spec", "input"))
    a, b = r.pick(("name", "label", "who", "key")), r.pick(("qty", "amount", "value", "num"))
    sep = r.pick((",", ";", ":", "|", " "))
    what = r.word()
    head = (c_comment(r, f"Parse one \"NAME{sep}COUNT\" line of the {what} file") + f"int {fn}(char *{line})\n{{\n"
            + block(f"    char *{a} = strtok({line}, \"{sep}\");\n    char *{b}_s = strtok(NULL, \"{sep}\");\n", i))
    tail = block(f"    long {b} = strtol({b}_s, NULL, 10);\n    printf(\"%-12s %6ld\\n\", {a}, {b});\n"
                 f"    return {b} > 0 ? 0 : 1;\n}}\n", i)
    full = r.pick((f"{a} == NULL || {b}_s == NULL", f"!{a} || !{b}_s", f"{b}_s == NULL"))
    msg = r.pick(("malformed line", "missing field", "expected two fields"))
    fix = block(f"    if ({full}) {{\n        fprintf(stderr, \"{msg}\\n\");\n        return -1;\n    }}\n", i)
    if r.chance(0.4):  # checks only the first field
        v = block(f"    if ({a} == NULL) {{\n        fprintf(stderr, \"{msg}\\n\");\n        return -1;\n    }}\n", i)
    else:
        v = ""
    buf = r.pick((128, 256, 512))
    main = block(f"    char buf[{buf}];\n    int bad = 0;\n    while (fgets(buf, sizeof buf, stdin) != NULL) {{\n"
                 f"        buf[strcspn(buf, \"\\n\")] = '\\0';\n        if ({fn}(buf) != 0)\n            bad++;\n    }}\n"
                 "    return bad != 0;\n", i)
    return both(r, {"stdio.h", "stdlib.h", "string.h"}, head + v + tail, head + fix + tail, main, i, argc=1)


def s476_check_after_use(r: R, i: str):
    t, fn, p, get = r.name("type"), r.name("fn"), r.pick(("obj", "rec", "info", "cfg")), r.name("fn")
    fld = r.pick(("flags", "mode", "level", "kind"))
    n = r.int(3, 6)
    names = _words(r, n)
    table = (f"struct {t} {{\n{i}int id;\n{i}char name[24];\n{i}unsigned {fld};\n}};\n\n"
             f"static struct {t} {t}_all[] = {{\n"
             + "".join(f"{i}{{{k + 1}, \"{w}\", {r.int(0, 15)}u}},\n" for k, w in enumerate(names)) + "};\n\n"
             + f"static struct {t} *{get}(int k)\n{{\n"
             + block(f"    if (k < 0 || k >= (int)(sizeof {t}_all / sizeof {t}_all[0]))\n        return NULL;\n"
                     f"    return &{t}_all[k];\n", i) + "}\n\n")
    head = (c_comment(r, f"Describe one {t} in a short line") + f"int {fn}(const struct {t} *{p}, char *out, size_t size)\n{{\n")
    use = f"{i}unsigned {fld} = {p}->{fld};\n"
    chk = null_check(r, p, i, "return -1;")
    tail = block(f"    snprintf(out, size, \"%d:%s:%u\", {p}->id, {p}->name, {fld});\n    return 0;\n}}\n", i)
    main = block(f"    char line[64];\n    if ({fn}({get}(atoi(argv[1])), line, sizeof line) != 0)\n        return 1;\n"
                 "    puts(line);\n    return 0;\n", i)
    return both(r, {"stdio.h", "stdlib.h"}, table + head + use + chk + tail, table + head + chk + use + tail, main, i)


def s476_wrong_check(r: R, i: str):
    t, fn, p, fld = r.name("type"), r.name("fn"), r.pick(("obj", "rec", "ent", "nw")), r.pick(("name", "title", "tag", "text"))
    src = r.pick(("src", "given", "from"))
    head = (f"struct {t} {{\n{i}int id;\n{i}char *{fld};\n}};\n\n"
            + c_comment(r, f"Make a {t} with an upper-case copy of the {fld}")
            + f"struct {t} *{fn}(int id, const char *{src})\n{{\n"
            + block(f"    struct {t} *{p} = malloc(sizeof *{p});\n    if ({p} == NULL)\n        return NULL;\n    {p}->id = id;\n", i))
    if r.chance(0.5):
        dup = f"{i}{p}->{fld} = strdup({src});\n"
    else:
        dup = f"{i}{p}->{fld} = malloc(strlen({src}) + 1);\n"
    wrong = r.pick((p, src))
    cond_v = r.pick((f"{wrong} == NULL", f"!{wrong}"))
    cond_p = cond_v.replace(wrong, f"{p}->{fld}")
    chk_tail = block(f"        free({p});\n        return NULL;\n    }}\n", i)
    copy = "" if "strdup" in dup else f"{i}strcpy({p}->{fld}, {src});\n"
    tail = copy + block(f"    for (char *c = {p}->{fld}; *c != '\\0'; c++)\n        *c = (char)toupper((unsigned char)*c);\n"
                        f"    return {p};\n}}\n", i)
    main = block(f"    struct {t} *x = {fn}({r.int(1, 99)}, argv[1]);\n    if (x == NULL)\n        return 1;\n"
                 f"    printf(\"%d %s\\n\", x->id, x->{fld});\n    free(x->{fld});\n    free(x);\n    return 0;\n", i)
    v = head + dup + f"{i}if ({cond_v}) {{\n" + chk_tail + tail
    pt = head + dup + f"{i}if ({cond_p}) {{\n" + chk_tail + tail
    return both(r, {"stdio.h", "stdlib.h", "string.h", "ctype.h"}, v, pt, main, i)


def s476_optional_hook(r: R, i: str):
    t, fn = r.name("type"), r.name("fn")
    o_open, o_close, o_desc = r.name("fn"), r.name("fn"), r.name("fn")
    hook = r.pick(("describe", "summary", "label_of", "status"))
    plain, full = r.name("var"), r.name("var")
    defs = (f"struct {t}_ops {{\n{i}int (*open)(const char *arg);\n{i}void (*close)(int h);\n"
            f"{i}const char *(*{hook})(int h);  /* optional */\n}};\n\n"
            f"static int {o_open}(const char *arg)\n{{\n{i}return (int)strlen(arg);\n}}\n\n"
            f"static void {o_close}(int h)\n{{\n{i}printf(\"closed %d\\n\", h);\n}}\n\n"
            f"static const char *{o_desc}(int h)\n{{\n{i}return h > {r.int(3, 12)} ? \"{r.word()}\" : \"{r.word()}\";\n}}\n\n"
            f"static const struct {t}_ops {plain}_ops = {{{o_open}, {o_close}, NULL}};\n"
            f"static const struct {t}_ops {full}_ops = {{{o_open}, {o_close}, {o_desc}}};\n\n")
    head = (c_comment(r, f"Open, describe and close one {t} handle")
            + f"int {fn}(const struct {t}_ops *ops, const char *arg)\n{{\n{i}int h = ops->open(arg);\n")
    style = r.int(0, 1)
    if style == 0:
        v = f"{i}printf(\"%d: %s\\n\", h, ops->{hook}(h));\n"
        p = f"{i}if (ops->{hook} != NULL)\n{i}{i}printf(\"%d: %s\\n\", h, ops->{hook}(h));\n"
    else:
        v = f"{i}const char *what = ops->{hook}(h);\n"
        p = f"{i}const char *what = ops->{hook} != NULL ? ops->{hook}(h) : \"-\";\n"
        v += f"{i}printf(\"%d: %s\\n\", h, what);\n"
        p += f"{i}printf(\"%d: %s\\n\", h, what);\n"
    tail = f"{i}ops->close(h);\n{i}return h;\n}}\n"
    main = block(f"    const struct {t}_ops *ops = argc > 2 ? &{full}_ops : &{plain}_ops;\n"
                 f"    return {fn}(ops, argv[1]) < 0;\n", i)
    return both(r, {"stdio.h", "string.h"}, defs + head + v + tail, defs + head + p + tail, main, i)


def s476_bsearch(r: R, i: str):
    t, fn, cmp, tbl = r.name("type"), r.name("fn"), r.name("fn"), r.name("var") + "_rows"
    fld = r.pick(("code", "id", "num", "key"))
    codes = sorted(r.rng.sample(range(100, 600), r.int(3, 6)))
    rows = "".join(f"{i}{{{c}, \"{r.word()}\"}},\n" for c in codes)
    defs = (f"struct {t} {{\n{i}int {fld};\n{i}const char *text;\n}};\n\n"
            f"static const struct {t} {tbl}[] = {{\n{rows}}};\n\n"
            f"static int {cmp}(const void *a, const void *b)\n{{\n"
            + block(f"    const struct {t} *x = a, *y = b;\n    return (x->{fld} > y->{fld}) - (x->{fld} < y->{fld});\n", i)
            + "}\n\n")
    hit = r.pick(("hit", "found", "match", "row"))
    head = (c_comment(r, f"Text for a {t} {fld} (the table is sorted)") + f"const char *{fn}(int {fld})\n{{\n"
            + block(f"    struct {t} want = {{{fld}, NULL}};\n"
                    f"    const struct {t} *{hit} = bsearch(&want, {tbl}, sizeof {tbl} / sizeof {tbl}[0], sizeof {tbl}[0], {cmp});\n", i))
    fallback = r.pick(("unknown", "?", "n/a", "none"))
    v = f"{i}return {hit}->text;\n}}\n"
    p = r.pick((null_check(r, hit, i, f"return \"{fallback}\";") + v,
                f"{i}return {hit} != NULL ? {hit}->text : \"{fallback}\";\n}}\n"))
    main = f"{i}puts({fn}(atoi(argv[1])));\n{i}return 0;\n"
    return both(r, {"stdio.h", "stdlib.h"}, defs + head + v, defs + head + p, main, i)


def s476_tree(r: R, i: str):
    t, fn, ins = r.name("type"), r.name("fn"), r.name("fn")
    val = r.pick(("value", "weight", "price", "score"))
    n = r.pick(("n", "node", "at", "cur"))
    defs = (f"struct {t} {{\n{i}int key;\n{i}int {val};\n{i}struct {t} *left;\n{i}struct {t} *right;\n}};\n\n"
            f"static struct {t} *{ins}(struct {t} *root, struct {t} *x)\n{{\n"
            + block(f"    if (root == NULL)\n        return x;\n    if (x->key < root->key)\n        root->left = {ins}(root->left, x);\n"
                    f"    else\n        root->right = {ins}(root->right, x);\n    return root;\n", i) + "}\n\n")
    head = c_comment(r, f"The {val} stored under a key") + f"int {fn}(const struct {t} *{n}, int key)\n{{\n"
    if r.chance(0.5):  # recursive: missing base case
        body = block(f"    if (key == {n}->key)\n        return {n}->{val};\n"
                     f"    return {fn}(key < {n}->key ? {n}->left : {n}->right, key);\n}}\n", i)
        v = head + body
        p = head + block(f"    if ({n} == NULL)\n        return -1;\n", i) + body
    else:  # iterative: the loop does not stop at a leaf
        v = head + block(f"    while ({n}->key != key)\n        {n} = key < {n}->key ? {n}->left : {n}->right;\n"
                         f"    return {n}->{val};\n}}\n", i)
        p = head + block(f"    while ({n} != NULL && {n}->key != key)\n        {n} = key < {n}->key ? {n}->left : {n}->right;\n"
                         f"    return {n} != NULL ? {n}->{val} : -1;\n}}\n", i)
    keys = r.rng.sample(range(1, 90), r.int(4, 7))
    init = ", ".join(f"{{{k}, {r.int(1, 500)}, NULL, NULL}}" for k in keys)
    main = block(f"    static struct {t} pool[] = {{{init}}};\n    struct {t} *root = NULL;\n"
                 f"    for (size_t k = 0; k < sizeof pool / sizeof pool[0]; k++)\n        root = {ins}(root, &pool[k]);\n"
                 f"    printf(\"%d\\n\", {fn}(root, atoi(argv[1])));\n    return 0;\n", i)
    return both(r, {"stdio.h", "stdlib.h"}, defs + v, defs + p, main, i)


def s476_short_circuit(r: R, i: str):
    t, fn, get, b = r.name("type"), r.name("fn"), r.name("fn"), r.pick(("b", "sl", "ent", "cur"))
    size = r.pick((32, 64, 128))
    defs = (f"struct {t} {{\n{i}size_t len;\n{i}char data[{size}];\n}};\n\n"
            f"static struct {t} *{get}(struct {t} *pool, int n, int k)\n{{\n"
            f"{i}return (k >= 0 && k < n) ? &pool[k] : NULL;\n}}\n\n")
    head = (c_comment(r, f"First byte of one {t}, or -1 when it is missing or empty")
            + f"int {fn}(struct {t} *pool, int n, int k)\n{{\n{i}struct {t} *{b} = {get}(pool, n, k);\n")
    style = r.int(0, 2)
    if style == 0:
        v, p = f"{b} != NULL || {b}->len > 0", f"{b} != NULL && {b}->len > 0"
        tail_ok = block(f"        return (unsigned char){b}->data[0];\n    return -1;\n}}\n", i)
    elif style == 1:
        v, p = f"{b}->len > 0 && {b} != NULL", f"{b} != NULL && {b}->len > 0"
        tail_ok = block(f"        return (unsigned char){b}->data[0];\n    return -1;\n}}\n", i)
    else:
        v, p = f"{b} == NULL && {b}->len == 0", f"{b} == NULL || {b}->len == 0"
        tail_ok = block(f"        return -1;\n    return (unsigned char){b}->data[0];\n}}\n", i)
    cnt = r.int(2, 5)
    main = block(f"    struct {t} pool[{cnt}];\n    memset(pool, 0, sizeof pool);\n"
                 f"    snprintf(pool[0].data, sizeof pool[0].data, \"%s\", argv[1]);\n    pool[0].len = strlen(pool[0].data);\n"
                 f"    printf(\"%d\\n\", {fn}(pool, {cnt}, argc > 2 ? atoi(argv[2]) : 0));\n    return 0;\n", i)
    return both(r, {"stdio.h", "stdlib.h", "string.h"}, defs + head + f"{i}if ({v})\n" + tail_ok,
                defs + head + f"{i}if ({p})\n" + tail_ok, main, i)


def s476_localtime(r: R, i: str):
    fn, tm, out = r.name("fn"), r.pick(("tm", "when", "parts", "cal")), r.pick(("stamp", "text", "out", "date"))
    conv = r.pick(("localtime", "gmtime"))
    fmt = r.pick(("%Y-%m-%d %H:%M", "%d/%m/%Y", "%Y%m%dT%H%M%S", "%a %d %b %Y"))
    head = (c_comment(r, "Print a Unix time as a readable date") + f"int {fn}(const char *arg)\n{{\n"
            + block(f"    char {out}[64];\n    time_t t = (time_t)strtoll(arg, NULL, 10);\n    struct tm *{tm} = {conv}(&t);\n", i))
    fix = null_check(r, tm, i, "return -1;", "time out of range")
    tail = block(f"    strftime({out}, sizeof {out}, \"{fmt}\", {tm});\n    printf(\"%s (day %d)\\n\", {out}, {tm}->tm_yday);\n"
                 "    return 0;\n}\n", i)
    return both(r, {"stdio.h", "stdlib.h", "time.h"}, head + tail, head + fix + tail,
                f"{i}return {fn}(argv[1]) != 0;\n", i)


def s476_passwd(r: R, i: str):
    fn = r.name("fn")
    kind = r.int(0, 2)
    if kind == 0:
        hdr, ent, call, args = "pwd.h", "struct passwd", "getpwnam", "const char *user"
        arg, fields = "user", r.pick((("pw_dir", "pw_uid", "%u"), ("pw_shell", "pw_gid", "%u")))
        var = r.pick(("pw", "ent", "acct"))
    elif kind == 1:
        hdr, ent, call, args = "pwd.h", "struct passwd", "getpwuid", "uid_t uid"
        arg, fields = "uid", r.pick((("pw_name", "pw_gid", "%u"), ("pw_dir", "pw_gid", "%u")))
        var = r.pick(("pw", "owner", "acct"))
    else:
        hdr, ent, call, args = "grp.h", "struct group", "getgrnam", "const char *group"
        arg, fields = "group", ("gr_name", "gr_gid", "%u")
        var = r.pick(("gr", "grp", "team"))
    s, n, f = fields
    head = (c_comment(r, f"Show account details for the {r.word()} report") + f"int {fn}({args})\n{{\n"
            f"{i}{ent} *{var} = {call}({arg});\n")
    fix = null_check(r, var, i, "return -1;", f"no such {'group' if kind == 2 else 'user'}")
    tail = block(f"    printf(\"%s {f}\\n\", {var}->{s}, (unsigned){var}->{n});\n    return 0;\n}}\n", i)
    call_arg = "(uid_t)strtoul(argv[1], NULL, 10)" if kind == 1 else "argv[1]"
    return both(r, {"stdio.h", "stdlib.h", "sys/types.h", hdr}, head + tail, head + fix + tail,
                f"{i}return {fn}({call_arg}) != 0;\n", i)


def s476_sparse_slots(r: R, i: str):
    t, const, slots = r.name("type"), r.name("const"), r.name("var")
    reg, fn = r.name("fn"), r.name("fn")
    slots += "_slots"
    n = r.pick((8, 16, 32))
    fld = r.pick(("hits", "uses", "visits", "calls"))
    defs = (f"#define {const} {n}\n\nstruct {t} {{\n{i}char name[20];\n{i}int {fld};\n}};\n\n"
            f"static struct {t} *{slots}[{const}];\n\n"
            + c_comment(r, f"Put a new {t} in a free slot") + f"int {reg}(int k, const char *name)\n{{\n"
            + block(f"    if (k < 0 || k >= {const} || {slots}[k] != NULL)\n        return -1;\n"
                    f"    {slots}[k] = calloc(1, sizeof(struct {t}));\n    if ({slots}[k] == NULL)\n        return -1;\n"
                    f"    snprintf({slots}[k]->name, sizeof {slots}[k]->name, \"%s\", name);\n    return 0;\n", i) + "}\n\n")
    if r.chance(0.5):  # one slot: the range is checked, the slot may be empty
        head = c_comment(r, "Count one use of slot k") + f"int {fn}(int k)\n{{\n"
        v = f"{i}if (k < 0 || k >= {const})\n"
        p = r.pick((f"{i}if (k < 0 || k >= {const} || {slots}[k] == NULL)\n",
                    f"{i}if (k < 0 || k >= {const} || !{slots}[k])\n"))
        tail = block(f"        return -1;\n    return ++{slots}[k]->{fld};\n}}\n", i)
        vv, pp = defs + head + v + tail, defs + head + p + tail
        main = (f"{i}{reg}({r.int(0, n - 1)}, \"{r.word()}\");\n"
                f"{i}printf(\"%d\\n\", {fn}(atoi(argv[1])));\n{i}return 0;\n")
    else:  # every slot: the loop reads empty ones too
        head = (c_comment(r, f"List every registered {t}") + f"void {fn}(FILE *out)\n{{\n"
                f"{i}for (int k = 0; k < {const}; k++) {{\n")
        fix = f"{i}{i}if ({slots}[k] == NULL)\n{i}{i}{i}continue;\n"
        tail = block(f"        fprintf(out, \"%2d %-20s %d\\n\", k, {slots}[k]->name, {slots}[k]->{fld});\n    }}\n}}\n", i)
        vv, pp = defs + head + tail, defs + head + fix + tail
        main = (f"{i}for (int k = 1; k < argc; k++)\n{i}{i}{reg}(k * {r.int(2, 5)} % {const}, argv[k]);\n"
                f"{i}{fn}(stdout);\n{i}return 0;\n")
    return both(r, {"stdio.h", "stdlib.h"}, vv, pp, main, i)


# ------------------------------------------------------------------------------------------------------ CWE-416
def s416_free_all(r: R, i: str):
    t, fn, p, nx = r.name("type"), r.name("fn"), r.pick(("p", "cur", "it", "walk")), r.pick(("nx", "following", "rest", "succ"))
    fld = r.pick(("label", "text", "name", "path"))
    head = (f"struct {t} {{\n{i}char *{fld};\n{i}struct {t} *next;\n}};\n\n"
            + c_comment(r, f"Release a whole {t} list") + f"void {fn}(struct {t} *head)\n{{\n")
    v = block(f"    for (struct {t} *{p} = head; {p} != NULL; {p} = {p}->next) {{\n        free({p}->{fld});\n        free({p});\n    }}\n}}\n", i)
    if r.chance(0.5):
        pt = block(f"    for (struct {t} *{p} = head, *{nx}; {p} != NULL; {p} = {nx}) {{\n        {nx} = {p}->next;\n"
                   f"        free({p}->{fld});\n        free({p});\n    }}\n}}\n", i)
    else:
        pt = block(f"    struct {t} *{p} = head;\n    while ({p} != NULL) {{\n        struct {t} *{nx} = {p}->next;\n"
                   f"        free({p}->{fld});\n        free({p});\n        {p} = {nx};\n    }}\n}}\n", i)
    main = block(f"    struct {t} *head = NULL;\n    for (int k = 1; k < argc; k++) {{\n        struct {t} *e = malloc(sizeof *e);\n"
                 f"        if (e == NULL)\n            break;\n        e->{fld} = strdup(argv[k]);\n        e->next = head;\n"
                 f"        head = e;\n    }}\n    printf(\"built %d\\n\", argc - 1);\n    {fn}(head);\n    return 0;\n", i)
    return both(r, {"stdio.h", "stdlib.h", "string.h"}, head + v, head + pt, main, i, argc=1)


def s416_realloc_stale(r: R, i: str):
    t, fn, grow = r.name("type"), r.name("fn"), r.name("fn")
    dst = r.pick(("dst", "at", "end", "tailp"))
    head = (f"struct {t}_buf {{\n{i}char *data;\n{i}size_t len;\n{i}size_t cap;\n}};\n\n"
            f"static int {grow}(struct {t}_buf *b, size_t need)\n{{\n"
            + block("    if (b->len + need + 1 <= b->cap)\n        return 0;\n    size_t ncap = (b->len + need + 1) * 2;\n"
                    "    char *d = realloc(b->data, ncap);\n    if (d == NULL)\n        return -1;\n"
                    "    b->data = d;\n    b->cap = ncap;\n    return 0;\n", i) + "}\n\n"
            + c_comment(r, f"Append a string to the {t} buffer") + f"int {fn}(struct {t}_buf *b, const char *s)\n{{\n"
            f"{i}size_t n = strlen(s);\n")
    where = f"{i}char *{dst} = b->data + b->len;\n"
    g = f"{i}if ({grow}(b, n) != 0)\n{i}{i}return -1;\n"
    tail = block(f"    memcpy({dst}, s, n + 1);\n    b->len += n;\n    return 0;\n}}\n", i)
    cap = r.pick((4, 8, 16))
    main = block(f"    struct {t}_buf b = {{malloc({cap}), 0, {cap}}};\n    if (b.data == NULL)\n        return 1;\n    b.data[0] = '\\0';\n"
                 f"    for (int k = 1; k < argc; k++) {{\n        if ({fn}(&b, argv[k]) != 0 || {fn}(&b, \"{r.pick((' ', ',', '/', ';'))}\") != 0)\n"
                 "            return 1;\n    }\n    puts(b.data);\n    free(b.data);\n    return 0;\n", i)
    return both(r, {"stdio.h", "stdlib.h", "string.h"}, head + where + g + tail, head + g + where + tail, main, i, argc=1)


def s416_self_assign(r: R, i: str):
    t, fn, norm = r.name("type"), r.name("fn"), r.name("fn")
    fld, o = r.pick(("name", "title", "owner", "alias")), r.pick(("o", "obj", "ent", "rec"))
    pre = r.pick(("'@'", "'#'", "'~'", "'+'"))
    cp = r.pick(("copy", "dup", "fresh", "repl"))
    head = (f"struct {t} {{\n{i}int id;\n{i}char *{fld};\n}};\n\n"
            + c_comment(r, f"Replace the {fld} of a {t}") + f"int {fn}(struct {t} *{o}, const char *{fld})\n{{\n")
    v = block(f"    free({o}->{fld});\n    {o}->{fld} = strdup({fld});\n    if ({o}->{fld} == NULL)\n        return -1;\n", i)
    p = block(f"    char *{cp} = strdup({fld});\n    free({o}->{fld});\n    {o}->{fld} = {cp};\n    if ({o}->{fld} == NULL)\n        return -1;\n", i)
    tail = f"{i}return 0;\n}}\n\n"
    rest = (c_comment(r, f"Drop a leading marker from the {fld}") + f"int {norm}(struct {t} *{o})\n{{\n"
            + block(f"    if ({o}->{fld}[0] == {pre})\n        return {fn}({o}, {o}->{fld} + 1);\n    return 0;\n", i) + "}\n")
    main = block(f"    struct {t} x = {{{r.int(1, 99)}, strdup(argv[1])}};\n    if (x.{fld} == NULL || {norm}(&x) != 0)\n        return 1;\n"
                 f"    printf(\"%d %s\\n\", x.id, x.{fld});\n    free(x.{fld});\n    return 0;\n", i)
    return both(r, {"stdio.h", "stdlib.h", "string.h"}, head + v + tail + rest, head + p + tail + rest, main, i)


def s416_shallow_copy(r: R, i: str):
    t, clone, drop = r.name("type"), r.name("fn"), r.name("fn")
    fld, c = r.pick(("text", "body", "path", "name")), r.pick(("c", "cp", "twin", "dup"))
    head = (f"struct {t} {{\n{i}int id;\n{i}char *{fld};\n}};\n\n"
            + f"static void {drop}(struct {t} *x)\n{{\n{i}free(x->{fld});\n{i}free(x);\n}}\n\n"
            + c_comment(r, f"Duplicate a {t} for the {r.word()} history") + f"struct {t} *{clone}(const struct {t} *src)\n{{\n"
            + block(f"    struct {t} *{c} = malloc(sizeof *{c});\n    if ({c} == NULL)\n        return NULL;\n", i))
    if r.chance(0.5):
        v = block(f"    {c}->id = src->id;\n    {c}->{fld} = src->{fld};\n", i)
        p = block(f"    {c}->id = src->id;\n    {c}->{fld} = strdup(src->{fld});\n", i)
    else:
        v = block(f"    *{c} = *src;\n", i)
        p = block(f"    *{c} = *src;\n    {c}->{fld} = strdup(src->{fld});\n", i)
    tail = f"{i}return {c};\n}}\n"
    main = block(f"    struct {t} *a = malloc(sizeof *a);\n    if (a == NULL)\n        return 1;\n    a->id = {r.int(1, 50)};\n"
                 f"    a->{fld} = strdup(argv[1]);\n    struct {t} *b = {clone}(a);\n    {drop}(a);\n    if (b == NULL)\n        return 1;\n"
                 f"    printf(\"%d %s\\n\", b->id, b->{fld});\n    {drop}(b);\n    return 0;\n", i)
    return both(r, {"stdio.h", "stdlib.h", "string.h"}, head + v + tail, head + p + tail, main, i)


def s416_refcount(r: R, i: str):
    t, new, unref, share = r.name("type"), r.name("fn"), r.name("fn"), r.name("fn")
    refs, lab = r.pick(("refs", "refcnt", "users", "holders")), r.pick(("label", "title", "tag", "name"))
    size = r.pick((16, 24, 32))
    mk = (f"struct {t} {{\n{i}int {refs};\n{i}char {lab}[{size}];\n}};\n\n"
          f"static struct {t} *{new}(const char *{lab})\n{{\n"
          + block(f"    struct {t} *o = calloc(1, sizeof *o);\n    if (o == NULL)\n        return NULL;\n    o->{refs} = 1;\n"
                  f"    snprintf(o->{lab}, sizeof o->{lab}, \"%s\", {lab});\n    return o;\n", i) + "}\n\n")
    if r.chance(0.5):  # the extra owner does not take a reference
        un = f"static void {unref}(struct {t} *o)\n{{\n{i}if (--o->{refs} == 0)\n{i}{i}free(o);\n}}\n\n"
        cm = c_comment(r, "Hand out another owner of the object")
        sh_v = cm + f"static struct {t} *{share}(struct {t} *o)\n{{\n{i}return o;\n}}\n"
        sh_p = cm + f"static struct {t} *{share}(struct {t} *o)\n{{\n{i}o->{refs}++;\n{i}return o;\n}}\n"
        v, p = mk + un + sh_v, mk + un + sh_p
    else:  # released one reference too early
        sh = c_comment(r, "Hand out another owner of the object") + f"static struct {t} *{share}(struct {t} *o)\n{{\n{i}o->{refs}++;\n{i}return o;\n}}\n"
        bad = r.pick((f"--o->{refs} <= 1", f"o->{refs}-- <= 1", f"--o->{refs} < 2"))
        good = r.pick((f"--o->{refs} == 0", f"--o->{refs} <= 0"))
        v = mk + f"static void {unref}(struct {t} *o)\n{{\n{i}if ({bad})\n{i}{i}free(o);\n}}\n\n" + sh
        p = mk + f"static void {unref}(struct {t} *o)\n{{\n{i}if ({good})\n{i}{i}free(o);\n}}\n\n" + sh
    main = block(f"    struct {t} *a = {new}(argv[1]);\n    if (a == NULL)\n        return 1;\n    struct {t} *b = {share}(a);\n"
                 f"    {unref}(a);\n    printf(\"%s\\n\", b->{lab});\n    {unref}(b);\n    return 0;\n", i)
    return both(r, {"stdio.h", "stdlib.h"}, v, p, main, i)


def s416_callback(r: R, i: str):
    t, cbt, hooks = r.name("type"), r.name("type"), r.name("var") + "_hooks"
    add, rem, fire, tick, close = r.name("fn"), r.name("fn"), r.name("fn"), r.name("fn"), r.name("fn")
    n = r.pick((4, 8, 16))
    fld = r.pick(("ticks", "count", "seen", "beats"))
    defs = (f"typedef void (*{cbt}_fn)(void *ctx);\n\n"
            f"static struct {{\n{i}{cbt}_fn fn;\n{i}void *ctx;\n}} {hooks}[{n}];\n\n"
            f"static void {add}({cbt}_fn fn, void *ctx)\n{{\n"
            + block(f"    for (int k = 0; k < {n}; k++) {{\n        if ({hooks}[k].fn == NULL) {{\n"
                    f"            {hooks}[k].fn = fn;\n            {hooks}[k].ctx = ctx;\n            return;\n        }}\n    }}\n", i)
            + "}\n\n"
            + f"static void {rem}(void *ctx)\n{{\n"
            + block(f"    for (int k = 0; k < {n}; k++) {{\n        if ({hooks}[k].ctx == ctx)\n            {hooks}[k].fn = NULL;\n    }}\n", i)
            + "}\n\n"
            + f"static void {fire}(void)\n{{\n"
            + block(f"    for (int k = 0; k < {n}; k++) {{\n        if ({hooks}[k].fn != NULL)\n            {hooks}[k].fn({hooks}[k].ctx);\n    }}\n", i)
            + "}\n\n"
            + f"struct {t} {{\n{i}int {fld};\n{i}char name[16];\n}};\n\n"
            + f"static void {tick}(void *ctx)\n{{\n"
            + block(f"    struct {t} *s = ctx;\n    s->{fld}++;\n    printf(\"%s: %d\\n\", s->name, s->{fld});\n", i) + "}\n\n"
            + c_comment(r, f"Shut one {t} down") + f"void {close}(struct {t} *s)\n{{\n")
    if r.chance(0.6):
        v = f"{i}free(s);\n}}\n"
        p = f"{i}{rem}(s);\n{i}free(s);\n}}\n"
    else:  # with a goodbye line before the release
        v = f"{i}printf(\"closing %s\\n\", s->name);\n{i}free(s);\n}}\n"
        p = f"{i}printf(\"closing %s\\n\", s->name);\n{i}{rem}(s);\n{i}free(s);\n}}\n"
    main = block(f"    struct {t} *s = calloc(1, sizeof *s);\n    if (s == NULL)\n        return 1;\n"
                 f"    snprintf(s->name, sizeof s->name, \"%s\", argv[1]);\n    {add}({tick}, s);\n    {fire}();\n"
                 f"    {close}(s);\n    {fire}();\n    return 0;\n", i)
    return both(r, {"stdio.h", "stdlib.h"}, defs + v, defs + p, main, i)


def s416_swap_remove(r: R, i: str):
    t, arr, cnt, fn, show, add = r.name("type"), r.name("var") + "_list", r.pick(("count", "used", "total", "nent")), r.name("fn"), r.name("fn"), r.name("fn")
    const = r.name("const")
    n = r.pick((8, 16, 32))
    fld = r.pick(("score", "points", "rank", "weight"))
    defs = (f"#define {const} {n}\n\nstruct {t} {{\n{i}char *name;\n{i}int {fld};\n}};\n\n"
            f"static struct {t} *{arr}[{const}];\nstatic int {cnt};\n\n"
            f"static int {add}(const char *name, int {fld})\n{{\n"
            + block(f"    if ({cnt} == {const})\n        return -1;\n    struct {t} *e = malloc(sizeof *e);\n    if (e == NULL)\n        return -1;\n"
                    f"    e->name = strdup(name);\n    e->{fld} = {fld};\n    {arr}[{cnt}++] = e;\n    return 0;\n", i) + "}\n\n"
            + f"static void {show}(void)\n{{\n"
            + block(f"    for (int k = 0; k < {cnt}; k++)\n        printf(\"%s %d\\n\", {arr}[k]->name, {arr}[k]->{fld});\n", i) + "}\n\n"
            + c_comment(r, f"Remove the {t} at position k") + f"void {fn}(int k)\n{{\n"
            + block(f"    if (k < 0 || k >= {cnt})\n        return;\n    free({arr}[k]->name);\n    free({arr}[k]);\n", i))
    fix = r.pick((f"{i}{arr}[k] = {arr}[{cnt} - 1];\n",
                  f"{i}memmove(&{arr}[k], &{arr}[k + 1], ({cnt} - k - 1) * sizeof {arr}[0]);\n"))
    tail = f"{i}{cnt}--;\n}}\n"
    main = block(f"    for (int k = 1; k < argc; k++)\n        {add}(argv[k], k * {r.int(2, 9)});\n    {fn}(0);\n    {show}();\n    return 0;\n", i)
    return both(r, {"stdio.h", "stdlib.h", "string.h"}, defs + tail, defs + fix + tail, main, i, argc=1)


def s416_ownership(r: R, i: str):
    t, q, qlen, submit, fn = r.name("type"), r.name("var") + "_queue", r.pick(("qlen", "queued", "depth")), r.name("fn"), r.name("fn")
    const = r.name("const")
    n = r.pick((2, 4, 8))
    body, j = r.pick(("body", "payload", "text", "args")), r.pick(("j", "job", "req", "msg"))
    defs = (f"#define {const} {n}\n\nstruct {t} {{\n{i}int id;\n{i}char *{body};\n}};\n\n"
            f"static struct {t} *{q}[{const}];\nstatic int {qlen};\n\n"
            + c_comment(r, f"Queue a {t}; the queue owns it from now on, and drops it when it cannot be taken")
            + f"static int {submit}(struct {t} *{j})\n{{\n"
            + block(f"    if ({qlen} == {const} || {j}->{body}[0] == '\\0') {{\n        free({j}->{body});\n        free({j});\n"
                    f"        return -1;\n    }}\n    {q}[{qlen}++] = {j};\n    return 0;\n", i) + "}\n\n"
            + f"int {fn}(const char *text, int id)\n{{\n"
            + block(f"    struct {t} *{j} = malloc(sizeof *{j});\n    if ({j} == NULL)\n        return -1;\n    {j}->id = id;\n"
                    f"    {j}->{body} = strdup(text);\n    if ({j}->{body} == NULL) {{\n        free({j});\n        return -1;\n    }}\n", i))
    msg = r.pick(("rejected", "dropped", "not queued", "refused"))
    if r.chance(0.5):
        v = block(f"    if ({submit}({j}) != 0) {{\n        fprintf(stderr, \"{t} %d {msg}\\n\", {j}->id);\n        return -1;\n    }}\n", i)
        p = block(f"    if ({submit}({j}) != 0) {{\n        fprintf(stderr, \"{t} %d {msg}\\n\", id);\n        return -1;\n    }}\n", i)
    else:
        v = block(f"    if ({submit}({j}) != 0) {{\n        fprintf(stderr, \"{msg}: '%s'\\n\", {j}->{body});\n        return -1;\n    }}\n", i)
        p = block(f"    if ({submit}({j}) != 0) {{\n        fprintf(stderr, \"{msg}: '%s'\\n\", text);\n        return -1;\n    }}\n", i)
    tail = f"{i}return 0;\n}}\n"
    main = block(f"    int bad = 0;\n    for (int k = 1; k < argc; k++)\n        bad += {fn}(argv[k], k) != 0;\n"
                 f"    printf(\"%d queued, %d failed\\n\", {qlen}, bad);\n    return 0;\n", i)
    return both(r, {"stdio.h", "stdlib.h", "string.h"}, defs + v + tail, defs + p + tail, main, i, argc=1)


def s416_interior(r: R, i: str):
    fn, cp, ext = r.name("fn"), r.pick(("copy", "work", "lower", "tmp")), r.pick(("ext", "suffix", "dot", "kind"))
    ch = r.pick((("'.'", "extension"), ("'/'", "last path part"), ("':'", "port part"), ("'@'", "domain")))
    head = (c_comment(r, f"Lower-case {ch[1]} of a name, written to out")
            + f"int {fn}(const char *name, char *out, size_t size)\n{{\n"
            + block(f"    char *{cp} = strdup(name);\n    if ({cp} == NULL)\n        return -1;\n"
                    f"    for (char *c = {cp}; *c != '\\0'; c++)\n        *c = (char)tolower((unsigned char)*c);\n"
                    f"    const char *{ext} = strrchr({cp}, {ch[0]});\n    {ext} = {ext} != NULL ? {ext} + 1 : {cp};\n", i))
    use = f"{i}snprintf(out, size, \"%s\", {ext});\n"
    fr = f"{i}free({cp});\n"
    tail = f"{i}return (int)strlen(out);\n}}\n"
    size = r.pick((16, 32, 64))
    main = block(f"    char buf[{size}];\n    if ({fn}(argv[1], buf, sizeof buf) < 0)\n        return 1;\n    puts(buf);\n    return 0;\n", i)
    return both(r, {"stdio.h", "stdlib.h", "string.h", "ctype.h"}, head + fr + use + tail, head + use + fr + tail, main, i)


EXTRA = {
    "cwe-476": {"realloc-grow": _c(s476_realloc_grow), "strtok-fields": _c(s476_strtok_fields),
                "check-after-use": _c(s476_check_after_use), "wrong-check": _c(s476_wrong_check),
                "optional-hook": _c(s476_optional_hook), "bsearch": _c(s476_bsearch), "tree": _c(s476_tree),
                "short-circuit": _c(s476_short_circuit), "localtime": _c(s476_localtime), "passwd": _c(s476_passwd),
                "sparse-slots": _c(s476_sparse_slots)},
    "cwe-416": {"free-all": _c(s416_free_all), "realloc-stale": _c(s416_realloc_stale),
                "self-assign": _c(s416_self_assign), "shallow-copy": _c(s416_shallow_copy),
                "refcount": _c(s416_refcount), "callback": _c(s416_callback), "swap-remove": _c(s416_swap_remove),
                "ownership": _c(s416_ownership), "interior-pointer": _c(s416_interior)},
}
