"""More program shapes for CWE-79 (cross-site scripting, Flask) and CWE-89 (SQL injection, sqlite3), in Python.

Same conventions as ``synth_core.py``: every shape returns (vulnerable, patched) for one program, and the two versions
differ only in the lines of the fix; ``synth_vulns.py`` registers ``EXTRA``."""

from __future__ import annotations

import re

from synth_core import *  # noqa: F401,F403
from synth_core import _db, _esc, _route


def _sub(text: str, **kw) -> str:
    """Fill the ``$name`` holes of a code template (keeps f-string and Jinja braces readable)."""
    return re.sub(r"\$(\w+)", lambda m: str(kw[m.group(1)]), text)


def _doc(r: R, what: str) -> str:
    return r.pick((f"{what} for the {r.word()} page.", f"{what}.", f"{what} (used by the {r.word()} front end).",
                   f"{what}; see the {r.word()} notes."))


def _cls(r: R) -> str:
    return r.pick(("card", "panel", "entry", "box", "row", "note", "item", "tile"))


# -------------------------------------------------------------------------------------------------------- CWE-79
def s79_template_concat(r: R):
    """User text pasted into the source of a Jinja template instead of being passed as a variable."""
    fn, field = r.name("fn"), r.pick(("name", "nickname", "handle", "author", "display"))
    other = r.pick(("role", "team", "city", "plan", "level"))
    tag, cls = r.pick(("h2", "h3", "strong", "span")), _cls(r)
    limit, style = r.pick((32, 40, 64, 80, 120)), r.pick(("concat", "percent", "var"))
    src = r.pick(("args", "form"))
    head, mid = f"<div class='{cls}'><{tag}>", f"</{tag}><p>{{{{ {other} }}}}</p></div>"
    if style == "concat":
        vuln = (f"\"{head}\" + {field} + \"{mid}\"", f"{other}={other}")
    elif style == "percent":
        vuln = (f"\"{head}%s{mid}\" % {field}", f"{other}={other}")
    else:
        vuln = ("markup", f"{other}={other}")
    fixed = (f"\"{head}{{{{ {field} }}}}{mid}\"", f"{field}={field}, {other}={other}")
    default = r.pick(("guest", "friend", "visitor", "someone"))
    method = ', methods=["POST"]' if src == "form" else ""

    def body(t):
        tpl, kwargs = t
        if tpl == "markup":
            pre = f"    markup = \"{head}\" + {field} + \"{mid}\"\n"
            call = f"render_template_string(markup, {kwargs})"
        else:
            pre, call = "", f"render_template_string({tpl}, {kwargs})"
        return _sub("""@app.route("$route"$method)
def $fn():
    \"\"\"$doc\"\"\"
    $field = request.$src.get("$field", "$default").strip()
    $other = request.$src.get("$other", "$odef")
    if len($field) > $limit:
        abort(400)
$pre    return $call
""", route=_route(r, fn.split("_")[0]), method=method, fn=fn, doc=_doc(r, "Profile card"), field=field, src=src,
                    default=default, other=other, odef=r.pick(("member", "guest", "basic", "none")), limit=limit,
                    pre=pre, call=call)
    return py_program(r, ["from flask import Flask, abort, render_template_string, request"], *twin(r, body, vuln, fixed))


def s79_safe_filter(r: R):
    """A stored comment marked ``|safe`` (or inside an ``autoescape false`` block) in a Jinja template."""
    fn, store = r.name("fn"), r.name("var").upper()
    const = r.pick(("PAGE", "TEMPLATE", "WALL_HTML", "BOARD"))
    loopv, items, field = r.pick(("c", "entry", "post", "m")), r.pick(("comments", "posts", "entries")), \
        r.pick(("body", "text", "message", "comment"))
    mode = r.pick(("safe", "safe", "block"))
    fix = r.pick(("", "|e", "|escape")) if mode == "safe" else ""
    n, keep = r.pick((20, 32, 40, 60)), r.pick((10, 20, 50, 100))
    title = f"{r.word().title()} {r.pick(('guestbook', 'comments', 'wall', 'board'))}"

    def body(v):
        filt, (a, b) = (v, ("", "")) if mode == "safe" else ("", v)
        return _sub("""$const = \"\"\"<html><body>
<h1>{{ title }}</h1>
<ul class="$cls">
$a{% for $loopv in $items %}
  <li><b>{{ $loopv.author }}</b> {{ $loopv.$field$filt }}</li>
{% endfor %}
$b</ul>
</body></html>\"\"\"

$store = []


@app.route("$route", methods=["GET", "POST"])
def $fn():
    \"\"\"$doc\"\"\"
    if request.method == "POST":
        $store.append({"author": request.form.get("author", "anonymous")[:$n],
                       "$field": request.form.get("$field", "")})
        return redirect(url_for("$fn"))
    return render_template_string($const, title="$title", $items=$store[-$keep:])
""", const=const, cls=_cls(r), a=a, b=b, loopv=loopv, items=items, field=field, filt=filt, store=store,
                    route=_route(r, items), fn=fn, doc=_doc(r, "Comment wall"), n=n, title=title, keep=keep)
    if mode == "safe":
        v, p = "|safe", fix
    else:
        v, p = ("{% autoescape false %}\n", "{% endautoescape %}\n"), ("", "")
    return py_program(r, ["from flask import Flask, redirect, render_template_string, request, url_for"],
                      *twin(r, body, v, p))


