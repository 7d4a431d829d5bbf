"""The page, top to bottom as a visitor sees it. Layout and wiring only: every decision lives in `core`."""
from __future__ import annotations

import html
import json
from pathlib import Path

import gradio as gr

from core.explain import COLORS, GROUPS, YOUR_REVIEW, load_map, map_frame
from core.langid import language_name
from core.languages import LANGUAGES
from core.names import DE_FINETUNED, EN_TRAINED, ENGLISH_ONLY, LABELS, MAIN_MODELS, ZERO_SHOT
from core.settings import current

from .tabs import batch_tab, evidence_tab

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = json.loads((ROOT / "assets" / "examples" / "examples.json").read_text(encoding="utf-8"))
COLUMNS = tuple((name, LABELS[name][0].upper() + LABELS[name][1:]) for name in MAIN_MODELS)
LANG_CHOICES = [("auto (detect)", "auto")] + [(f"{lang.name} ({lang.code})", lang.code) for lang in LANGUAGES]

EXPLANATION = """
**Zero-shot cross-lingual transfer.** Both models share one multilingual encoder (multilingual-e5-small, an
XLM-R-vocabulary model pre-trained on ~100 languages) for the rating, and one pretrained multilingual generator
(Gemma 3 270M) for the title. The left model was trained on English reviews only; the right one started from it and
was then fine-tuned on German reviews.

**Why the rating transfers.** The encoder maps "great, would buy again" and "super, jederzeit wieder" to nearby
vectors, and the labels (1–5 stars) are the same in every language. A head trained on English vectors therefore
often rates German (or French, or Japanese) reviews sensibly without ever seeing one.

**Why the title transfers only partly.** Writing a title means choosing *words*. The smaller second line in each
column is the question's own setup: a decoder warm-started from the encoder, which learnt its words from a few hundred
English titles. For a German review it answers in English ("accidental translation"), copies words, or returns a title
it memorised. The main title comes from a generator that was pre-trained on many languages, with a small adapter that
changes how it writes a title, not how it reads the review: trained on English titles only, it writes German titles
for most German reviews and still answers some in English (the *Evidence* tab counts how often: about one in ten; a
third with an earlier adapter decoded greedily). But look at the 📋 badge: most of those German titles are a phrase
copied from the review, and a copied phrase is in the review's language whatever the model learnt. Only about one
German title in four is written in its own words, against one in two for English reviews; fine-tuning on German
makes nearly every title German, not more of them written. A few dozen German titles are enough for that (the
*Evidence* tab's "How many German titles does it take?"); more of them do not make the titles less copied.

**Catastrophic forgetting.** Fine-tuning on German moves the same weights; what the model did on English can get
worse. The *Evidence* numbers measure it, for the rating and for the titles, instead of assuming it.
"""

BADGES = {
    "same_language": ("✅", "same language as the input"),
    "accidental_translation": ("🔀", "accidental translation: the title is in another language"),
    "copied": ("📋", "copied from the input: at least 4 in 5 of the title's words (characters in Chinese and "
                     "Japanese) come from the review"),
    "seen_in_training": ("🧠", "seen in training: a memorised title, not a new one"),
    "unknown": ("❔", "title language could not be judged"),
}


def stars_line(out: dict) -> str:
    if not out or out.get("stars") is None:
        return ""
    s = int(out["stars"])
    return f"### {'★' * s}{'☆' * (5 - s)}  {s}/5 · {out.get('polarity', '')}"


def star_bars(out: dict) -> str:
    """Star probabilities as bars in star order, 1 to 5 (a label sorted by value would reorder the scale)."""
    probs = (out or {}).get("star_probs") or {}
    if not probs:
        return ""
    rows = "".join(
        f"<div class='star-row'><span class='star-name'>{html.escape(k)} ★</span>"
        f"<span class='star-bar'><span style='width:{100 * float(v):.1f}%'></span></span>"
        f"<span class='star-p'>{100 * float(v):.0f}%</span></div>"
        for k, v in sorted(probs.items(), key=lambda kv: int(kv[0])))
    return f"<div class='star-probs'>{rows}</div>"


