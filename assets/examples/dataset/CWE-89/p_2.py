import os
import sqlite3

from flask import Flask, request, session

app = Flask(__name__)
app.secret_key = os.environ["ACCOUNTS_SECRET"]


@app.route("/profile/email", methods=["POST"])
def change_email():
    """Let the logged-in user change the e-mail address stored for them."""
    if "user_id" not in session:
        return "login required", 401
    new_email = request.form.get("email", "").strip()
    if "@" not in new_email:
        return "invalid e-mail address", 400
    with sqlite3.connect("accounts.db") as conn:
        conn.execute(
            "UPDATE users SET email = ? WHERE id = ?", (new_email, int(session["user_id"]))
        )
    return "e-mail updated", 200


if __name__ == "__main__":
    app.run(port=8082)