def s79_markup_format(r: R):
    """``Markup`` applied to a string already formatted with user data (the escaping formatter is bypassed)."""
    helper, fn = r.name("fn"), r.name("fn")
    a, b = r.pick((("label", "value"), ("key", "text"), ("name", "answer")))
    kind = r.pick(("table", "list"))
    row = "<tr><th>{}</th><td>{}</td></tr>" if kind == "table" else "<li><b>{}</b>: {}</li>"
    outer = r.pick(("table", "dl")) if kind == "table" else r.pick(("ul", "ol"))
    style = r.pick(("percent", "format", "fstring"))
    if style == "percent":
        pct = row.replace("{}", "%s")
        vuln, fixed = f"Markup(\"{pct}\" % ({a}, {b}))", f"Markup(\"{pct}\") % ({a}, {b})"
    elif style == "format":
        vuln, fixed = f"Markup(\"{row}\".format({a}, {b}))", f"Markup(\"{row}\").format({a}, {b})"
    else:
        fs = row.replace("{}", "{" + a + "}", 1).replace("{}", "{" + b + "}", 1)
        vuln, fixed = f"Markup(f\"{fs}\")", f"Markup(\"{row}\").format({a}, {b})"
    skip = r.pick(("csrf_token", "submit", "next"))

    def body(expr):
        return _sub("""def $helper($a, $b):
    \"\"\"One line of the $word summary.\"\"\"
    return $expr


@app.route("$route", methods=["POST"])
def $fn():
    \"\"\"$doc\"\"\"
    rows = [$helper(k, v) for k, v in request.form.items() if k != "$skip"]
    if not rows:
        return "<p>Nothing to show.</p>"
    return render_template_string("<$outer class='$cls'>{{ rows }}</$outer>", rows=Markup("").join(rows))
""", helper=helper, a=a, b=b, word=r.word(), expr=expr, route=_route(r, "summary"), fn=fn,
                    doc=_doc(r, "Echo the submitted answers back"), skip=skip, outer=outer, cls=_cls(r))
    return py_program(r, ["from flask import Flask, render_template_string, request", "from markupsafe import Markup"],
                      *twin(r, body, vuln, fixed))


def s79_jinja_env(r: R):
    """A hand-made Jinja environment without autoescaping renders stored posts."""
    fn, fn2, store, env = r.name("fn"), r.name("fn"), r.name("var").upper(), r.pick(("env", "jinja", "templates"))
    (obj, objs), idv = r.pick((("post", "posts"), ("note", "notes"), ("story", "stories"), ("item", "items"))), r.pick(("post_id", "ident", "key", "num"))
    tname, const = f"{r.pick(('view', 'show', 'page', 'detail'))}.html", r.pick(("DETAIL", "POST_HTML", "VIEW"))
    vuln = r.pick(("", ", autoescape=False"))
    fix = r.pick((", autoescape=True", ", autoescape=select_autoescape([\"html\"])"))
    fix_imp = ["from jinja2 import select_autoescape"] if "select" in fix else []

    def body(arg):
        return _sub("""$const = \"\"\"<article class="$cls">
<h2>{{ $obj.title }}</h2>
<div class="text">{{ $obj.text }}</div>
<footer>by {{ $obj.author }}</footer>
</article>\"\"\"

$env = Environment(loader=DictLoader({"$tname": $const})$arg)
$store = {}


@app.route("$route/<int:$idv>")
def $fn($idv):
    \"\"\"$doc\"\"\"
    $obj = $store.get($idv)
    if $obj is None:
        abort(404)
    return $env.get_template("$tname").render($obj=$obj)


@app.route("$route", methods=["POST"])
def $fn2():
    $idv = len($store) + 1
    $store[$idv] = {"title": request.form["title"], "text": request.form.get("text", ""),
                   "author": request.form.get("author", "$anon")}
    return redirect(url_for("$fn", $idv=$idv))
""", const=const, cls=_cls(r), obj=obj, env=env, tname=tname, arg=arg, store=store, route=_route(r, objs),
                    idv=idv, fn=fn, fn2=fn2, doc=_doc(r, f"Show one {obj}"), anon=r.pick(("anonymous", "guest", "staff")))
    return py_program(r, ["from flask import Flask, abort, redirect, request, url_for",
                          "from jinja2 import DictLoader, Environment"], *twin(r, body, vuln, fix), fix_imp)


def s79_attr_quote(r: R):
    """The search box value is escaped, but not for the quoted attribute it sits in."""
    fn, titles, q = r.name("fn"), r.name("var").upper(), r.pick(("q", "query", "term", "find"))
    names = ", ".join(f"\"{r.word().title()} {r.pick(NOUNS)}\"" for _ in range(r.int(3, 6)))
    style = r.pick(("noquote", "noquote", "dquote"))
    if style == "noquote":
        vuln, fixed = f"html.escape({q}, quote=False)", r.pick((f"html.escape({q})", f"html.escape({q}, quote=True)"))
    else:
        vuln, fixed = f"{q}.replace(\"<\", \"&lt;\").replace('\"', \"&quot;\")", f"html.escape({q})"
    btn = r.pick(("Search", "Go", "Find", "Look up"))

    def body(expr):
        return _sub("""$titles = [$names]


@app.route("$route")
def $fn():
    \"\"\"$doc\"\"\"
    $q = request.args.get("$q", "").strip()
    hits = [t for t in $titles if $q.lower() in t.lower()]
    form = "<form><input type='text' name='$q' value='" + $expr + "'><button>$btn</button></form>"
    items = "".join("<li>" + html.escape(t) + "</li>" for t in hits)
    return form + "<ul class='$cls'>" + items + "</ul>"
""", titles=titles, names=names, route=_route(r, "search"), fn=fn, doc=_doc(r, "Search the titles"), q=q,
                    expr=expr, btn=btn, cls=_cls(r))
    return py_program(r, ["import html", "from flask import Flask, request"], *twin(r, body, vuln, fixed))


