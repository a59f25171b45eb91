"""More program shapes for CWE-22 (path traversal) and CWE-77 (command injection), both in C.

Same conventions as ``synth_core.py``: every shape returns (vulnerable, patched) for one program, and the two versions
differ only in the lines of the fix; ``synth_vulns.py`` registers ``EXTRA``."""

from __future__ import annotations

from synth_core import *  # noqa: F401,F403
from synth_core import _c  # noqa: F401


def _root(r: R, kinds=("/srv/", "/var/www/", "/opt/", "/var/lib/", "/home/", "/data/")) -> str:
    return r.pick(kinds) + r.word()


def _ret(r: R) -> str:
    return r.pick(("return -1;", "return -1;", "return 1;", "return -2;"))


# ------------------------------------------------------------------------------------------------------- CWE-22
def s22_url_decode(r: R, i: str):
    """The '..' test runs on the request path before %XX escapes are decoded (fix: decode first, then test)."""
    hexf, dec, fn = r.name("fn"), r.name("fn"), r.name("fn")
    uri, docroot = r.pick(("uri", "target", "req_path", "location")), _root(r)
    status_bad, status_ok = r.pick(((403, 200), (-1, 0), (400, 200)))
    chunk = r.pick((128, 256, 512, 1024))
    helpers = (c_comment(r, "Value of one hex digit") + f"static int {hexf}(int c)\n{{\n"
               + block("    if (c >= '0' && c <= '9')\n        return c - '0';\n    return tolower(c) - 'a' + 10;\n", i)
               + "}\n\n" + c_comment(r, "Decode %XX escapes of a request path in place") + f"static void {dec}(char *s)\n{{\n"
               + block("    char *out = s;\n    while (*s != '\\0') {\n"
                       "        if (s[0] == '%' && isxdigit((unsigned char)s[1]) && isxdigit((unsigned char)s[2])) {\n"
                       f"            *out++ = (char)({hexf}(s[1]) * 16 + {hexf}(s[2]));\n            s += 3;\n"
                       "        } else {\n            *out++ = *s++;\n        }\n    }\n    *out = '\\0';\n", i) + "}\n\n")
    check = r.pick((f"    if (strstr({uri}, \"..\") != NULL)\n        return {status_bad};\n",
                    f"    if (strstr({uri}, \"..\")) {{\n        fprintf(stderr, \"refused: %s\\n\", {uri});\n        return {status_bad};\n    }}\n",
                    f"    for (const char *c = {uri}; *c != '\\0'; c++) {{\n        if (c[0] == '.' && c[1] == '.')\n"
                    f"            return {status_bad};\n    }}\n"))
    decode = f"    {dec}({uri});\n"
    head = (helpers + c_comment(r, "Answer a GET for a static file") + f"int {fn}(char *{uri}, FILE *out)\n{{\n"
            + block(f"    char path[512];\n    char buf[{chunk}];\n    size_t got;\n", i))
    tail = block(f"    snprintf(path, sizeof path, \"{docroot}%s\", {uri});\n    FILE *fp = fopen(path, \"rb\");\n"
                 "    if (fp == NULL)\n        return 404;\n    while ((got = fread(buf, 1, sizeof buf, fp)) > 0)\n"
                 f"        fwrite(buf, 1, got, out);\n    fclose(fp);\n    return {status_ok};\n}}\n", i)
    v = head + block(check + decode, i) + tail
    p = head + block(decode + check, i) + tail
    if r.chance(0.5):
        main = block(f"    char line[600], {uri}[512];\n    if (fgets(line, sizeof line, stdin) == NULL)\n        return 1;\n"
                     f"    if (sscanf(line, \"GET %511s\", {uri}) != 1)\n        return 1;\n"
                     f"    return {fn}({uri}, stdout) != {status_ok};\n", i)
        return both(r, {"stdio.h", "string.h", "ctype.h"}, v, p, main, i, argc=1)
    main = block(f"    char {uri}[512];\n    snprintf({uri}, sizeof {uri}, \"%s\", argv[1]);\n"
                 f"    return {fn}({uri}, stdout) != {status_ok};\n", i)
    return both(r, {"stdio.h", "string.h", "ctype.h"}, v, p, main, i)


