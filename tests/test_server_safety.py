"""What the server exposes and how it treats hostile input: files outside its cache are never served,
uploads are capped, odd text always gets an answer, and the next normal request still works."""
import urllib.error
import urllib.request

import pytest

from conftest import ROOT

HOSTILE = {
    "empty": "", "whitespace": " \t\n ", "control-chars": "\x01\x02\x07 gut \x1b[31m", "nul": "a\x00b Tolles Produkt",
"rtl-arabic": "منتج رائع جدا، أنصح به بشدة",
    "rtl-hebrew": "מוצר מעולה, ממליץ בחום", "combining": "Z̸̡̛a̷l̶g̴o̵ t̶e̸x̷t̴ great", "zero-width": "Tol\u200bles\u200d Pro\ufeffdukt",
    "1MB": "Gutes Produkt. " * 70_000, "10k-lines": "ok\n" * 10_000, "emoji": "😡😡😡👎", "digits": "1234567890",
    "html": "<b>bold</b><script>alert('x')</script>", "sql": "'; DROP TABLE reviews; -- great product",
    "path": "../../../../etc/passwd", "json": '{"models": {"en_trained": 1}}', "markdown": "# Title\n**bold** [x](javascript:alert(1))",
    "one-char": "a", "punctuation": "!!!???...", "mixed-scripts": "Great Produkt 最高 отлично", "url": "https://example.com/?q=<x>",
    "tabs": "\t\tsuper\tteil\t", "emoji-skin-tones": "👍🏽👍🏿 top", "very-long-word": "x" * 5000,
    "format-string": "{0} %s %(x)s {{}} great", "newlines-only": "\n\n\n",
}


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server, verbose=False)


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_text_gets_a_sane_answer(client, name):
    d = client.predict(HOSTILE[name], "auto", api_name="/compare")
    assert isinstance(d, dict) and "language" in d
    assert d["models"] or d["message"], d
    for m in d["models"].values():
        assert m["stars"] in range(1, 6)
    assert "Traceback" not in str(d)


def call_raw(server: str, text: str) -> dict:
    """POST through Gradio's plain HTTP API with ASCII-escaped JSON (a client library cannot even encode
    a lone surrogate; a browser or curl can send one)."""
    import json

    req = urllib.request.Request(server + "gradio_api/call/compare", method="POST",
                                 data=json.dumps({"data": [text, "auto"]}, ensure_ascii=True).encode(),
                                 headers={"Content-Type": "application/json"})
    event = json.loads(urllib.request.urlopen(req, timeout=30).read())["event_id"]
    stream = urllib.request.urlopen(server + f"gradio_api/call/compare/{event}", timeout=120).read().decode()
    kind = [line for line in stream.splitlines() if line.startswith("event:")][-1]
    data = [line for line in stream.splitlines() if line.startswith("data:")][-1]
    assert kind.strip() == "event: complete", stream[-500:]
    return json.loads(data[5:])[0]


def test_lone_surrogates_sent_over_http_get_an_answer(server):
    d = call_raw(server, "Great \ud800 product, works \udfff well")
    assert d["models"]["en_trained"]["stars"] in range(1, 6)
    assert "replaced" in d["message"]


def test_the_next_normal_request_still_works_after_the_hostile_ones(client):
    d = client.predict("Great product, would buy again!", "auto", api_name="/compare")
    assert d["language"] == "en" and d["models"]["en_trained"]["polarity"] == "positive"


@pytest.mark.parametrize("target", ["/etc/passwd", str(ROOT / "app.py"), str(ROOT / "assets/models/en_trained/heads.safetensors"),
                                    str(ROOT / ".git/config")])
@pytest.mark.parametrize("route", ["gradio_api/file=", "file=", "gradio_api/file/"])
def test_file_routes_do_not_serve_files_outside_the_cache(server, route, target):
    url = server + route + target
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body = r.read()
    except urllib.error.HTTPError as e:
        assert e.code in (403, 404, 400, 405)
        return
    assert b"root:" not in body and b"import" not in body[:2000] and b"[core]" not in body  # the page, not the file


def test_uploads_over_the_limit_are_refused_and_the_app_stays_up(client, tmp_path):
    from gradio_client import handle_file

    big = tmp_path / "big.csv"
    big.write_bytes(b"text\n" + b"x" * (11 * 1024 * 1024))
    with pytest.raises(Exception):
        client.predict(handle_file(str(big)), "", "", api_name="/batch")
    d = client.predict("Tolles Produkt, gerne wieder!", "auto", api_name="/compare")
    assert d["models"]["de_finetuned"]["stars"] in range(1, 6)