def s79_unused_escape(r: R):
    """The field is escaped into a new variable, but the page is built from the raw one."""
    fn, field = r.name("fn"), r.pick(("name", "company", "nickname", "team"))
    safe = r.pick((f"safe_{field}", f"{field}_html", "shown", "clean"))
    imp, esc = _esc(r)
    thanks = r.pick(("Thanks", "Welcome aboard", "Thank you", "All set"))
    log = r.pick(("", f"    app.logger.info(\"signup from %s\", {field})\n"))
    ret = r.pick(("concat", "fstring"))

    def body(used):
        if ret == "concat":
            out = (f"    return \"<h2>{thanks}, \" + {used} + \"!</h2><p>A message went to \" + {esc}(email) + \".</p>\"\n")
        else:
            out = f"    return f\"<h2>{thanks}, {{{used}}}!</h2><p>A message went to {{{esc}(email)}}.</p>\"\n"
        return _sub("""@app.route("$route", methods=["POST"])
def $fn():
    \"\"\"$doc\"\"\"
    $field = request.form.get("$field", "").strip()
    email = request.form.get("email", "")
    if not $field or "@" not in email:
        return "<p>Please fill in the form.</p>", 400
    $safe = $esc($field)
$log$out""", route=_route(r, "signup"), fn=fn, doc=_doc(r, "Sign-up form target"), field=field, safe=safe, esc=esc,
                    log=log, out=out)
    return py_program(r, ["from flask import Flask, request", imp], *twin(r, body, field, safe))


def s79_error_handler(r: R):
    """A 404 page that echoes the requested address."""
    fn, index = r.name("fn"), r.name("fn")
    imp, esc = _esc(r)
    src = r.pick(("path", "full_path", "url"))
    title = r.pick(("Not found", "Page not found", "Nothing here", "404"))
    back = r.pick(("Back home", "Start page", "Home"))
    style = r.pick(("concat", "fstring", "percent"))
    var = r.pick(("where", "asked", "target", "addr"))

    def body(expr):
        if style == "concat":
            ret = f"\"<h1>{title}</h1><p>No page at <code>\" + {expr} + \"</code>.</p><a href='/'>{back}</a>\", 404"
        elif style == "fstring":
            ret = f"f\"<h1>{title}</h1><p>No page at <code>{{{expr}}}</code>.</p><a href='/'>{back}</a>\", 404"
        else:
            ret = f"\"<h1>{title}</h1><p>No page at <code>%s</code>.</p><a href='/'>{back}</a>\" % {expr}, 404"
        return _sub("""@app.route("/")
def $index():
    return "<p>$word is up.</p>"


@app.errorhandler(404)
def $fn(err):
    \"\"\"$doc\"\"\"
    $var = request.$src
    app.logger.warning("missing page %s", $var)
    return $ret
""", index=index, word=r.word().title(), fn=fn, doc=_doc(r, "Friendly not-found page"), var=var, src=src, ret=ret)
    return py_program(r, ["from flask import Flask, request", imp], *twin(r, body, var, f"{esc}({var})"))


def s79_raw_mimetype(r: R):
    """Stored pastes served back as HTML instead of plain text."""
    save, fn, store = r.name("fn"), r.name("fn"), r.name("var").upper()
    key, n = r.pick(("key", "paste_id", "slug", "token")), r.pick((8, 10, 12, 16))
    style = r.pick(("response", "headers", "bare"))
    if style == "response":
        vuln, fixed = "    return Response(text, mimetype=\"text/html\")\n", "    return Response(text, mimetype=\"text/plain\")\n"
        imps = "from flask import Flask, Response, abort, request"
    elif style == "headers":
        ct = r.pick(("", "; charset=utf-8"))
        vuln = f"    resp = make_response(text)\n    resp.headers[\"Content-Type\"] = \"text/html{ct}\"\n    return resp\n"
        fixed = f"    resp = make_response(text)\n    resp.headers[\"Content-Type\"] = \"text/plain{ct}\"\n    return resp\n"
        imps = "from flask import Flask, abort, make_response, request"
    else:
        vuln = "    return text\n"
        fixed = "    return Response(text, mimetype=\"text/plain\")\n"
        imps = "from flask import Flask, Response, abort, request"
    limit = r.pick((4096, 16384, 65536, 100000))

    def body(ret):
        return _sub("""$store = {}


@app.route("$route", methods=["POST"])
def $save():
    data = request.get_data()
    if len(data) > $limit:
        abort(413)
    $key = hashlib.sha1(data).hexdigest()[:$n]
    $store[$key] = data.decode("utf-8", "replace")
    return {"id": $key}, 201


@app.route("$route/<$key>")
def $fn($key):
    \"\"\"$doc\"\"\"
    text = $store.get($key)
    if text is None:
        abort(404)
$ret""", store=store, route=_route(r, r.pick(("paste", "raw", "snippet"))), save=save, limit=limit, key=key, n=n,
                    fn=fn, doc=_doc(r, "Raw view of one paste"), ret=ret)
    return py_program(r, ["import hashlib", imps], *twin(r, body, vuln, fixed))