def s22_strip_once(r: R, i: str):
    """'../' is stripped in one pass, so '....//' becomes '../' again (fix: rescan from the start, or refuse)."""
    clean, fn, name = r.name("fn"), r.name("fn"), r.pick(("name", "given", "asset", "thumb"))
    p_ = r.pick(("p", "hit", "at", "dot"))
    root = _root(r)
    what = r.pick(("size", "lines"))
    cleaner_head = (c_comment(r, "Drop parent-folder references from a relative name")
                    + f"static void {clean}(char *s)\n{{\n{i}char *{p_} = s;\n")
    loop_v = f"{i}while (({p_} = strstr({p_}, \"../\")) != NULL)\n"
    loop_p = f"{i}while (({p_} = strstr(s, \"../\")) != NULL)\n"
    cleaner_tail = f"{i}{i}memmove({p_}, {p_} + 3, strlen({p_} + 3) + 1);\n}}\n\n"
    head = (c_comment(r, f"Report the {what} of a stored file") + f"long {fn}(const char *{name})\n{{\n"
            + block(f"    char rel[{r.pick((128, 200, 256))}];\n    char path[400];\n"
                    f"    snprintf(rel, sizeof rel, \"%s\", {name});\n    {clean}(rel);\n", i))
    extra = block(r.pick(("    if (strstr(rel, \"..\") != NULL)\n        return -1;\n",
                          "    if (rel[0] == '.' || strstr(rel, \"/..\") != NULL)\n        return -1;\n")), i)
    if what == "size":
        body = block(f"    snprintf(path, sizeof path, \"{root}/%s\", rel);\n    FILE *fp = fopen(path, \"rb\");\n"
                     "    if (fp == NULL)\n        return -1;\n    fseek(fp, 0, SEEK_END);\n    long n = ftell(fp);\n"
                     "    fclose(fp);\n    return n;\n}\n", i)
    else:
        body = block(f"    snprintf(path, sizeof path, \"{root}/%s\", rel);\n    FILE *fp = fopen(path, \"r\");\n"
                     "    long n = 0;\n    int c;\n    if (fp == NULL)\n        return -1;\n"
                     "    while ((c = fgetc(fp)) != EOF)\n        n += (c == '\\n');\n    fclose(fp);\n    return n;\n}\n", i)
    if r.chance(0.6):  # fix the cleaner
        v = cleaner_head + loop_v + cleaner_tail + head + body
        p = cleaner_head + loop_p + cleaner_tail + head + body
    else:  # keep the cleaner, refuse what is left
        v = cleaner_head + loop_v + cleaner_tail + head + body
        p = cleaner_head + loop_v + cleaner_tail + head + extra + body
    main = f"{i}printf(\"%ld\\n\", {fn}(argv[1]));\n{i}return 0;\n"
    return both(r, {"stdio.h", "string.h"}, v, p, main, i)


def s22_archive(r: R, i: str):
    """Entry names read from an archive stream are joined to the output folder as they are (fix: refuse them)."""
    t, rd, fn = r.name("type"), r.name("fn"), r.name("fn")
    hv = r.pick(("h", "hdr", "ent"))
    nsz = r.pick((100, 128, 160, 255))
    head = (f"struct {t}_header {{\n{i}char name[{nsz}];\n{i}long size;\n}};\n\n"
            + c_comment(r, "Read one entry header: a name line, then a size line")
            + f"static int {rd}(FILE *in, struct {t}_header *{hv})\n{{\n"
            + block(f"    if (fgets({hv}->name, sizeof {hv}->name, in) == NULL)\n        return 0;\n"
                    f"    {hv}->name[strcspn({hv}->name, \"\\r\\n\")] = '\\0';\n"
                    f"    if (fscanf(in, \"%ld\", &{hv}->size) != 1 || {hv}->size < 0)\n        return -1;\n"
                    "    if (fgetc(in) != '\\n')\n        return -1;\n    return 1;\n", i) + "}\n\n"
            + c_comment(r, f"Unpack every entry of a {r.word()} bundle into a folder")
            + f"int {fn}(FILE *in, const char *dest)\n{{\n"
            + block(f"    struct {t}_header {hv};\n    char path[512];\n    int rc;\n"
                    f"    while ((rc = {rd}(in, &{hv})) > 0) {{\n", i))
    bad = r.pick((f"{hv}.name[0] == '/' || strstr({hv}.name, \"..\") != NULL",
                  f"strstr({hv}.name, \"..\") || {hv}.name[0] == '/' || {hv}.name[0] == '\\0'"))
    fix = r.pick((f"        if ({bad}) {{\n            fprintf(stderr, \"unsafe entry %s\\n\", {hv}.name);\n"
                  f"            fseek(in, {hv}.size, SEEK_CUR);\n            continue;\n        }}\n",
                  f"        if ({bad})\n            return -1;\n"))
    tail = block(f"        snprintf(path, sizeof path, \"%s/%s\", dest, {hv}.name);\n        FILE *out = fopen(path, \"wb\");\n"
                 "        if (out == NULL)\n            return -1;\n"
                 f"        for (long k = 0; k < {hv}.size; k++) {{\n            int c = fgetc(in);\n"
                 "            if (c == EOF)\n                break;\n            fputc(c, out);\n        }\n"
                 "        fclose(out);\n    }\n    return rc;\n}\n", i)
    dest = r.pick(("argv[2]", '"."', f'"/tmp/{r.word()}"'))
    main = block(f"    FILE *in = fopen(argv[1], \"rb\");\n    if (in == NULL)\n        return 1;\n"
                 f"    int rc = {fn}(in, {dest});\n    fclose(in);\n    return rc != 0;\n", i)
    return both(r, {"stdio.h", "string.h"}, head + tail, head + block(fix, i) + tail, main, i,
                argc=3 if dest == "argv[2]" else 2)