def title_html(out: dict, input_lang: str, ahead: int | None = None) -> str:
    """The main title (the pretrained generator's), its badge and language, then the seed's encoder-decoder title
    as a smaller second line with its own badge. A title not written yet (step one's answer) is a placeholder
    saying so, and how many comparisons' titles are ahead of it (`ahead`)."""
    if not out:
        return ""
    if out.get("error"):
        main = f"<div class='title-error'>⚠️ {html.escape(out['error'])}</div>"
    elif out.get("title") is None and "title_badge" not in out:
        wait = f" {ahead} comparison{'s' if ahead != 1 else ''} ahead of this one." if ahead else ""
        main = f"<div class='title-pending'>✍️ The title is being written…{wait}</div>"
    else:
        main = (f"<div class='gen-title'>“{html.escape(out.get('title') or '')}”</div>"
                + _badge_line(out, input_lang))
    seed = out.get("encoder_decoder")
    if seed:
        body = (f"⚠️ {html.escape(seed['error'])}" if seed.get("error") else
                f"“{html.escape(seed.get('title') or '')}” " + _badge_line(seed, input_lang, short=True))
        main += ("<div class='seed-title'><span class='seed-label'>the question's setup: encoder-decoder from the "
                 f"encoder</span><br>{body}</div>")
    return main


def _badge_line(t: dict, input_lang: str, short: bool = False) -> str:
    badge = t.get("title_badge") or "unknown"
    icon, words = BADGES.get(badge, BADGES["unknown"])
    lang = html.escape(language_name(t.get("title_language", "unknown")))
    if short:
        return f"<span class='badge badge-small badge-{html.escape(badge)}' title='{words}'>{icon} {lang}</span>"
    detail = f"title language: <b>{lang}</b>"
    if badge == "accidental_translation":
        detail += f" (the review is {html.escape(language_name(input_lang))})"
    return (f"<div class='badge badge-{html.escape(badge)}'>{icon} {words}</div>"
            f"<div class='title-lang'>{detail}</div>")


def status_text(res: dict) -> str:
    parts = []
    if res.get("message"):
        parts.append(f"Warning: {res['message']}")
    if res.get("language_note"):
        parts.append(f"Note: {res['language_note']}")
    if any(m.get("title", "") is None for m in (res.get("models") or {}).values()):
        parts.append(f"Rated in {res.get('elapsed_ms', 0):.0f} ms ({res.get('n_tokens', 0)} tokens); "
                     "the titles are being written.")
    elif res.get("models"):
        parts.append(f"Compared in {res.get('elapsed_ms', 0):.0f} ms ({res.get('n_tokens', 0)} tokens).")
    return "  \n".join(html.escape(p) for p in parts)