def s79_blacklist(r: R):
    """A home-made filter that strips script tags instead of escaping the text."""
    clean, fn, store = r.name("fn"), r.name("fn"), r.name("var").upper()
    imp, esc = r.pick((("import html", "html.escape"), ("from markupsafe import escape", "escape")))
    style = r.pick(("regex", "replace", "loop"))
    if style == "regex":
        vuln = "    return re.sub(r\"(?i)</?script[^>]*>\", \"\", text)\n"
    elif style == "replace":
        vuln = "    return text.replace(\"<script>\", \"\").replace(\"</script>\", \"\")\n"
    else:
        bad = ", ".join(f"\"{b}\"" for b in r.rng.sample(["<script", "javascript:", "onerror", "onload", "<iframe"], 3))
        vuln = f"    for bad in ({bad}):\n        text = text.replace(bad, \"\")\n    return text\n"
    fixed = f"    return {esc}(text)\n"
    keep = r.pick((20, 30, 50))

    def body(b):
        return _sub("""$store = []


def $clean(text):
    \"\"\"Make visitor text safe to show on the page.\"\"\"
$b

@app.route("$route", methods=["GET", "POST"])
def $fn():
    \"\"\"$doc\"\"\"
    if request.method == "POST" and request.form.get("text"):
        $store.append(request.form["text"])
    entries = "".join("<div class='$cls'>" + $clean(e) + "</div>" for e in $store[-$keep:])
    return "<h1>$title</h1>" + entries + "<form method='post'><textarea name='text'></textarea><button>Post</button></form>"
""", store=store, clean=clean, b=b, route=_route(r, "guestbook"), fn=fn, doc=_doc(r, "Guestbook"), cls=_cls(r),
                    keep=keep, title=f"{r.word().title()} guestbook")
    return py_program(r, ["import re", "from flask import Flask, request"], *twin(r, body, vuln, fixed), [imp])


def s79_script_json(r: R):
    """A query value written into an inline script as a quoted JavaScript string."""
    fn, q, state = r.name("fn"), r.pick(("q", "query", "term", "search")), r.pick(("APP_STATE", "boot", "initial"))
    div = r.pick(("app", "root", "results", "main"))
    quote = r.pick(("'", "\\\""))
    vuln = f"\", {q}: {quote}\" + {q} + \"{quote}}};\""
    style = r.pick(("jinja", "json"))
    if style == "jinja":
        fixed, fix_imp = f"\", {q}: \" + htmlsafe_json_dumps({q}) + \"}};\"", ["from jinja2.utils import htmlsafe_json_dumps"]
    else:
        fixed = f"\", {q}: \" + json.dumps({q}).replace(\"<\", \"\\\\u003c\") + \"}};\""
        fix_imp = ["import json"]
    start = r.pick(("start", "boot", "mount", "init"))

    def body(expr):
        return _sub("""@app.route("$route")
def $fn():
    \"\"\"$doc\"\"\"
    $q = request.args.get("$q", "")
    page = request.args.get("page", "1")
    if not page.isdigit():
        page = "1"
    return ("<div id='$div'></div><script src='/static/$word.js'></script><script>"
            "window.$state = {page: " + page + $expr
            "$start(window.$state);</script>")
""", route=_route(r, "find"), fn=fn, doc=_doc(r, "Search page shell"), q=q, div=div, word=r.word(), state=state,
                    expr=expr, start=start)
    return py_program(r, ["from flask import Flask, request"], *twin(r, body, vuln, fixed), fix_imp)


# -------------------------------------------------------------------------------------------------------- CWE-89
def _conn(r: R) -> str:
    return r.pick(("conn", "db", "con", "cx"))


def s89_order_by(r: R):
    """A listing sorted by a column named in the query string (fixed with an allow-list)."""
    fn, table, conn = r.name("fn"), r.name("var"), _conn(r)
    cols = r.rng.sample(["name", "created", "price", "title", "city", "score", "updated", "size"], 4)
    const, default = r.pick(("SORTABLE", "SORT_COLUMNS", "ORDER_FIELDS")), cols[0]
    fix = r.pick(("default", "abort", "map"))
    if fix == "map":
        decl = f"{const} = {{" + ", ".join(f"\"{c}\": \"{c}\"" for c in cols) + "}"
        vuln, patched = f"    sort = request.args.get(\"sort\", \"{default}\")\n", \
            f"    sort = {const}.get(request.args.get(\"sort\", \"{default}\"), \"{default}\")\n"
    else:
        decl = f"{const} = (" + ", ".join(f"\"{c}\"" for c in cols) + ")"
        read = f"    sort = request.args.get(\"sort\", \"{default}\")\n"
        check = f"        sort = \"{default}\"\n" if fix == "default" else "        abort(400)\n"
        vuln, patched = read, read + f"    if sort not in {const}:\n" + check
    sel = ", ".join(["id"] + cols[:r.int(2, 4)])

    def body(read):
        return _sub("""$decl


@app.route("$route")
def $fn():
    \"\"\"$doc\"\"\"
$read    order = "DESC" if request.args.get("desc") == "1" else "ASC"
    $conn = sqlite3.connect("$db")
    rows = $conn.execute(f"SELECT $sel FROM $table ORDER BY {sort} {order}").fetchall()
    $conn.close()
    return {"sort_options": list($const), "rows": [list(row) for row in rows]}
""", decl=decl, route=_route(r, table), fn=fn, doc=_doc(r, f"List the {table} rows"), read=read, conn=conn,
                    db=_db(r), sel=sel, table=table, const=const)
    return py_program(r, ["import sqlite3", "from flask import Flask, abort, request"], *twin(r, body, vuln, patched))