def s22_include(r: R, i: str):
    """An 'include NAME' line of a settings file opens NAME under the settings folder unchecked (fix: plain names only)."""
    fn, kw = r.name("fn"), r.pick(("include", "source", "@include", "import"))
    confdir = r.pick(("/etc/", "/usr/local/etc/", "/opt/conf/")) + r.word() + ".d"
    depth = r.name("const")
    inc = r.pick(("inc", "child", "other", "part"))
    kwlen = len(kw) + 1
    head = (f"#define {depth} {r.pick((4, 5, 8, 10))}\n\n"
            + c_comment(r, f"Count the settings of a file, following '{kw}' lines")
            + f"int {fn}(const char *path, int depth)\n{{\n"
            + block("    char line[256];\n    char sub[512];\n    int n = 0;\n"
                    f"    if (depth > {depth})\n        return -1;\n    FILE *fp = fopen(path, \"r\");\n"
                    "    if (fp == NULL)\n        return -1;\n    while (fgets(line, sizeof line, fp) != NULL) {\n"
                    "        line[strcspn(line, \"\\r\\n\")] = '\\0';\n"
                    f"        if (strncmp(line, \"{kw} \", {kwlen}) == 0) {{\n            const char *{inc} = line + {kwlen};\n", i))
    fix = r.pick((f"            if (strchr({inc}, '/') != NULL || {inc}[0] == '.') {{\n"
                  f"                fprintf(stderr, \"%s: bad {kw} '%s'\\n\", path, {inc});\n                continue;\n            }}\n",
                  f"            if ({inc}[0] == '.' || strchr({inc}, '/'))\n                continue;\n",
                  f"            if (strspn({inc}, \"abcdefghijklmnopqrstuvwxyz0123456789_-\") != strlen({inc}))\n"
                  "                continue;\n"))
    tail = block(f"            snprintf(sub, sizeof sub, \"{confdir}/%s\", {inc});\n            int got = {fn}(sub, depth + 1);\n"
                 "            if (got > 0)\n                n += got;\n            continue;\n        }\n"
                 "        if (line[0] != '#' && strchr(line, '=') != NULL)\n            n++;\n    }\n"
                 "    fclose(fp);\n    return n;\n}\n", i)
    main = f"{i}printf(\"%d settings\\n\", {fn}(argv[1], 0));\n{i}return 0;\n"
    return both(r, {"stdio.h", "string.h"}, head + tail, head + block(fix, i) + tail, main, i)


def s22_locale(r: R, i: str):
    """A CGI 'lang=' parameter picks the message catalogue file (fix: accept only a language code)."""
    fn, lang = r.name("fn"), r.pick(("lang", "locale", "code", "tongue"))
    langdir = r.pick(("/usr/share/", "/opt/", "/srv/")) + r.word() + r.pick(("/lang", "/locale", "/i18n"))
    ext = r.pick(("msg", "po", "txt", "cat"))
    env = r.pick(("QUERY_STRING", "HTTP_COOKIE"))
    key = f"{lang}="
    cap = r.pick((1024, 2048, 4096))
    head = (c_comment(r, "Load the messages for the visitor's language") + f"int {fn}(const char *{lang}, char *out, size_t size)\n{{\n"
            f"{i}char path[256];\n")
    fix = r.pick((f"    if (strlen({lang}) != 2 || !islower((unsigned char){lang}[0]) || !islower((unsigned char){lang}[1]))\n"
                  "        return -1;\n",
                  f"    if ({lang}[0] == '\\0' || strspn({lang}, \"abcdefghijklmnopqrstuvwxyz_ABCDEFGHIJKLMNOPQRSTUVWXYZ\") != strlen({lang}))\n"
                  "        return -1;\n",
                  f"    for (size_t k = 0; {lang}[k] != '\\0'; k++) {{\n        if (!isalpha((unsigned char){lang}[k]) && {lang}[k] != '_')\n"
                  "            return -1;\n    }\n"))
    tail = block(f"    snprintf(path, sizeof path, \"{langdir}/%s.{ext}\", {lang});\n    FILE *fp = fopen(path, \"r\");\n"
                 "    if (fp == NULL)\n        return -1;\n    size_t got = fread(out, 1, size - 1, fp);\n"
                 "    out[got] = '\\0';\n    fclose(fp);\n    return (int)got;\n}\n", i)
    main = block(f"    static char text[{cap}];\n    const char *q = getenv(\"{env}\");\n    const char *{lang} = \"en\";\n"
                 f"    if (q != NULL && strncmp(q, \"{key}\", {len(key)}) == 0)\n        {lang} = q + {len(key)};\n"
                 f"    if ({fn}({lang}, text, sizeof text) < 0)\n        return 1;\n"
                 "    printf(\"Content-Type: text/plain\\r\\n\\r\\n%s\", text);\n    return 0;\n", i)
    return both(r, {"stdio.h", "stdlib.h", "string.h", "ctype.h"}, head + tail, head + block(fix, i) + tail, main, i,
                argc=1)


