"""Reference values for analytics/src/funnel/tests.rs (the §7 model).

Builds the test's labelled dataset with the same generator as the Rust test,
encodes it as analytics.md §7 says (one-hot of every categorical level seen,
none dropped, missing = no level; numeric attributes z-scored with the
population sd, missing = 0), fits scikit-learn's
LogisticRegression(C=1, penalty="l2", fit_intercept=True) to convergence and
prints the intercept and the coefficients in the features' order (keys
sorted, levels sorted).

    python3 -m pip install scikit-learn numpy
    python3 scripts/logreg_reference.py
"""
import math

import numpy as np
from sklearn.linear_model import LogisticRegression

MASK = (1 << 64) - 1


class Lcg:
    def __init__(self, seed):
        self.s = seed & MASK

    def next(self):
        self.s = (self.s * 6364136223846793005 + 1442695040888963407) & MASK
        return (self.s >> 11) / float(1 << 53)


def dataset(n=400, seed=7):
    rng = Lcg(seed)
    plans = ["basic", "pro", "team"]
    sources = ["ads", "blog", "event", "referral"]
    rows = []
    for _ in range(n):
        a = {}
        u = rng.next()
        if u < 0.9:
            a["plan"] = plans[int(rng.next() * 3)]
        a["source"] = sources[int(rng.next() * 4)]
        if rng.next() < 0.8:
            a["visits"] = float(int(rng.next() * 30))
        a["age"] = float(18 + int(rng.next() * 50))
        a["vip"] = rng.next() < 0.2
        z = -1.0
        z += {"basic": -0.5, "pro": 0.7, "team": 1.2}.get(a.get("plan"), 0.0)
        z += {"ads": -0.3, "blog": 0.2, "event": 0.5, "referral": 0.9}[a["source"]]
        z += 0.08 * (a.get("visits", 10.0) - 10.0)
        z += -0.02 * (a["age"] - 40.0)
        z += 0.8 if a["vip"] else 0.0
        y = rng.next() < 1.0 / (1.0 + math.exp(-z))
        rows.append((a, y))
    return rows


def text(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def encode(rows):
    keys = sorted({k for a, _ in rows for k in a})
    cols = []
    for k in keys:
        vals = [a[k] for a, _ in rows if k in a]
        if all(isinstance(v, float) for v in vals):
            mean = sum(vals) / len(vals)
            sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))
            if sd > 0:
                cols.append(("num", k, mean, sd))
        else:
            for level in sorted({text(v) for v in vals}):
                cols.append(("lvl", k, level))
    x = np.zeros((len(rows), len(cols)))
    for i, (a, _) in enumerate(rows):
        for j, c in enumerate(cols):
            if c[1] not in a:
                continue
            if c[0] == "num":
                x[i, j] = (a[c[1]] - c[2]) / c[3]
            else:
                x[i, j] = 1.0 if text(a[c[1]]) == c[2] else 0.0
    names = [f"{c[1]}={c[2]}" if c[0] == "lvl" else c[1] for c in cols]
    return names, x, np.array([1 if y else 0 for _, y in rows])


def main():
    rows = dataset()
    names, x, y = encode(rows)
    m = LogisticRegression(C=1.0, penalty="l2", fit_intercept=True,  # noqa: the spec names penalty="l2"
                           solver="newton-cholesky", tol=1e-14, max_iter=1000)
    m.fit(x, y)
    b, w = m.intercept_[0], m.coef_[0]
    p = 1.0 / (1.0 + np.exp(-(b + x @ w)))
    grad = np.concatenate([[np.sum(p - y)], x.T @ (p - y) + w])
    print(f"positives {int(y.sum())} of {len(y)}; gradient norm {np.linalg.norm(grad):.1e}")
    print(f"intercept {m.intercept_[0]:.12f}")
    for n, w in zip(names, m.coef_[0]):
        print(f'("{n}", {w:.12f}),')


if __name__ == "__main__":
    main()