def s89_table_name(r: R):
    """A command-line export tool that takes the table name as an argument."""
    fn, conn = r.name("fn"), _conn(r)
    tables = [r.name("var") for _ in range(r.int(2, 4))]
    style = r.pick(("concat", "fstring", "percent"))
    query = {"concat": "\"SELECT * FROM \" + table", "fstring": "f\"SELECT * FROM {table}\"",
             "percent": "\"SELECT * FROM %s\" % table"}[style]
    fix = r.pick(("const", "master"))
    if fix == "const":
        chk = (f"    if table not in TABLES:\n        raise {r.pick(('ValueError', 'SystemExit'))}"
               f"(\"unknown table: \" + table)\n")
    else:
        chk = (f"    known = {{row[0] for row in {conn}.execute(\"SELECT name FROM sqlite_master WHERE type = 'table'\")}}\n"
               "    if table not in known:\n        raise SystemExit(\"no such table: \" + table)\n")
    sep = r.pick((",", ";", "\\t"))

    def body(check):
        return _sub("""TABLES = ($tables)


def $fn($conn, table, out):
    \"\"\"Write every row of one table as CSV, with a header line.\"\"\"
$check    cur = $conn.execute($query)
    writer = csv.writer(out, delimiter="$sep")
    writer.writerow([col[0] for col in cur.description])
    writer.writerows(cur)


def main():
    parser = argparse.ArgumentParser(description="dump a table of the $word database")
    parser.add_argument("table", help="one of: " + ", ".join(TABLES))
    parser.add_argument("--db", default="$db")
    args = parser.parse_args()
    with sqlite3.connect(args.db) as $conn:
        $fn($conn, args.table, sys.stdout)


if __name__ == "__main__":
    main()
""", tables=", ".join(f"\"{t}\"" for t in tables), fn=fn, conn=conn, check=check, query=query, sep=sep,
                    word=r.word(), db=_db(r))
    return py_program(r, ["import argparse", "import csv", "import sqlite3", "import sys"], *twin(r, body, "", chk),
                      flask=False)


def s89_executescript(r: R):
    """Two statements glued into one ``executescript`` call with a form value inside."""
    fn, view, table, conn = r.name("fn"), r.name("fn"), r.name("var"), _conn(r)
    item, label = r.pick(("item_id", "ident", "row_id")), r.pick(("label", "tag", "note", "flag"))
    counter = r.pick(("labels", "tag_count", "marks"))
    style = r.pick(("fstring", "concat"))
    if style == "fstring":
        vuln = (f"    {conn}.executescript(f\"\"\"\n"
                f"        INSERT INTO {table}_{label}s ({item}, {label}) VALUES ({{{item}}}, '{{{label}}}');\n"
                f"        UPDATE {table} SET {counter} = {counter} + 1 WHERE id = {{{item}}};\n    \"\"\")\n")
    else:
        vuln = (f"    {conn}.executescript(\"INSERT INTO {table}_{label}s ({item}, {label}) VALUES (\" + str({item})"
                f" + \", '\" + {label} + \"');\"\n"
                f"                         \"UPDATE {table} SET {counter} = {counter} + 1 WHERE id = \" + str({item}) + \";\")\n")
    fixed = (f"    with {conn}:\n"
             f"        {conn}.execute(\"INSERT INTO {table}_{label}s ({item}, {label}) VALUES (?, ?)\", ({item}, {label}))\n"
             f"        {conn}.execute(\"UPDATE {table} SET {counter} = {counter} + 1 WHERE id = ?\", ({item},))\n")
    maxlen = r.pick((16, 32, 40, 64))

    def body(stmt):
        return _sub("""SCHEMA = \"\"\"
CREATE TABLE IF NOT EXISTS $table (id INTEGER PRIMARY KEY, name TEXT, $counter INTEGER DEFAULT 0);
CREATE TABLE IF NOT EXISTS $tlabels ($item INTEGER, $label TEXT);
\"\"\"


def $fn($conn, $item, $label):
    \"\"\"Attach a $label to one $table row and bump its counter.\"\"\"
$stmt

@app.route("$route/<int:$item>/$label", methods=["POST"])
def $view($item):
    \"\"\"$doc\"\"\"
    $label = request.form.get("$label", "").strip()
    if not $label or len($label) > $maxlen:
        return {"error": "bad $label"}, 400
    $conn = sqlite3.connect("$db")
    $conn.executescript(SCHEMA)
    $fn($conn, $item, $label)
    $conn.close()
    return {"ok": True}
""", table=table, counter=counter, tlabels=f"{table}_{label}s", item=item, label=label, fn=fn, conn=conn, stmt=stmt,
                    route=_route(r, table), view=view, doc=_doc(r, f"Tag a {table}"), maxlen=maxlen, db=_db(r))
    return py_program(r, ["import sqlite3", "from flask import Flask, request"], *twin(r, body, vuln, fixed))