def s22_absolute(r: R, i: str):
    """'..' is refused, but an absolute name still escapes the folder (openat/chdir ignore it) (fix: refuse '/' too)."""
    fn, name = r.name("fn"), r.pick(("name", "file", "report", "sheet"))
    use_openat = r.chance(0.5)
    dots = r.pick(('".."', '"../"'))
    cond_v = r.pick((f"strstr({name}, {dots}) != NULL", f"strstr({name}, {dots})"))
    cond_p = r.pick((f"{name}[0] == '/' || {cond_v}", f"{cond_v} || *{name} == '/'", f"{cond_v} || strchr({name}, '/') != NULL"))
    size = r.pick((256, 512, 4096))
    if use_openat:
        head = (c_comment(r, "Print one file of a folder") + f"int {fn}(const char *dir, const char *{name})\n{{\n"
                + block(f"    char buf[{size}];\n    ssize_t got;\n    int dfd = open(dir, O_RDONLY | O_DIRECTORY);\n"
                        "    if (dfd < 0)\n        return -1;\n", i))
        chk = lambda c: block(f"    if ({c}) {{\n        close(dfd);\n        return -1;\n    }}\n", i)  # noqa: E731
        tail = block(f"    int fd = openat(dfd, {name}, O_RDONLY);\n    close(dfd);\n    if (fd < 0)\n        return -1;\n"
                     "    while ((got = read(fd, buf, sizeof buf)) > 0)\n        fwrite(buf, 1, (size_t)got, stdout);\n"
                     "    close(fd);\n    return 0;\n}\n", i)
        inc = {"stdio.h", "string.h", "fcntl.h", "unistd.h"}
    else:
        head = (c_comment(r, "Print one file of a folder") + f"int {fn}(const char *dir, const char *{name})\n{{\n"
                + block(f"    char line[{size}];\n    if (chdir(dir) != 0)\n        return -1;\n", i))
        chk = lambda c: block(f"    if ({c})\n        return -1;\n", i)  # noqa: E731
        tail = block(f"    FILE *fp = fopen({name}, \"r\");\n    if (fp == NULL)\n        return -1;\n"
                     "    while (fgets(line, sizeof line, fp) != NULL)\n        fputs(line, stdout);\n"
                     "    fclose(fp);\n    return 0;\n}\n", i)
        inc = {"stdio.h", "string.h", "unistd.h"}
    main = f"{i}return {fn}(\"{_root(r)}\", argv[1]) != 0;\n"
    return both(r, inc, head + chk(cond_v) + tail, head + chk(cond_p) + tail, main, i)


def s22_prefix(r: R, i: str):
    """The resolved path is compared with the base folder without the separator: '/srv/x' accepts '/srv/x-old/..'
    (fix: require '/' or the end right after the prefix)."""
    fn, rel = r.name("fn"), r.pick(("rel", "name", "item", "doc"))
    base = r.pick(("STORE_DIR", "BASE_DIR", "DOC_ROOT", "ARCHIVE_DIR", "SHARE_ROOT", "TOP_DIR"))
    bdir = _root(r)
    n = r.pick(("n", "blen", "len"))
    head = (f"#define {base} \"{bdir}\"\n\n" + c_comment(r, "Stream a stored document after resolving its path")
            + f"int {fn}(const char *{rel}, FILE *out)\n{{\n"
            + block(f"    char want[PATH_MAX];\n    char real[PATH_MAX];\n    size_t {n} = strlen({base});\n    int c;\n"
                    f"    snprintf(want, sizeof want, \"%s/%s\", {base}, {rel});\n"
                    "    if (realpath(want, real) == NULL)\n        return -1;\n", i))
    v = f"{i}if (strncmp(real, {base}, {n}) != 0)\n"
    p = r.pick((f"{i}if (strncmp(real, {base}, {n}) != 0 || (real[{n}] != '/' && real[{n}] != '\\0'))\n",
                f"{i}if (strncmp(real, {base} \"/\", {n} + 1) != 0)\n"))
    tail = block("        return -1;\n    FILE *fp = fopen(real, \"r\");\n    if (fp == NULL)\n        return -1;\n"
                 "    while ((c = fgetc(fp)) != EOF)\n        fputc(c, out);\n    fclose(fp);\n    return 0;\n}\n", i)
    main = f"{i}return {fn}(argv[1], stdout) == 0 ? 0 : 1;\n"
    return both(r, {"stdio.h", "stdlib.h", "string.h", "limits.h"}, head + v + tail, head + p + tail, main, i)


