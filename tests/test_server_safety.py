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
    """#23 finding 8: `compare_dict` turns a crash into empty models plus "Something went wrong…", which the old
    "models or message" check accepted. Now: never the crash message; any text with something in it is rated by
    both models; only empty text is refused, with the message that says so."""
    text = HOSTILE[name]
    d = client.predict(text, "auto", api_name="/compare")
    assert isinstance(d, dict) and "language" in d
    assert "Something went wrong" not in d["message"], d["message"]
    if text.strip():
        assert {"en_trained", "de_finetuned"} <= set(d["models"]), d
        for m in d["models"].values():
            assert m["stars"] in range(1, 6) and "title" in m
    else:
        assert not d["models"] and "enter a review" in d["message"], d
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


@pytest.mark.parametrize("target", ["/etc/passwd", str(ROOT / "app.py"), str(ROOT / ".git/config"),
                                    str(ROOT / "assets/models/en_trained/heads-00001-of-00002.safetensors")])
@pytest.mark.parametrize("route", ["gradio_api/file=", "file=", "gradio_api/file/"])
def test_file_routes_do_not_serve_files_outside_the_cache(server, route, target):
    """#23 finding 8: the old check searched the answer for markers ("root:", "import") the binary model file does
    not contain. Now the answer is compared against the file's own first bytes, whatever the file."""
    from pathlib import Path

    if target.endswith(".git/config") and not Path(target).is_file():
        pytest.skip("not a git checkout")
    assert Path(target).is_file(), f"{target} does not exist: the test would prove nothing"
    head = Path(target).read_bytes()[:48]
    try:
        with urllib.request.urlopen(server + route + target, timeout=10) as r:
            body = r.read()
    except urllib.error.HTTPError as e:
        assert e.code in (403, 404, 400, 405)
        return
    assert head not in body  # what came back (the page) is not the file


def test_uploads_over_the_limit_are_refused_by_the_server_and_the_app_stays_up(client, server):
    """#23 finding 8: `pytest.raises(Exception)` passed on gradio_client's own client-side size check, so the
    server's limit was never reached. Here the file goes straight to the server's upload route."""
    import httpx

    big = b"text\n" + b"x" * (11 * 1024 * 1024)
    r = httpx.post(server + "gradio_api/upload", files=[("files", ("big.csv", big))], timeout=120)
    assert r.status_code == 413 and "maximum allowed size" in r.text, (r.status_code, r.text[:300])
    small = httpx.post(server + "gradio_api/upload", files=[("files", ("ok.csv", b"text\nhello\n"))], timeout=60)
    assert small.status_code == 200  # the route itself works: the refusal was the size
    d = client.predict("Tolles Produkt, gerne wieder!", "auto", api_name="/compare")
    assert d["models"]["de_finetuned"]["stars"] in range(1, 6)


def test_a_full_queue_answers_busy_at_once_and_the_accepted_requests_complete(tmp_path):
    """Queue of 1 (+ 2 titles running): a burst of 6 long compares. The ones that do not fit are refused at once with
    gradio_client's "Queue is full! Please try again." (the page shows "This application is currently busy.
    Please try again."; see test_browser), the others finish with full results, and the server keeps serving."""
    import time
    from concurrent.futures import wait

    from gradio_client import Client
    from local_server import running_app

    n, capacity = 6, 2 + 1  # CROSSLINGUAL_TITLE_BATCH=2 titles running + CROSSLINGUAL_QUEUE_SIZE=1 waiting
    text = "Leider nach zwei Wochen kaputt, der Kundendienst antwortet nicht und das Geld ist weg. " * 30  # 512 tokens
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log, running_app({"CROSSLINGUAL_QUEUE_SIZE": "1", "CROSSLINGUAL_TITLE_BATCH": "2"},
                                              log=log) as (url, proc):
        client = Client(url, verbose=False)
        client.predict("warm up", "auto", api_name="/compare")
        done_at: dict[int, float] = {}
        t0 = time.perf_counter()
        jobs = [client.submit(f"({i}) {text}", "auto", api_name="/compare") for i in range(n)]
        for i, job in enumerate(jobs):
            job.future.add_done_callback(lambda _f, i=i: done_at.setdefault(i, time.perf_counter() - t0))
        _, pending = wait([j.future for j in jobs], timeout=240)
        assert not pending, f"{len(pending)} requests still hanging:\n{log_path.read_text()[-2000:]}"

        refused = {i: j.future.exception() for i, j in enumerate(jobs) if j.future.exception() is not None}
        answered = {i: j.result() for i, j in enumerate(jobs) if i not in refused}
        assert 1 <= len(answered) <= capacity and len(refused) == n - len(answered), (answered.keys(), refused)
        for i, exc in refused.items():
            assert type(exc).__name__ == "QueueError" and str(exc) == "Queue is full! Please try again.", repr(exc)
            assert done_at[i] < 15, f"refusal {i} took {done_at[i]:.1f} s"  # at once, not after the others
        for d in answered.values():
            for m in ("en_trained", "de_finetuned"):
                assert d["models"][m]["stars"] in range(1, 6) and d["models"][m]["title"], d
        assert max(done_at[i] for i in refused) < max(done_at[i] for i in answered)  # no waiting for the line

        d = client.predict("Great product, would buy again!", "auto", api_name="/compare")
        assert d["language"] == "en" and d["models"]["en_trained"]["polarity"] == "positive"
        assert proc.poll() is None