def s89_limit(r: R):
    """Paging values from the query string pasted into LIMIT/OFFSET."""
    fn, view, table, conn = r.name("fn"), r.name("fn"), r.name("var"), _conn(r)
    col, lim = r.pick(("name", "title", "label", "city")), r.pick((10, 20, 25, 50))
    fix = r.pick(("param", "type"))
    q_v = f"f\"SELECT id, {col} FROM {table} ORDER BY id DESC LIMIT {{limit}} OFFSET {{offset}}\""
    if fix == "param":
        q_p = f"\"SELECT id, {col} FROM {table} ORDER BY id DESC LIMIT ? OFFSET ?\", (int(limit), int(offset))"
        rd_v = rd_p = (f"    limit = request.args.get(\"limit\", \"{lim}\")\n"
                       "    offset = request.args.get(\"offset\", \"0\")\n")
    else:
        q_p = q_v
        rd_v = f"    limit = request.args.get(\"limit\", \"{lim}\")\n    offset = request.args.get(\"offset\", \"0\")\n"
        rd_p = f"    limit = request.args.get(\"limit\", {lim}, type=int)\n    offset = request.args.get(\"offset\", 0, type=int)\n"

    def body(t):
        rd, q = t
        return _sub("""def $fn($conn, limit, offset):
    \"\"\"One page of $table, newest first.\"\"\"
    cur = $conn.execute($q)
    return [{"id": row[0], "$col": row[1]} for row in cur]


@app.route("$route")
def $view():
    \"\"\"$doc\"\"\"
$rd    $conn = sqlite3.connect("$db")
    try:
        return {"items": $fn($conn, limit, offset)}
    finally:
        $conn.close()
""", fn=fn, conn=conn, table=table, q=q, col=col, route=_route(r, table), view=view,
                    doc=_doc(r, f"Page through {table}"), rd=rd, db=_db(r))
    return py_program(r, ["import sqlite3", "from flask import Flask, request"], *twin(r, body, (rd_v, q_v), (rd_p, q_p)))


def s89_login(r: R):
    """A credentials check built from two form fields."""
    check, fn, users, conn = r.name("fn"), r.name("fn"), r.pick(("users", "accounts", "staff", "members")), _conn(r)
    ucol, pcol = r.pick(("username", "login", "email")), r.pick(("pw_hash", "password_hash", "digest"))
    salt = r.pick(("pepper", "salt", "SECRET_SALT"))
    style = r.pick(("fstring", "concat", "percent"))
    q_v = {"fstring": f"f\"SELECT id FROM {users} WHERE {ucol} = '{{user}}' AND {pcol} = '{{digest}}'\"",
           "concat": f"\"SELECT id FROM {users} WHERE {ucol} = '\" + user + \"' AND {pcol} = '\" + digest + \"'\"",
           "percent": f"\"SELECT id FROM {users} WHERE {ucol} = '%s' AND {pcol} = '%s'\" % (user, digest)"}[style]
    q_p = f"\"SELECT id FROM {users} WHERE {ucol} = ? AND {pcol} = ?\""
    split = r.chance(0.5)
    if split:
        v = f"    query = {q_v}\n    row = {conn}.execute(query).fetchone()\n"
        p = f"    query = {q_p}\n    row = {conn}.execute(query, (user, digest)).fetchone()\n"
    else:
        v = f"    row = {conn}.execute({q_v}).fetchone()\n"
        p = f"    row = {conn}.execute({q_p}, (user, digest)).fetchone()\n"

    def body(stmt):
        return _sub("""$SALT = "$saltval"


def $check($conn, user, password):
    \"\"\"The user id when the credentials match, else None.\"\"\"
    digest = hashlib.sha256(($SALT + password).encode()).hexdigest()
$stmt    return row[0] if row else None


@app.route("$route", methods=["POST"])
def $fn():
    \"\"\"$doc\"\"\"
    $conn = sqlite3.connect("$db")
    uid = $check($conn, request.form.get("$ucol", ""), request.form.get("password", ""))
    $conn.close()
    if uid is None:
        return {"error": "invalid login"}, 401
    return {"user": uid}
""", SALT=salt.upper(), saltval=f"{r.word()}-{r.int(100, 9999)}", check=check, conn=conn, stmt=stmt,
                    route=_route(r, "login"), fn=fn, doc=_doc(r, "Log in"), db=_db(r), ucol=ucol)
    return py_program(r, ["import hashlib", "import sqlite3", "from flask import Flask, request"], *twin(r, body, v, p))


def s89_dao_update(r: R):
    """A small data-access class whose update method formats several fields into the SQL."""
    cls = r.name("type").title() + r.pick(("Store", "Repo", "Dao", "Table"))
    table, update, key = r.name("var"), r.name("fn"), r.pick(("row_id", "ident", "pk"))
    f1, f2 = r.rng.sample(["name", "email", "phone", "city", "title", "owner"], 2)
    style = r.pick(("percent", "fstring", "format"))
    q_v = {"percent": f"\"UPDATE {table} SET {f1} = '%s', {f2} = '%s' WHERE id = %d\" % ({f1}, {f2}, {key})",
           "fstring": f"f\"UPDATE {table} SET {f1} = '{{{f1}}}', {f2} = '{{{f2}}}' WHERE id = {{{key}}}\"",
           "format": f"\"UPDATE {table} SET {f1} = '{{}}', {f2} = '{{}}' WHERE id = {{}}\".format({f1}, {f2}, {key})"}[style]
    q_p = f"\"UPDATE {table} SET {f1} = ?, {f2} = ? WHERE id = ?\", ({f1}, {f2}, {key})"

    def body(q):
        return _sub("""class $cls:
    \"\"\"Data access for the $table table.\"\"\"

    def __init__(self, path="$db"):
        self.conn = sqlite3.connect(path)

    def get(self, $key):
        cur = self.conn.execute("SELECT id, $f1, $f2 FROM $table WHERE id = ?", ($key,))
        return cur.fetchone()

    def $update(self, $key, $f1, $f2):
        \"\"\"Change the $f1 and $f2 of one row.\"\"\"
        self.conn.execute($q)
        self.conn.commit()


def main(argv):
    if len(argv) != 4:
        print("usage: $prog ID $F1 $F2", file=sys.stderr)
        return 2
    store = $cls()
    store.$update(int(argv[1]), argv[2], argv[3])
    print(store.get(int(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
""", cls=cls, table=table, db=_db(r), key=key, f1=f1, f2=f2, update=update, q=q, prog=f"{r.word()}-edit",
                    F1=f1.upper(), F2=f2.upper())
    return py_program(r, ["import sqlite3", "import sys"], *twin(r, body, q_v, q_p), flask=False)