def build_demo(compare_fn=None, rate_fn=None) -> gr.Blocks:
    """Build the page. `compare_fn(text, language) -> dict` and `rate_fn(text, language) -> dict` (step one: the
    same answer without the main titles) default to core's contract (loaded lazily)."""
    if compare_fn is None:
        from core.service import compare_dict as compare_fn  # noqa: N813
    if rate_fn is None:
        from core.service import rate_dict as rate_fn  # noqa: N813

    def on_rate(text, language):
        """Step one: ratings, language, seed titles, map point, at once. `asked` keeps what was sent, so the
        later steps answer this review even if the textbox is edited meanwhile."""
        return rate_fn(text, language), {"text": text, "language": language}

    def on_titles(asked):
        """Step two: the whole answer, the ratings from the answer cache and the main titles written now."""
        if not asked or not str(asked.get("text") or "").strip():
            return gr.skip()
        return compare_fn(asked["text"], asked["language"])

    def on_english_only(asked, on):
        """The optional third column, run after the ratings (the public `compare` API is unchanged)."""
        from core.service import english_only_dict

        text = (asked or {}).get("text")
        if not on or not str(text or "").strip():
            return "", "", None
        m = english_only_dict(text)
        return stars_line(m), (f"⚠️ {html.escape(m['error'])}" if m.get("error") else ""), star_bars(m)

    def on_zero_shot(asked, on):
        """The optional zero-shot column, run after the ratings (the public `compare` API is unchanged)."""
        from core.service import zero_shot_dict

        text, language = (asked or {}).get("text"), (asked or {}).get("language")
        if not on or not str(text or "").strip():
            return "", "", ""
        m = zero_shot_dict(text, language)
        if m.get("error"):
            return "", f"<div class='title-error'>⚠️ {html.escape(m['error'])}</div>", ""
        lang = language if language not in (None, "", "auto") else None
        return stars_line(m), title_html(m, lang or m.get("title_language", "unknown")), star_bars(m)

    def render(res: dict):
        res = res or {}
        lang = res.get("language", "unknown")
        label = {language_name(k): v for k, v in (res.get("language_probs") or {}).items()}
        outs = [label or None, f"**Detected language:** {html.escape(language_name(lang))}"
                + (" (set by you)" if res.get("language_source") == "override" else ""), status_text(res)]
        for key, _ in COLUMNS:
            m = (res.get("models") or {}).get(key) or {}
            outs += [stars_line(m), title_html(m, lang, res.get("titles_ahead")), star_bars(m)]
        return outs

    # delete_cache: uploads and the Batch tab's downloads leave Gradio's cache after an hour (and at shutdown)
    with gr.Blocks(title="Cross-lingual Review Lab", delete_cache=(600, 3600)) as demo:
        gr.Markdown("# Cross-lingual Review Lab\nTrain on English reviews only: does it work on German? "
                    "Paste a review in any language and compare two models of the same multilingual base.")
        with gr.Accordion("What am I looking at?", open=False):
            gr.Markdown(EXPLANATION)
        with gr.Tabs():
            with gr.Tab("Compare", id="compare"):
                with gr.Row():
                    text = gr.Textbox(label="Review", lines=5, max_lines=12, elem_id="review-text",
                                      placeholder="Paste a product review in any language… (Shift+Enter compares)")
                    with gr.Column(scale=0, min_width=200):
                        language = gr.Dropdown(LANG_CHOICES, value="auto", label="Language", elem_id="language")
                        button = gr.Button("Compare", variant="primary", elem_id="compare-btn")
                        english_only = gr.Checkbox(False, label="Add an English-only model (MiniLM, rating only)",
                                                   elem_id="english-only")
                        zero_shot = gr.Checkbox(False, label="Add English titles only + a remedy (zero-shot titles)",
                                                elem_id="zero-shot")
                status = gr.Markdown(elem_id="status")
                with gr.Row():
                    detected_md = gr.Markdown(elem_id="detected")
                    detected = gr.Label(label="Language probabilities", num_top_classes=3, elem_id="lang-probs")
                cols = []
                with gr.Row(equal_height=True):
                    for key, heading in COLUMNS:
                        with gr.Column(elem_id=f"col-{key}"):
                            gr.Markdown(f"## {heading}")
                            stars = gr.Markdown(elem_id=f"stars-{key}")
                            title = gr.HTML(label="Generated title", elem_id=f"title-{key}")
                            probs = gr.HTML(label="Star probabilities", elem_id=f"probs-{key}")
                            cols += [stars, title, probs]
                    with gr.Column(visible=False, elem_id=f"col-{ENGLISH_ONLY}") as third:
                        gr.Markdown("## English-only base (MiniLM)\nThe same English recipe on all-MiniLM-L6-v2, "
                                    "whose vocabulary is English only. It rates; it writes no title.")
                        stars = gr.Markdown(elem_id=f"stars-{ENGLISH_ONLY}")
                        note = gr.Markdown("Press **Compare** to add its rating.", elem_id=f"note-{ENGLISH_ONLY}")
                        probs = gr.HTML(label="Star probabilities", elem_id=f"probs-{ENGLISH_ONLY}")
                        third_outs = [stars, note, probs]
                    with gr.Column(visible=False, elem_id=f"col-{ZERO_SHOT}") as fourth:
                        gr.Markdown("## English titles only + a remedy\nThe title adapter chosen on German dev among "
                                    "remedies trained with **zero German titles** (Evidence tab: the ablation). "
                                    "Its rating is the English-only model's.")
                        stars = gr.Markdown(elem_id=f"stars-{ZERO_SHOT}")
                        title = gr.HTML(label="Generated title", elem_id=f"title-{ZERO_SHOT}")
                        probs = gr.HTML(label="Star probabilities", elem_id=f"probs-{ZERO_SHOT}")
                        fourth_outs = [stars, title, probs]
                with gr.Accordion("Why? Where each model puts this review, and how each base splits it into pieces",
                                  open=False, elem_id="why"):
                    the_map = load_map()
                    gr.Markdown(map_intro(the_map), elem_id="map-intro")
                    with gr.Row():
                        maps = [gr.ScatterPlot(map_frame(key, m=the_map), x="x", y="y", color="group",
                                               color_map=COLORS, colors_in_legend=GROUPS, color_title="",
                                               tooltip=["review"],
                                               title=heading, x_title=axis_title(the_map, key, 0),
                                               y_title=axis_title(the_map, key, 1), height=380,
                                               visible=the_map is not None, elem_id=f"map-{key}")
                                for key, heading in COLUMNS]
                    gr.Markdown(neighbour_note(the_map), elem_id="map-neighbours")
                    gr.Markdown("A multilingual vocabulary has whole pieces for German words; an English-only "
                                "vocabulary shatters them into fragments (or `[UNK]` for scripts it lacks), so an "
                                "English-only model has nothing familiar to transfer from.")
                    tok_stats = gr.Markdown(elem_id="token-stats")
                    tok_multi = gr.HighlightedText(label="multilingual base", elem_id="tokens-multi",
                                                   show_legend=False, combine_adjacent=False)
                    tok_en = gr.HighlightedText(label="English-only base", elem_id="tokens-en",
                                                show_legend=False, combine_adjacent=False)
                with gr.Accordion("Raw result (JSON, same as `python -m core predict`)", open=False):
                    raw = gr.JSON(elem_id="raw-json")
                # An example fills the box and runs the same two steps as the button (below); its answers stay in
                # the answer cache (app.py), so a second click is instant.
                examples = gr.Examples([[e["text"], "auto"] for e in EXAMPLES], inputs=[text, language],
                                       label="Examples (11 languages): click one to compare", examples_per_page=14)
            with gr.Tab("Batch", id="batch"):
                batch_tab()
            with gr.Tab("Evidence", id="evidence"):
                evidence_tab()

        outputs = [detected, detected_md, status] + cols
        asked = gr.State(None)  # the text and language this comparison was asked for
        # Step one at once (the encoder: ~0.1 s); step two, the main titles (~1 s each), then fills the same
        # columns. Ratings and titles queue apart, so a rating never waits behind titles. As many titles run at
        # once as the generator decodes side by side (core/titles/decode_room.py).
        titles_at_once = max(1, current().title_batch)
        step_one = dict(fn=on_rate, inputs=[text, language], outputs=[raw, asked], concurrency_limit=4,
                        concurrency_id="ratings")
        starts = (button.click(**step_one, api_name="rate"), text.submit(**step_one, api_visibility="private"),
                  examples.load_input_event.then(**step_one, api_visibility="private"))
        for ev in starts:
            ev.then(on_titles, asked, raw, api_visibility="private", concurrency_limit=titles_at_once,
                    concurrency_id="titles",
                    show_progress="hidden")
            ev.then(on_english_only, [asked, english_only], third_outs, api_visibility="private",
                    concurrency_limit=4, concurrency_id="ratings")
            ev.then(on_zero_shot, [asked, zero_shot], fourth_outs, api_visibility="private",
                    concurrency_limit=titles_at_once, concurrency_id="titles")
        gr.api(on_compare_api(compare_fn), api_name="compare", concurrency_limit=titles_at_once,
               concurrency_id="titles")
        english_only.change(lambda on: gr.Column(visible=bool(on)), english_only, third, api_visibility="private",
                            queue=False)
        zero_shot.change(lambda on: gr.Column(visible=bool(on)), zero_shot, fourth, api_visibility="private",
                         queue=False)
        raw.change(render, raw, outputs, api_visibility="private", queue=False)
        raw.change(map_view, raw, maps, api_visibility="private", queue=False)
        raw.change(lambda a: token_view((a or {}).get("text")), asked, [tok_stats, tok_multi, tok_en],
                   api_visibility="private", queue=False)  # the text that was compared, not what the box says now
    return demo