def s22_upload(r: R, i: str):
    """The filename of a multipart upload header is used as the stored name (fix: keep only its last component)."""
    get, fn = r.name("fn"), r.name("fn")
    dest = r.pick(("/var/uploads/", "/srv/incoming/", "/tmp/")) + r.word()
    nm = r.pick(("name", "fname", "given"))
    key = 'filename=\\"'
    head = (c_comment(r, "Pull the file name out of a Content-Disposition header")
            + f"static int {get}(const char *hdr, char *out, size_t size)\n{{\n"
            + block(f"    const char *p = strstr(hdr, \"{key}\");\n    if (p == NULL)\n        return -1;\n    p += 10;\n"
                    "    size_t n = strcspn(p, \"\\\"\");\n    if (n == 0 || n >= size)\n        return -1;\n"
                    "    memcpy(out, p, n);\n    out[n] = '\\0';\n    return 0;\n", i) + "}\n\n"
            + c_comment(r, "Store one uploaded part") + f"int {fn}(const char *hdr, const char *data, size_t len)\n{{\n"
            + block(f"    char {nm}[128];\n    char path[300];\n    if ({get}(hdr, {nm}, sizeof {nm}) != 0)\n        return -1;\n", i))
    v = f"{i}snprintf(path, sizeof path, \"{dest}/%s\", {nm});\n"
    p = block(f"    const char *base = strrchr({nm}, '/');\n    base = base != NULL ? base + 1 : {nm};\n"
              "    if (base[0] == '\\0' || base[0] == '.')\n        return -1;\n"
              f"    snprintf(path, sizeof path, \"{dest}/%s\", base);\n", i)
    tail = block("    FILE *fp = fopen(path, \"wb\");\n    if (fp == NULL)\n        return -1;\n"
                 "    size_t put = fwrite(data, 1, len, fp);\n    fclose(fp);\n    return put == len ? 0 : -1;\n}\n", i)
    main = f"{i}return {fn}(argv[1], argv[2], strlen(argv[2])) != 0;\n"
    return both(r, {"stdio.h", "string.h"}, head + v + tail, head + p + tail, main, i, argc=3)


def s22_wrong_arg(r: R, i: str):
    """Two names form the path, but the validation tests the first one twice (fix: test the second one)."""
    ok, fn = r.name("fn"), r.name("fn")
    a, b = r.pick((("project", "logname"), ("team", "sheet"), ("owner", "doc"), ("group", "entry")))
    d = _root(r)
    s = r.pick(("s", "w", "part"))
    valid = (c_comment(r, "True for a plain folder or file name") + f"static int {ok}(const char *{s})\n{{\n"
             + block(f"    if ({s}[0] == '\\0' || {s}[0] == '.')\n        return 0;\n"
                     f"    for (; *{s} != '\\0'; {s}++) {{\n        if (*{s} == '/' || *{s} == '\\\\')\n            return 0;\n    }}\n"
                     "    return 1;\n", i) + "}\n\n")
    head = (valid + c_comment(r, "Append a line to a per-folder log") + f"int {fn}(const char *{a}, const char *{b}, const char *msg)\n{{\n"
            f"{i}char path[256];\n")
    form = r.int(0, 1)
    if form == 0:
        v = f"{i}if (!{ok}({a}) || !{ok}({a}))\n{i}{i}return -1;\n"
        p = f"{i}if (!{ok}({a}) || !{ok}({b}))\n{i}{i}return -1;\n"
    else:
        v = f"{i}if (!{ok}({a}))\n{i}{i}return -1;\n{i}if (!{ok}({a}))\n{i}{i}return -2;\n"
        p = f"{i}if (!{ok}({a}))\n{i}{i}return -1;\n{i}if (!{ok}({b}))\n{i}{i}return -2;\n"
    tail = block(f"    snprintf(path, sizeof path, \"{d}/%s/%s.log\", {a}, {b});\n    FILE *fp = fopen(path, \"a\");\n"
                 "    if (fp == NULL)\n        return -1;\n    fprintf(fp, \"%s\\n\", msg);\n    return fclose(fp);\n}\n", i)
    main = f"{i}return {fn}(argv[1], argv[2], \"{r.word()} {r.pick(NOUNS)}\") != 0;\n"
    return both(r, {"stdio.h", "string.h"}, head + v + tail, head + p + tail, main, i, argc=3)


# ------------------------------------------------------------------------------------------------------- CWE-77
def s77_quote(r: R, i: str):
    """The argument is put inside single quotes, but a quote in it closes them (fix: refuse quotes in it)."""
    fn, arg = r.name("fn"), r.pick(("dir", "folder", "user", "share"))
    tool = r.pick(("du -sh", "ls -la", "find", "tree -L 2", "stat"))
    base = _root(r)
    head = (c_comment(r, f"Run '{tool.split()[0]}' on a folder of the shared area") + f"int {fn}(const char *{arg})\n{{\n"
            f"{i}char cmd[{r.pick((256, 384, 512))}];\n")
    fix = r.pick((f"    if (strchr({arg}, '\\'') != NULL)\n        return -1;\n",
                  f"    if (strchr({arg}, '\\'')) {{\n        fprintf(stderr, \"quote in name\\n\");\n        return -1;\n    }}\n",
                  f"    for (const char *c = {arg}; *c != '\\0'; c++) {{\n        if (*c == '\\'' || *c == '\\n')\n"
                  "            return -1;\n    }\n"))
    tail = block(f"    snprintf(cmd, sizeof cmd, \"{tool} '{base}/%s'\", {arg});\n"
                 + r.pick(("    return system(cmd);\n", "    int rc = system(cmd);\n    return rc == 0 ? 0 : -1;\n")) + "}\n", i)
    return both(r, {"stdio.h", "stdlib.h", "string.h"}, head + tail, head + block(fix, i) + tail,
                f"{i}return {fn}(argv[1]) != 0;\n", i)


