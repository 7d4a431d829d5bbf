"""Metrics with the well-kept libraries: sklearn for classification, sacrebleu chrF, rouge-score ROUGE."""
from __future__ import annotations

import math
import re
import unicodedata

_WORD = re.compile(r"\w+", re.UNICODE)


class UnicodeTokenizer:
    """rouge-score's default tokenizer drops every non-ASCII letter ("Qualität" -> "qualit");
    this one keeps Unicode word characters, lower-cased."""

    def tokenize(self, text: str) -> list[str]:
        return _WORD.findall(unicodedata.normalize("NFKC", text or "").casefold())


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (sane at 0 and 1, unlike the normal approximation)."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (round(max(0.0, c - h), 4), round(min(1.0, c + h), 4))


def rate(flags: list[bool]) -> dict:
    """A share with its sample size and 95% interval."""
    n, k = len(flags), int(sum(flags))
    return {"rate": round(k / n, 4) if n else None, "n": n, "ci95": list(wilson(k, n)) if n else None}


def mean(values: list[float]) -> dict:
    """A mean with its sample size and 95% interval (normal approximation: the report's per-title shares and
    densities, over 40-300 titles)."""
    n = len(values)
    if not n:
        return {"mean": None, "n": 0, "ci95": None}
    m = sum(values) / n
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    h = 1.96 * sd / math.sqrt(n)
    return {"mean": round(m, 4), "n": n, "ci95": [round(m - h, 4), round(m + h, 4)]}


def classification(gold: list[str], pred: list[str]) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    if not gold:
        return {"accuracy": None, "macro_f1": None, "n": 0, "ci95": None}
    acc = accuracy_score(gold, pred)
    f1 = f1_score(gold, pred, average="macro", labels=sorted(set(gold) | set(pred)), zero_division=0)
    k = sum(g == p for g, p in zip(gold, pred))
    return {"accuracy": round(float(acc), 4), "macro_f1": round(float(f1), 4), "n": len(gold),
            "ci95": list(wilson(k, len(gold)))}


def stars(gold: list[int], pred: list[int]) -> dict:
    if not gold:
        return {"accuracy": None, "mae": None, "n": 0}
    acc = sum(g == p for g, p in zip(gold, pred)) / len(gold)
    mae = sum(abs(g - p) for g, p in zip(gold, pred)) / len(gold)
    return {"accuracy": round(acc, 4), "mae": round(mae, 4), "n": len(gold)}


def title_scores(refs: list[str], hyps: list[str]) -> dict:
    """Corpus chrF (sacrebleu) and mean ROUGE-1/ROUGE-L F (rouge-score, Unicode tokenizer)."""
    import sacrebleu
    from rouge_score import rouge_scorer

    if not refs:
        return {"chrf": None, "rouge1": None, "rougeL": None, "n": 0}
    chrf = sacrebleu.corpus_chrf(hyps, [refs]).score
    sc = rouge_scorer.RougeScorer(["rouge1", "rougeL"], tokenizer=UnicodeTokenizer())
    r1 = rl = 0.0
    for ref, hyp in zip(refs, hyps):
        s = sc.score(ref, hyp)
        r1 += s["rouge1"].fmeasure
        rl += s["rougeL"].fmeasure
    return {"chrf": round(chrf, 2), "rouge1": round(100 * r1 / len(refs), 2), "rougeL": round(100 * rl / len(refs), 2),
            "n": len(refs)}