def s89_in_list(r: R):
    """An ``IN (...)`` list joined from request values."""
    fn, table, conn = r.name("fn"), r.name("var"), _conn(r)
    col = r.pick(("name", "title", "status", "owner"))
    src = r.pick(("args", "form", "json"))
    read = {"args": "request.args.get(\"ids\", \"\").split(\",\")",
            "form": "request.form.getlist(\"id\")",
            "json": "[str(x) for x in request.get_json(force=True).get(\"ids\", [])]"}[src]
    verb = r.pick(("select", "delete"))
    fix = r.pick(("marks", "cast"))
    stmt = (f"SELECT id, {col} FROM {table}" if verb == "select" else f"DELETE FROM {table}")
    run = "rows = {c}.execute(sql{a}).fetchall()" if verb == "select" else "{c}.execute(sql{a})\n    {c}.commit()"
    out = "{\"rows\": [list(row) for row in rows]}" if verb == "select" else "{\"deleted\": len(ids)}"
    method = ', methods=["POST"]' if src != "args" or verb == "delete" else ""
    if fix == "marks":
        v = (f"    ids = {read}\n"
             f"    sql = \"{stmt} WHERE id IN (\" + \", \".join(ids) + \")\"\n    " + run.format(c=conn, a="") + "\n")
        p = (f"    ids = {read}\n    marks = \", \".join(\"?\" for _ in ids)\n"
             f"    sql = \"{stmt} WHERE id IN (\" + marks + \")\"\n    " + run.format(c=conn, a=", ids") + "\n")
    else:
        tail = (f"    sql = \"{stmt} WHERE id IN (\" + \", \".join(map(str, ids)) + \")\"\n    "
                + run.format(c=conn, a="") + "\n")
        v = f"    ids = {read}\n" + tail
        p = f"    ids = [int(x) for x in {read}]\n" + tail

    def body(b):
        return _sub("""@app.route("$route"$method)
def $fn():
    \"\"\"$doc\"\"\"
    $conn = sqlite3.connect("$db")
$b    $conn.close()
    return $out
""", route=_route(r, table), method=method, fn=fn, doc=_doc(r, f"Bulk {verb} of {table} rows"), conn=conn,
                    db=_db(r), b=b, out=out)
    return py_program(r, ["import sqlite3", "from flask import Flask, request"], *twin(r, body, v, p))


def s89_filters(r: R):
    """A WHERE clause built from query-string filters: column names are checked, values are pasted in."""
    fn, view, table, conn = r.name("fn"), r.name("fn"), r.name("var"), _conn(r)
    fields = r.rng.sample(["city", "status", "owner", "kind", "colour", "region", "tier"], r.int(3, 4))
    const = r.pick(("FILTERABLE", "FILTER_FIELDS", "ALLOWED"))
    style = r.pick(("fstring", "concat", "percent"))
    v = {"fstring": "        clauses.append(f\"{key} = '{value}'\")\n",
         "concat": "        clauses.append(key + \" = '\" + value + \"'\")\n",
         "percent": "        clauses.append(\"%s = '%s'\" % (key, value))\n"}[style]
    p = r.pick(("        clauses.append(f\"{key} = ?\")\n", "        clauses.append(key + \" = ?\")\n")) + \
        "        params.append(value)\n"
    joiner = r.pick(("AND", "AND", "OR"))

    def body(b):
        return _sub("""$const = {$fields}


def $fn($conn, filters):
    \"\"\"Rows of $table matching the known filters.\"\"\"
    clauses, params = [], []
    for key, value in sorted(filters.items()):
        if key not in $const:
            continue
$b    sql = "SELECT * FROM $table"
    if clauses:
        sql += " WHERE " + " $joiner ".join(clauses)
    return $conn.execute(sql, params).fetchall()


@app.route("$route")
def $view():
    \"\"\"$doc\"\"\"
    $conn = sqlite3.connect("$db")
    rows = $fn($conn, request.args.to_dict())
    $conn.close()
    return {"count": len(rows), "rows": [list(row) for row in rows]}
""", const=const, fields=", ".join(f"\"{f}\"" for f in fields), fn=fn, conn=conn, table=table, b=b, joiner=joiner,
                    route=_route(r, table), view=view, doc=_doc(r, f"Filter {table}"), db=_db(r))
    return py_program(r, ["import sqlite3", "from flask import Flask, request"], *twin(r, body, v, p))