def s77_sh_c(r: R, i: str):
    """fork() then exec of 'sh -c' on a string holding the file name (fix: exec the tool with its own argv)."""
    fn, f = r.name("fn"), r.pick(("file", "path", "src", "input"))
    tool, flag = r.pick((("wc", "-l"), ("gzip", "-t"), ("file", "-b"), ("head", "-n5"), ("sha256sum", "-b"), ("xxd", "-l64")))
    cmd = r.pick(("cmd", "line", "shell_cmd"))
    head = c_comment(r, f"Run {tool} on a file in a child process") + f"int {fn}(const char *{f})\n{{\n"
    decl_v = block(f"    char {cmd}[{r.pick((256, 512, 1024))}];\n    pid_t pid;\n    int status;\n"
                   f"    snprintf({cmd}, sizeof {cmd}, \"{tool} {flag} %s\", {f});\n", i)
    decl_p = block("    pid_t pid;\n    int status;\n", i)
    fork_ = block("    pid = fork();\n    if (pid < 0)\n        return -1;\n    if (pid == 0) {\n", i)
    ex_v = f"{i}{i}execl(\"/bin/sh\", \"sh\", \"-c\", {cmd}, (char *)NULL);\n"
    ex_p = f"{i}{i}execlp(\"{tool}\", \"{tool}\", \"{flag}\", {f}, (char *)NULL);\n"
    tail = block("        _exit(127);\n    }\n    if (waitpid(pid, &status, 0) < 0)\n        return -1;\n"
                 "    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;\n}\n", i)
    main = f"{i}return {fn}(argv[1]);\n"
    return both(r, {"stdio.h", "unistd.h", "sys/wait.h", "sys/types.h"}, head + decl_v + fork_ + ex_v + tail,
                head + decl_p + fork_ + ex_p + tail, main, i)


def s77_console(r: R, i: str):
    """An admin console reads 'X ARG' lines and pastes ARG into a shell command (fix: allow plain names only)."""
    fn, arg = r.name("fn"), r.pick(("arg", "param", "operand", "what"))
    cmds = r.rng.sample([("p", "ping -c 1 %s"), ("l", f"ls -l {_root(r)}/%s"), ("d", "dig +short %s"),
                         ("t", "tail -n 20 /var/log/%s"), ("s", "systemctl status %s"), ("u", "id %s")], r.int(2, 3))
    quit_ = r.pick(("q", "x"))
    cases = "".join(f"        case '{c}':\n            snprintf(cmd, sizeof cmd, \"{tpl}\", {arg});\n            break;\n"
                    for c, tpl in cmds)
    head = (c_comment(r, "Small admin console: one command letter and an argument per line")
            + f"int {fn}(FILE *in)\n{{\n"
            + block(f"    char line[{r.pick((128, 160, 200))}];\n    char cmd[300];\n    while (fgets(line, sizeof line, in) != NULL) {{\n"
                    "        line[strcspn(line, \"\\n\")] = '\\0';\n"
                    f"        if (line[0] == '{quit_}')\n            return 0;\n"
                    "        if (line[0] == '\\0' || line[1] != ' ')\n            continue;\n"
                    f"        const char *{arg} = line + 2;\n        switch (line[0]) {{\n" + cases
                    + "        default:\n            printf(\"unknown command %c\\n\", line[0]);\n            continue;\n        }\n", i))
    fix = r.pick((f"        if (strspn({arg}, \"abcdefghijklmnopqrstuvwxyz0123456789.-_\") != strlen({arg})) {{\n"
                  "            puts(\"bad argument\");\n            continue;\n        }\n",
                  f"        if (strpbrk({arg}, \";&|`$()<>\\\\'\\\"\\n \") != NULL)\n            continue;\n"))
    tail = block("        if (system(cmd) != 0)\n            fprintf(stderr, \"command failed\\n\");\n    }\n    return 0;\n}\n", i)
    src = r.pick(("stdin", "fdopen(0, \"r\")"))
    main = f"{i}return {fn}({src});\n"
    return both(r, {"stdio.h", "stdlib.h", "string.h"}, head + tail, head + block(fix, i) + tail, main, i, argc=1)


def s77_denylist(r: R, i: str):
    """A deny-list of shell characters that misses '`', '$(' and newlines (fix: complete set or an allow-list)."""
    fn, arg = r.name("fn"), r.pick(("domain", "host", "name", "query"))
    tool = r.pick(("whois", "host", "nslookup", "dig +short", "getent hosts"))
    macro = r.pick(("BAD_CHARS", "SHELL_META", "FORBIDDEN", "UNSAFE_CHARS"))
    weak = r.pick((";|", ";|&", ";&|<>", "|;"))
    strong = ";|&`$()<>\\\\'\\\"\\n "
    nlines = r.pick((5, 10, 20))
    use_macro = r.chance(0.5)
    head = (c_comment(r, f"Show the first lines of '{tool.split()[0]}' for a name") + f"int {fn}(const char *{arg})\n{{\n"
            + block(f"    char cmd[{r.pick((200, 256, 320))}];\n    char out[256];\n    int shown = 0;\n", i))
    if use_macro:
        mv, mp = f"#define {macro} \"{weak}\"\n\n", f"#define {macro} \"{strong}\"\n\n"
        chk = f"{i}if (strpbrk({arg}, {macro}) != NULL)\n{i}{i}return -1;\n"
        cv = cp = chk
    else:
        mv = mp = ""
        cv = f"{i}if (strpbrk({arg}, \"{weak}\") != NULL)\n{i}{i}return -1;\n"
        cp = r.pick((f"{i}if (strpbrk({arg}, \"{strong}\") != NULL)\n{i}{i}return -1;\n",
                     f"{i}if (strspn({arg}, \"abcdefghijklmnopqrstuvwxyz0123456789.-\") != strlen({arg}))\n{i}{i}return -1;\n"))
    tail = block(f"    snprintf(cmd, sizeof cmd, \"{tool} %s\", {arg});\n    FILE *p = popen(cmd, \"r\");\n"
                 "    if (p == NULL)\n        return -1;\n"
                 f"    while (shown < {nlines} && fgets(out, sizeof out, p) != NULL) {{\n        fputs(out, stdout);\n"
                 "        shown++;\n    }\n    return pclose(p);\n}\n", i)
    main = f"{i}return {fn}(argv[1]) != 0;\n"
    return both(r, {"stdio.h", "string.h"}, mv + head + cv + tail, mp + head + cp + tail, main, i)