def on_compare_api(compare_fn):
    """`/compare` for API clients: the whole answer in one call, as before the page had two steps."""
    def compare(text: str, language: str = "auto") -> dict:
        """Both models' ratings and titles for one review (JSON contract: README, "API")."""
        return compare_fn(text, language)
    return compare


def map_intro(m: dict | None) -> str:
    """What the two maps show."""
    if m is None:
        return "No map has been built yet: run `python -m core explain --build`."
    return (f"Each dot is one of {len(m['reviews']['ids'])} shipped reviews in English and German (1–2 stars "
            "negative, 4–5 positive), placed where the model's rating head sees it: its 384-number summary of the "
            "review, squeezed to two dimensions (PCA, one per model; hover a dot to read the review). "
            f"**Your review** is the magenta ring (*{YOUR_REVIEW}* in the legend). Where English and German reviews "
            "of the same polarity share a region, what the head learnt from English applies to German.")


NEIGHBOUR_LABELS = {EN_TRAINED: "with the model trained on English only", DE_FINETUNED: "after German fine-tuning",
                    ENGLISH_ONLY: "with the English-only base (MiniLM)"}


def neighbour_note(m: dict | None) -> str:
    """The number that says the same as the picture, measured in all 384 dimensions instead of the squeezed two."""
    if m is None:
        return ""
    blocks = {**m["models"], **m.get("contrast", {})}
    n = next(iter(blocks.values()))["neighbours"]
    parts = []
    for key, b in blocks.items():
        nb = b["neighbours"]
        held = (f" ({100 * nb['held_out_share']:.0f}% of the {nb['held_out_n']} it was not fine-tuned on)"
                if key == DE_FINETUNED and nb.get("held_out_share") is not None else "")
        parts.append(f"**{100 * nb['share']:.0f}%** {NEIGHBOUR_LABELS.get(key, key)}{held}")
    return (f"**Without the squeeze:** for each of the {n['n']} German reviews, do most of its {n['k']} nearest "
            "English reviews (cosine, all 384 dimensions) have its polarity? Yes for " + ", ".join(parts)
            + ". Half would be chance.")


