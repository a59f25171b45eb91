import sqlite3

from flask import Flask, jsonify, request

app = Flask(__name__)


def open_library():
    conn = sqlite3.connect("library.db")
    conn.row_factory = sqlite3.Row
    return conn


@app.route("/books")
def books_by_author():
    """Return the books whose author matches the `author` query parameter."""
    author = request.args.get("author", "")
    conn = open_library()
    try:
        rows = conn.execute(
            "SELECT title, year FROM books WHERE author = ? ORDER BY year", (author,)
        ).fetchall()
    finally:
        conn.close()
    return jsonify([dict(row) for row in rows])


if __name__ == "__main__":
    app.run(port=8081)