def s89_quote_escape(r: R):
    """An interactive lookup that 'escapes' the input by hand instead of binding it."""
    fn, table, conn = r.name("fn"), r.name("var"), _conn(r)
    arg = r.pick(("code", "key", "ref", "serial"))
    cols = ", ".join(r.rng.sample(["name", "status", "owner", "price", "city"], 2))
    style = r.pick(("backslash", "numeric", "semicolon"))
    if style == "backslash":
        v = (f"    {arg} = {arg}.replace(\"'\", \"\\\\'\")\n"
             f"    cur = {conn}.execute(f\"SELECT {cols} FROM {table} WHERE {arg} = '{{{arg}}}'\")\n")
        p = f"    cur = {conn}.execute(\"SELECT {cols} FROM {table} WHERE {arg} = ?\", ({arg},))\n"
    elif style == "numeric":
        v = (f"    {arg} = {arg}.replace(\"'\", \"''\")\n"
             f"    cur = {conn}.execute(\"SELECT {cols} FROM {table} WHERE id = \" + {arg})\n")
        p = f"    cur = {conn}.execute(\"SELECT {cols} FROM {table} WHERE id = ?\", ({arg},))\n"
    else:
        v = (f"    if \";\" in {arg} or \"--\" in {arg}:\n        raise ValueError(\"bad {arg}\")\n"
             f"    cur = {conn}.execute(\"SELECT {cols} FROM {table} WHERE {arg} = '%s'\" % {arg})\n")
        p = f"    cur = {conn}.execute(\"SELECT {cols} FROM {table} WHERE {arg} = ?\", ({arg},))\n"
    prompt = r.pick((arg, table, r.word()))

    def body(b):
        return _sub("""def $fn($conn, $arg):
    \"\"\"The $table row for one $arg, or None.\"\"\"
$b    return cur.fetchone()


def main():
    $conn = sqlite3.connect("$db")
    while True:
        try:
            $arg = input("$prompt> ").strip()
        except EOFError:
            break
        if not $arg:
            continue
        row = $fn($conn, $arg)
        print(row if row else "not found")
    $conn.close()


if __name__ == "__main__":
    main()
""", fn=fn, conn=conn, arg=arg, table=table, b=b, db=_db(r), prompt=prompt)
    return py_program(r, ["import sqlite3"], *twin(r, body, v, p), flask=False)


def s89_csv_import(r: R):
    """A CSV import whose rows are formatted into INSERT statements."""
    fn, table, conn = r.name("fn"), r.name("var"), _conn(r)
    c1, c2 = r.rng.sample(["name", "email", "city", "title", "sku", "owner", "note"], 2)
    style = r.pick(("fstring", "concat", "format"))
    v = {"fstring": f"            {conn}.execute(f\"INSERT INTO {table} ({c1}, {c2}) VALUES ('{{row['{c1}']}}', '{{row['{c2}']}}')\")\n",
         "concat": f"            {conn}.execute(\"INSERT INTO {table} ({c1}, {c2}) VALUES ('\" + row[\"{c1}\"] + \"', '\" + row[\"{c2}\"] + \"')\")\n",
         "format": f"            {conn}.execute(\"INSERT INTO {table} ({c1}, {c2}) VALUES ('{{}}', '{{}}')\".format(row[\"{c1}\"], row[\"{c2}\"]))\n"}[style]
    p = f"            {conn}.execute(\"INSERT INTO {table} ({c1}, {c2}) VALUES (?, ?)\", (row[\"{c1}\"], row[\"{c2}\"]))\n"
    skip = r.pick(("if not row.get(\"{c}\"):", "if row.get(\"{c}\", \"\").startswith(\"#\"):")).format(c=c1)

    def body(b):
        return _sub("""def $fn($conn, path):
    \"\"\"Load a CSV export into $table; returns the number of rows added.\"\"\"
    added = 0
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            $skip
                continue
$b            added += 1
    $conn.commit()
    return added


def main(argv):
    if len(argv) < 2:
        print("usage: $prog FILE.csv [...]", file=sys.stderr)
        return 2
    $conn = sqlite3.connect("$db")
    $conn.execute("CREATE TABLE IF NOT EXISTS $table (id INTEGER PRIMARY KEY, $c1 TEXT, $c2 TEXT)")
    for path in argv[1:]:
        print(path, $fn($conn, path))
    $conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
""", fn=fn, conn=conn, table=table, skip=skip, b=b, prog=f"{r.word()}-import", db=_db(r), c1=c1, c2=c2)
    return py_program(r, ["import csv", "import sqlite3", "import sys"], *twin(r, body, v, p), flask=False)


EXTRA = {
    "cwe-79": {"template-concat": s79_template_concat, "safe-filter": s79_safe_filter,
               "markup-format": s79_markup_format, "jinja-env": s79_jinja_env, "attr-quote": s79_attr_quote,
               "unused-escape": s79_unused_escape, "error-handler": s79_error_handler,
               "raw-mimetype": s79_raw_mimetype, "blacklist": s79_blacklist, "script-json": s79_script_json},
    "cwe-89": {"order-by": s89_order_by, "table-name": s89_table_name, "executescript": s89_executescript,
               "limit": s89_limit, "login": s89_login, "dao-update": s89_dao_update, "in-list": s89_in_list,
               "filters": s89_filters, "quote-escape": s89_quote_escape, "csv-import": s89_csv_import},
}