def s77_mail(r: R, i: str):
    """The recipient address from a form goes into a 'mail' command line (fix: allow address characters only)."""
    fn, to = r.name("fn"), r.pick(("to", "addr", "recipient", "email"))
    subj = f"{r.word().capitalize()} {r.pick(('report', 'summary', 'receipt', 'alert'))}"
    prog = r.pick((f"mail -s '{subj}' %s", f"mailx -s '{subj}' %s", "/usr/sbin/sendmail %s"))
    head = (c_comment(r, "Mail a text to the address given on the form")
            + f"int {fn}(const char *{to}, const char *body)\n{{\n{i}char cmd[{r.pick((256, 300, 400))}];\n")
    fix = r.pick((f"    if ({to}[0] == '-' || strchr({to}, '@') == NULL)\n        return -1;\n"
                  f"    for (const char *c = {to}; *c != '\\0'; c++) {{\n"
                  "        if (!isalnum((unsigned char)*c) && strchr(\"@._+-\", *c) == NULL)\n            return -1;\n    }\n",
                  f"    if ({to}[0] == '-' || strspn({to}, \"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@._+-\") != strlen({to}))\n"
                  "        return -1;\n"))
    tail = block(f"    snprintf(cmd, sizeof cmd, \"{prog}\", {to});\n    FILE *p = popen(cmd, \"w\");\n"
                 "    if (p == NULL)\n        return -1;\n    fputs(body, p);\n    return pclose(p) == 0 ? 0 : -1;\n}\n", i)
    main = f"{i}return {fn}(argv[1], \"{r.word()} {r.pick(NOUNS)} ready\\n\") != 0;\n"
    return both(r, {"stdio.h", "string.h", "ctype.h"}, head + tail, head + block(fix, i) + tail, main, i)


def s77_spawn(r: R, i: str):
    """A converter runs through system() with the uploaded names in the string (fix: posix_spawnp with an argv)."""
    fn, src, dst = r.name("fn"), r.pick(("src", "upload", "in_name")), r.pick(("dst", "out_name", "target"))
    tool, args = r.pick((("convert", ["S", "-resize", f"{r.pick((64, 128, 256))}x{r.pick((64, 128, 256))}", "D"]),
                         ("ffmpeg", ["-y", "-i", "S", "D"]), ("sox", ["S", "-r", str(r.pick((8000, 16000, 22050))), "D"]),
                         ("pandoc", ["-o", "D", "S"]), ("pdftotext", ["-layout", "S", "D"])))
    fmt = " ".join("%s" if a in ("S", "D") else a for a in args)
    order = ", ".join(src if a == "S" else dst for a in args if a in ("S", "D"))
    argv = ", ".join(f"(char *){src}" if a == "S" else f"(char *){dst}" if a == "D" else f"\"{a}\"" for a in args)
    head = (c_comment(r, f"Convert an uploaded file with {tool}") + f"int {fn}(const char *{src}, const char *{dst})\n{{\n")
    v = block(f"    char cmd[{r.pick((512, 600, 1024))}];\n    snprintf(cmd, sizeof cmd, \"{tool} {fmt}\", {order});\n"
              "    return system(cmd);\n}\n", i)
    p = block(f"    char *args[] = {{\"{tool}\", {argv}, NULL}};\n    pid_t pid;\n    int status;\n"
              f"    if (posix_spawnp(&pid, \"{tool}\", NULL, NULL, args, environ) != 0 || waitpid(pid, &status, 0) < 0)\n"
              "        return -1;\n    return status;\n}\n", i)
    pre = "extern char **environ;\n\n"
    main = f"{i}return {fn}(argv[1], argv[2]) != 0;\n"
    return both(r, {"stdio.h", "stdlib.h", "spawn.h", "sys/wait.h"}, pre + head + v, pre + head + p, main, i, argc=3)


