import html
import sqlite3

from flask import Flask, redirect, request

app = Flask(__name__)
DB_PATH = "guestbook.db"
FORM = ("<form method='post'><input name='author'><textarea name='message'></textarea>"
        "<button>Sign</button></form>")


def load_entries():
    with sqlite3.connect(DB_PATH) as conn:
        return conn.execute("SELECT author, message FROM entries ORDER BY id DESC").fetchall()


@app.route("/guestbook", methods=["GET"])
def show_guestbook():
    """List every entry that visitors left, newest first."""
    items = "".join(f"<li><b>{html.escape(author)}</b>: {html.escape(message)}</li>"
                    for author, message in load_entries())
    return f"<html><body><ul>{items}</ul>{FORM}</body></html>"


@app.route("/guestbook", methods=["POST"])
def sign_guestbook():
    with sqlite3.connect(DB_PATH) as conn:
        conn.execute("INSERT INTO entries (author, message) VALUES (?, ?)",
                     (request.form["author"], request.form["message"]))
    return redirect("/guestbook")