def axis_title(m: dict | None, key: str, i: int) -> str:
    if not m or key not in m["models"]:
        return ""
    return f"PC{i + 1} ({100 * m['models'][key]['explained_variance_ratio'][i]:.0f}% of the variance)"


def map_view(res: dict):
    """Both maps with the visitor's review as a ring (the Engine already projected it: no model work here)."""
    the_map = load_map()
    if the_map is None:
        return [None] * len(COLUMNS)
    models = (res or {}).get("models") or {}
    return [map_frame(key, (models.get(key) or {}).get("map_xy"), m=the_map) for key, _ in COLUMNS]


def token_view(text: str):
    """Pieces from both tokenizers as alternating highlights, plus their counts."""
    from core.tokens import token_views

    if not (text or "").strip():
        return "", None, None
    views = token_views(text)
    rows = ["| base | pieces | pieces per word | unknown | single letters |", "|---|---|---|---|---|"]
    rows += [f"| {v.base} | {v.n_pieces} | {v.pieces_per_word} | {100 * v.unknown_share:.0f}% | "
             f"{100 * v.single_char_share:.0f}% |" for v in views]
    spans = [[(p, "a" if i % 2 else "b") for i, p in enumerate(v.pieces)] for v in views]
    return "\n".join(rows), spans[0], spans[1]


CSS = """
.gen-title {font-size: 1.25em; font-weight: 600; margin: .4em 0;}
.badge {display: inline-block; padding: .15em .6em; border-radius: 1em; background: #eef; margin-bottom: .3em;}
.badge-accidental_translation {background: #ffe3c2;} .badge-copied {background: #fff4b3;}
.badge-seen_in_training {background: #f3d9ff;} .badge-same_language {background: #d7f5dd;}
.title-lang {color: #555; font-size: .9em;} .title-error {color: #b00020;}
.title-pending {color: #666; font-style: italic; margin: .4em 0;}
.seed-title {margin-top: .6em; padding-top: .4em; border-top: 1px dashed #ccc; font-size: .92em; color: #333;}
.seed-label {font-size: .8em; color: #777;} .badge-small {font-size: .8em; padding: .05em .5em;}
.star-probs {margin-top: .3em;} .star-row {display: flex; align-items: center; gap: .5em; font-size: .9em;}
.star-name {width: 2.6em;} .star-p {width: 3em; text-align: right; color: #555;}
.star-bar {flex: 1; background: #eee; height: .8em; border-radius: .4em; overflow: hidden;}
.star-bar span {display: block; height: 100%; background: #4C78A8;}
"""
