"""Lesson 02's bug zoo: student cells for Scaler and normalize_splits, correct ones and typical mistakes.

Each entry is the source of one exercise cell: tests/test_zoos.py runs it through the lesson's real
grade cells in a kernel, and tests/test_rechecks.py through the grader's re-check; tests/test_lesson02_checks.py
runs the visible checks on it directly, on several sizes. A buggy entry names the diagnosis code
(course_utils.checks.lesson02) its failure message must carry first.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from textwrap import dedent

from tests.zoos import Zoo, mutate, variant


SCALER = dedent('''
    class Scaler:
        """Per-feature scaling of (samples, features) tensors: fitted on one set, applied to any other."""

        def __init__(self, method="minmax"):
            self.method = method
            self.shift = None
            self.scale = None

        def fit(self, x):
            low, high = x.amin(dim=0), x.amax(dim=0)
            if self.method == "minmax":
                shift, spread = low, high - low
            else:
                shift, spread = x.mean(dim=0), x.std(dim=0, unbiased=False)
            self.shift = shift
            self.scale = torch.where(high > low, spread, torch.ones_like(spread))
            return self

        def transform(self, x):
            return (x - self.shift) / self.scale

        def inverse_transform(self, x):
            return x * self.scale + self.shift
''').strip()

SPLITS = dedent('''
    def normalize_splits(train, valid, method="standard"):
        scaler = Scaler(method).fit(train)
        return scaler.transform(train), scaler.transform(valid), scaler
''').strip()


ex1 = partial(variant, "ex1-tests")
ex2 = partial(variant, "ex2-tests")


BROKEN_SCALER = mutate(SCALER, "return (x - self.shift) / self.scale",
                       "x -= self.shift\n        x /= self.scale\n        return x")

CORRECT = [
    ex1("canonical", SCALER),
    ex1("keepdim-masked-fill", '''
        class Scaler:
            def __init__(self, method="minmax"):
                self.method = method

            def fit(self, x):
                if self.method == "standard":
                    self.shift = x.mean(dim=0, keepdim=True)
                    spread = x.std(dim=0, correction=0, keepdim=True)
                else:
                    self.shift = x.min(dim=0, keepdim=True).values
                    spread = x.max(dim=0, keepdim=True).values - self.shift
                constant = x.amax(dim=0, keepdim=True) == x.amin(dim=0, keepdim=True)
                self.scale = spread.masked_fill(constant, 1.0)
                return self

            def transform(self, x):
                return (x - self.shift) / self.scale

            def inverse_transform(self, x_scaled):
                return x_scaled * self.scale + self.shift
    '''),
    ex1("sklearn-style-attributes", '''
        class Scaler:
            def __init__(self, method="minmax"):
                self.method = method
                self.stats_ = {}

            def fit(self, x):
                if self.method == "minmax":
                    lo = x.min(dim=0).values
                    rng = x.max(dim=0).values - lo
                    self.stats_ = {"shift": lo, "scale": rng}
                elif self.method == "standard":
                    mu = x.mean(0)
                    sigma = ((x - mu) ** 2).mean(0).sqrt()
                    self.stats_ = {"shift": mu, "scale": sigma}
                scale = self.stats_["scale"].clone()
                scale[x.max(dim=0).values == x.min(dim=0).values] = 1.0
                self.stats_["scale"] = scale
                return self

            def transform(self, x):
                out = x.clone()
                out.sub_(self.stats_["shift"]).div_(self.stats_["scale"])
                return out

            def inverse_transform(self, x):
                return x.mul(self.stats_["scale"]).add(self.stats_["shift"])
    '''),
    ex2("canonical", SPLITS),
    ex2("step-by-step", '''
        def normalize_splits(train, valid, method="standard"):
            scaler = Scaler(method)
            scaler.fit(train)
            train_scaled = scaler.transform(train)
            valid_scaled = scaler.transform(valid)
            return (train_scaled, valid_scaled, scaler)
    '''),
    ex2("keyword-method-and-list-comprehension", '''
        def normalize_splits(train, valid, method="standard"):
            fitted = Scaler(method=method).fit(train)
            train_scaled, valid_scaled = [fitted.transform(split) for split in (train, valid)]
            return train_scaled, valid_scaled, fitted
    '''),
    # Exercise 2 earns its points on its own: a broken Scaler (Exercise 1) does not cost them.
    ex2("correct-with-a-broken-scaler", BROKEN_SCALER + "\n\n\n" + SPLITS),
    ex1("tuple-of-statistics-and-addcmul", '''
        class Scaler:
            def __init__(self, method="minmax"):
                self.method = method
                self.params = None

            def fit(self, x):
                if self.method == "minmax":
                    shift = x.min(0).values
                    spread = x.max(0).values - shift
                else:
                    shift = x.mean(0)
                    spread = x.var(0, unbiased=False).sqrt()
                constant = x.max(0).values == x.min(0).values
                self.params = (shift, torch.where(constant, 1.0, spread))
                return self

            def transform(self, x):
                shift, scale = self.params
                return (x - shift) / scale

            def inverse_transform(self, x):
                shift, scale = self.params
                return torch.addcmul(shift, x, scale)
    '''),
]

BUGGY = [
    # Exercise 1 · Scaler
    ex1("inplace-transform", BROKEN_SCALER, "scaler-inplace"),
    ex1("inplace-inverse", mutate(SCALER, "return x * self.scale + self.shift",
                                  "x *= self.scale\n        x += self.shift\n        return x"), "scaler-inplace"),
    ex1("dim1-keepdim", mutate(mutate(mutate(SCALER, "x.amin(dim=0), x.amax(dim=0)",
                                             "x.amin(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)"),
                                      "x.mean(dim=0)", "x.mean(dim=1, keepdim=True)"),
                               "x.std(dim=0, unbiased=False)", "x.std(dim=1, keepdim=True, unbiased=False)"),
        "scaler-dim1"),
    ex1("dim1", mutate(mutate(mutate(SCALER, "x.amin(dim=0), x.amax(dim=0)", "x.amin(dim=1), x.amax(dim=1)"),
                              "x.mean(dim=0)", "x.mean(dim=1)"), "x.std(dim=0, unbiased=False)",
                       "x.std(dim=1, unbiased=False)"), "scaler-dim1"),
    ex1("global-min-max", mutate(mutate(mutate(SCALER, "x.amin(dim=0), x.amax(dim=0)", "x.min(), x.max()"),
                                        "x.mean(dim=0)", "x.mean()"), "x.std(dim=0, unbiased=False)",
                                 "x.std(unbiased=False)"), "scaler-global-stats"),
    ex1("unbiased-std", mutate(SCALER, "x.std(dim=0, unbiased=False)", "x.std(dim=0)"), "scaler-unbiased-std"),
    ex1("refits-in-transform", mutate(SCALER, "return (x - self.shift) / self.scale",
                                      "self.fit(x)\n        return (x - self.shift) / self.scale"),
        "scaler-refits-in-transform"),
    ex1("no-constant-handling", mutate(SCALER, "torch.where(high > low, spread, torch.ones_like(spread))", "spread"),
        "scaler-constant-nan"),
    # issue 17: a constant found with std == 0 misses constants whose computed std is a rounding error (0.3)
    ex1("std-zero-test", mutate(SCALER, "torch.where(high > low, spread, torch.ones_like(spread))",
                                "torch.where(x.std(dim=0) == 0, torch.ones_like(spread), spread)"),
        "scaler-constant-std-test"),
    ex1("spread-zero-test", mutate(SCALER, "torch.where(high > low, spread, torch.ones_like(spread))",
                                   "torch.where(spread == 0, torch.ones_like(spread), spread)"),
        "scaler-constant-std-test"),
    ex1("epsilon", mutate(SCALER, "torch.where(high > low, spread, torch.ones_like(spread))", "spread + 1e-8"),
        "scaler-epsilon"),
    ex1("nan-to-num", mutate(mutate(SCALER, "torch.where(high > low, spread, torch.ones_like(spread))", "spread"),
                             "return (x - self.shift) / self.scale",
                             "return torch.nan_to_num((x - self.shift) / self.scale)"), "scaler-inverse-constant"),
    ex1("inverse-raw-spread", mutate(mutate(SCALER, "self.shift = shift\n", "self.shift = shift\n        self.spread = spread\n"),
                                     "return x * self.scale + self.shift", "return x * self.spread + self.shift"),
        "scaler-inverse-constant"),
    ex1("inverse-wrong-order", mutate(SCALER, "return x * self.scale + self.shift",
                                      "return (x + self.shift) * self.scale"), "scaler-inverse-formula"),
    ex1("fit-returns-none", mutate(SCALER, "        return self\n", ""), "scaler-fit-return"),
    ex1("method-ignored", mutate(SCALER, 'if self.method == "minmax":', "if True:"), "scaler-method-ignored"),
    ex1("divides-by-max", mutate(SCALER, "shift, spread = low, high - low", "shift, spread = low, high"),
        "scaler-divides-by-max"),
    ex1("refit-ignored", mutate(SCALER, "low, high = x.amin(dim=0), x.amax(dim=0)",
                                "if self.shift is not None:\n            return self\n"
                                "        low, high = x.amin(dim=0), x.amax(dim=0)"), "scaler-refit-ignored"),
    ex1("float32-result", mutate(SCALER, "return (x - self.shift) / self.scale",
                                 "return ((x - self.shift) / self.scale).float()"), "scaler-dtype"),
    ex1("wraps-sklearn", '''
        from sklearn.preprocessing import MinMaxScaler, StandardScaler

        class Scaler:
            def __init__(self, method="minmax"):
                self.inner = MinMaxScaler() if method == "minmax" else StandardScaler()

            def fit(self, x):
                self.inner.fit(x.numpy())
                return self

            def transform(self, x):
                return torch.from_numpy(self.inner.transform(x.numpy())).to(x.dtype)

            def inverse_transform(self, x):
                return torch.from_numpy(self.inner.inverse_transform(x.numpy())).to(x.dtype)
    ''', "scaler-uses-sklearn"),
    # Exercise 2 · normalize_splits
    ex2("fit-on-valid", mutate(SPLITS, "Scaler(method).fit(train)", "Scaler(method).fit(valid)"),
        "splits-fit-on-valid"),
    ex2("fit-each-split", '''
        def normalize_splits(train, valid, method="standard"):
            scaler = Scaler(method).fit(train)
            train_scaled = scaler.transform(train)
            valid_scaled = Scaler(method).fit(valid).transform(valid)
            return train_scaled, valid_scaled, scaler
    ''', "splits-fit-each-split"),
    ex2("fit-on-all", mutate(SPLITS, "Scaler(method).fit(train)", "Scaler(method).fit(torch.cat([train, valid]))"),
        "splits-fit-on-all"),
    ex2("method-ignored", mutate(SPLITS, "Scaler(method)", 'Scaler("standard")'), "splits-method-ignored"),
    ex2("default-minmax", mutate(SPLITS, 'method="standard"', 'method="minmax"'), "splits-default-method"),
    ex2("returns-valid-first", mutate(SPLITS, "return scaler.transform(train), scaler.transform(valid), scaler",
                                      "return scaler.transform(valid), scaler.transform(train), scaler"),
        "splits-return-order"),
    ex2("returns-two", mutate(SPLITS, "scaler.transform(valid), scaler", "scaler.transform(valid)"), "splits-return"),
    ex2("returns-a-fresh-scaler", mutate(SPLITS, "scaler.transform(valid), scaler",
                                         "scaler.transform(valid), Scaler(method)"),
        "splits-scaler-not-fitted-on-train"),
    ex2("scales-in-place", '''
        def normalize_splits(train, valid, method="standard"):
            scaler = Scaler(method).fit(train)
            train[:] = scaler.transform(train)
            valid[:] = scaler.transform(valid)
            return train, valid, scaler
    ''', "splits-inplace"),
    ex2("uses-sklearn", '''
        from sklearn.preprocessing import MinMaxScaler, StandardScaler

        def normalize_splits(train, valid, method="standard"):
            scaler = (StandardScaler() if method == "standard" else MinMaxScaler()).fit(train.numpy())
            return (torch.from_numpy(scaler.transform(train.numpy())),
                    torch.from_numpy(scaler.transform(valid.numpy())), scaler)
    ''', "splits-uses-sklearn"),
    # Exercise 1 broken, and normalize_splits bound to the broken Scaler (a default argument):
    # the failure must say "Exercise 1 still fails" first.
    ex2("exercise1-still-fails", BROKEN_SCALER + "\n\n\n" + dedent('''
        def normalize_splits(train, valid, method="standard", scaler_class=Scaler):
            scaler = scaler_class(method).fit(train)
            return scaler.transform(train), scaler.transform(valid), scaler
    ''').strip(), "splits-exercise1-fails"),
]

# Mistakes that leave every value right: only the kernel's check sees that scikit-learn did the work.
SAME_VALUES = {"wraps-sklearn", "uses-sklearn"}
# What the grader's re-check says for some mistakes: the words a student needs to find the fix.
REFUTED_WITH = {"fit-on-valid": "fitted on train only"}

ZOO = Zoo("02_normalization",
          tuple(replace(entry, values_show=entry.name not in SAME_VALUES, refuted_with=REFUTED_WITH.get(entry.name, ""))
                for entry in CORRECT + BUGGY))