def s77_option(r: R, i: str):
    """A user value starting with '-' is read as an option of the tool (argument injection) (fix: '--' or refuse)."""
    fn = r.name("fn")
    tool, sub, a, b = r.pick((("git", ["clone", "--depth", "1"], "url", "dest"), ("rsync", ["-a"], "src", "dst"),
                              ("curl", ["-sS", "-o"], "out", "url"), ("scp", ["-q"], "from", "to"),
                              ("tar", ["-x", "-f"], "archive", "dir")))
    pre_args = ", ".join(f"\"{s}\"" for s in sub)
    head = (c_comment(r, f"Run {tool} for a job queued by a user") + f"int {fn}(const char *{a}, const char *{b})\n{{\n"
            + block("    int status;\n", i))
    guard = f"{i}if ({a}[0] == '-' || {b}[0] == '-')\n{i}{i}return -1;\n"
    fork_ = block("    pid_t pid = fork();\n    if (pid < 0)\n        return -1;\n    if (pid == 0) {\n", i)
    if tool == "curl":  # "-o OUT" then the URL
        ex_v = f"{i}{i}execlp(\"{tool}\", \"{tool}\", {pre_args}, {a}, {b}, (char *)NULL);\n"
        ex_p = f"{i}{i}execlp(\"{tool}\", \"{tool}\", {pre_args}, {a}, \"--\", {b}, (char *)NULL);\n"
        style = r.pick(("dashes", "guard"))
    elif tool == "tar":
        ex_v = f"{i}{i}execlp(\"{tool}\", \"{tool}\", {pre_args}, {a}, \"-C\", {b}, (char *)NULL);\n"
        ex_p = ex_v
        style = "guard"
    else:
        ex_v = f"{i}{i}execlp(\"{tool}\", \"{tool}\", {pre_args}, {a}, {b}, (char *)NULL);\n"
        ex_p = f"{i}{i}execlp(\"{tool}\", \"{tool}\", {pre_args}, \"--\", {a}, {b}, (char *)NULL);\n"
        style = r.pick(("dashes", "guard"))
    tail = block("        _exit(127);\n    }\n    if (waitpid(pid, &status, 0) < 0)\n        return -1;\n"
                 "    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;\n}\n", i)
    v = head + fork_ + ex_v + tail
    p = head + fork_ + ex_p + tail if style == "dashes" else head + guard + fork_ + ex_v + tail
    main = f"{i}return {fn}(argv[1], argv[2]) != 0;\n"
    return both(r, {"stdio.h", "unistd.h", "sys/wait.h"}, v, p, main, i, argc=3)


def s77_join(r: R, i: str):
    """Every argument is appended to one command line (length is checked, content is not) (fix: check each one)."""
    fn = r.name("fn")
    start = r.pick((f"grep -l {r.word()}", "md5sum", "wc -c", "ls -ld", f"zip -q /tmp/{r.word()}.zip"))
    w = r.pick(("word", "a", "part", "cur"))
    head = (c_comment(r, f"Run '{start.split()[0]}' over every name given") + f"int {fn}(int count, char **names)\n{{\n"
            + block(f"    char cmd[{r.pick((512, 1024, 2048))}] = \"{start}\";\n    for (int k = 0; k < count; k++) {{\n"
                    f"        const char *{w} = names[k];\n", i))
    fix = r.pick((f"        if (strpbrk({w}, \";&|`$()<>\\\\'\\\"\\n \") != NULL) {{\n"
                  f"            fprintf(stderr, \"skipping %s\\n\", {w});\n            continue;\n        }}\n",
                  f"        for (const char *c = {w}; *c != '\\0'; c++) {{\n"
                  "            if (!isalnum((unsigned char)*c) && *c != '.' && *c != '_' && *c != '/')\n                return -1;\n        }\n",
                  f"        if ({w}[0] == '-' || strspn({w}, \"abcdefghijklmnopqrstuvwxyz0123456789._/\") != strlen({w}))\n"
                  "            return -1;\n"))
    tail = block(f"        if (strlen(cmd) + strlen({w}) + 2 > sizeof cmd)\n            break;\n"
                 f"        strcat(cmd, \" \");\n        strcat(cmd, {w});\n    }}\n    return system(cmd);\n}}\n", i)
    main = f"{i}return {fn}(argc - 1, argv + 1) != 0;\n"
    return both(r, {"stdio.h", "stdlib.h", "string.h", "ctype.h"}, head + tail, head + block(fix, i) + tail, main, i)


EXTRA = {
    "cwe-22": {"url-decode": _c(s22_url_decode), "strip-once": _c(s22_strip_once), "archive-extract": _c(s22_archive),
               "config-include": _c(s22_include), "locale-file": _c(s22_locale), "absolute-name": _c(s22_absolute),
               "prefix-compare": _c(s22_prefix), "upload-filename": _c(s22_upload), "wrong-arg": _c(s22_wrong_arg)},
    "cwe-77": {"quote-wrap": _c(s77_quote), "sh-c": _c(s77_sh_c), "console-switch": _c(s77_console),
               "denylist": _c(s77_denylist), "mail-pipe": _c(s77_mail), "posix-spawn": _c(s77_spawn),
               "option-inject": _c(s77_option), "argv-join": _c(s77_join)},
}
