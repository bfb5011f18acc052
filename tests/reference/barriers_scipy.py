"""Reference figures of the barrier analysis (issue 14, item 2) from SciPy.

An independent implementation of analytics/src/barriers.rs on the fixed
dataset of its test `scipy_reference_values` (and of tests/tests/barriers.rs's
imported responses): Wilson intervals from scipy.stats.binomtest, the §2
two-proportion test (pooled z with scipy.stats.norm; Fisher's exact test,
one-sided "greater", when an expected count is below 5) and
Benjamini-Hochberg q-values from scipy.stats.false_discovery_control.

Run: pip install scipy && python3 tests/reference/barriers_scipy.py
Prints one line per barrier; the Rust test holds the printed values.
"""
import math

import scipy
from scipy import stats

# (question, option, non-buyers count, non-buyers answered, buyers count, buyers answered)
# buyers None: no buyer questionnaire asks the question.
DATASET = [
    ("why_not", "price", 45, 120, 20, 150),
    ("why_not", "location", 30, 120, 28, 150),
    ("why_not", "trust", 6, 120, 1, 150),
    ("why_not", "timing", 12, 120, 18, 150),
    ("main_reason", "price", 3, 10, 1, 12),
    ("main_reason", "parking", 4, 10, None, None),
]
Z = 1.959963984540054


def needs_exact(x1, n1, x2, n2):
    p = (x1 + x2) / (n1 + n2)
    return any(e < 5 for e in (n1 * p, n1 * (1 - p), n2 * p, n2 * (1 - p)))


def main():
    print(f"# scipy {scipy.__version__}")
    rows = []
    for q, o, x1, n1, x2, n2 in DATASET:
        lo1, hi1 = stats.binomtest(x1, n1).proportion_ci(method="wilson")
        row = {"question": q, "o": o, "nb": (lo1, hi1), "b": None, "p": None, "test": None}
        if x2 is not None:
            lo2, hi2 = stats.binomtest(x2, n2).proportion_ci(method="wilson")
            row["b"] = (lo2, hi2)
            p1, p2 = x1 / n1, x2 / n2
            if needs_exact(x1, n1, x2, n2):
                _, pv = stats.fisher_exact([[x1, n1 - x1], [x2, n2 - x2]], alternative="greater")
                row["test"] = "fisher_exact"
            else:
                p = (x1 + x2) / (n1 + n2)
                z = (p1 - p2) / math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
                pv = stats.norm.sf(z)
                row["test"] = "two_proportion_z"
            se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
            row["diff"] = (p1 - p2, p1 - p2 - Z * se, p1 - p2 + Z * se)
            row["p"] = pv
            row["explained"] = max(0.0, x1 - n1 * p2)
        else:
            row["explained"] = float(x1)
        rows.append(row)
    tested = [r for r in rows if r["p"] is not None]
    qs = stats.false_discovery_control([r["p"] for r in tested], method="bh")
    for r, qv in zip(tested, qs):
        r["qv"] = float(qv)
    for r in rows:
        print(f'{r["question"]}/{r["o"]}: nb_ci=({float(r["nb"][0])!r}, {float(r["nb"][1])!r}) explained={r["explained"]!r}')
        if r["b"] is not None:
            print(f'  b_ci=({float(r["b"][0])!r}, {float(r["b"][1])!r}) test={r["test"]}')
            print(f'  diff={r["diff"][0]!r} ci=({r["diff"][1]!r}, {r["diff"][2]!r})')
            print(f'  p={float(r["p"])!r} q={r["qv"]!r}')


if __name__ == "__main__":
    main()
