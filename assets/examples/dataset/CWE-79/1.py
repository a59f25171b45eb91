from flask import Flask, request

app = Flask(__name__)


@app.route("/welcome")
def welcome():
    """Greet a returning visitor by the nickname given in the query string."""
    nickname = request.args.get("nickname", "stranger")
    visits = request.cookies.get("visits", "0")
    count = int(visits) + 1 if visits.isdigit() else 1
    page = (
        "<html><body>"
        f"<h1>Welcome back, {nickname}!</h1>"
        f"<p>This is visit number {count}.</p>"
        "</body></html>"
    )
    response = app.make_response(page)
    response.set_cookie("visits", str(count))
    return response


if __name__ == "__main__":
    app.run(port=8080)
