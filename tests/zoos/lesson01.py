"""Lesson 01's bug zoo: student cells for CourseDataset, make_loader and batch_sizes, correct and buggy.

Each entry is the source of one exercise cell: tests/test_zoos.py runs it through the lesson's real
grade cells in a kernel, and tests/test_rechecks.py through the grader's re-check; tests/test_lesson01_checks.py
runs the visible checks on it directly, on several seeds. A buggy entry names the diagnosis code
(course_utils.checks.lesson01) its failure message must carry first.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from textwrap import dedent

from tests.zoos import Zoo, mutate, variant


DATASET = dedent('''
    class CourseDataset(Dataset):
        """Pairs of (feature row, class label) over two tensors, checked when created."""

        def __init__(self, features, targets):
            for name, value in (("features", features), ("targets", targets)):
                if not isinstance(value, torch.Tensor):
                    raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
            if features.ndim != 2:
                raise ValueError(f"features must be 2-D, got shape {tuple(features.shape)}")
            if targets.ndim != 1:
                raise ValueError(f"targets must be 1-D, got shape {tuple(targets.shape)}")
            if not features.is_floating_point():
                raise TypeError(f"features must be floating point, got {features.dtype}")
            if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
                raise TypeError(f"targets must be integer class labels, got {targets.dtype}")
            if len(features) != len(targets):
                raise ValueError(f"{len(features)} feature rows but {len(targets)} targets")
            self.features = features
            self.targets = targets

        def __len__(self):
            return len(self.targets)

        def __getitem__(self, index):
            return self.features[index], self.targets[index]
''').strip()

LOADER = dedent('''
    def make_loader(dataset, batch_size, *, shuffle=True, drop_last=False, seed=None):
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, generator=generator)
''').strip()

SIZES = dedent('''
    def batch_sizes(n_samples, batch_size, drop_last=False):
        full, rest = divmod(n_samples, batch_size)
        return [batch_size] * full + ([rest] if rest and not drop_last else [])
''').strip()


ex1 = partial(variant, "ex1-tests")
ex2 = partial(variant, "ex2-tests")
ex3 = partial(variant, "ex3-tests")


CORRECT = [
    ex1("canonical", DATASET),
    ex1("checks-with-helpers-and-shape", '''
        class CourseDataset(Dataset):
            def __init__(self, features, targets):
                if not torch.is_tensor(features) or not torch.is_tensor(targets):
                    raise TypeError("features and targets must both be tensors")
                if features.dim() != 2 or targets.dim() != 1:
                    raise ValueError(f"expected 2-D features and 1-D targets, got {features.dim()} and {targets.dim()}")
                if features.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
                    raise TypeError(f"features must be floats, not {features.dtype}")
                if targets.dtype not in (torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64):
                    raise TypeError(f"targets must be integers, not {targets.dtype}")
                if features.shape[0] != targets.shape[0]:
                    raise ValueError("features and targets need the same number of samples")
                self.x, self.y = features, targets

            def __len__(self):
                return self.x.shape[0]

            def __getitem__(self, i):
                return (self.x[i], self.y[i])
    '''),
    ex1("stores-a-tuple-and-int-label", '''
        class CourseDataset(Dataset):
            def __init__(self, features, targets):
                if not (isinstance(features, torch.Tensor) and isinstance(targets, torch.Tensor)):
                    raise TypeError("please pass tensors")
                if len(features.shape) != 2:
                    raise ValueError("features: need (samples, features)")
                if len(targets.shape) != 1:
                    raise ValueError("targets: need (samples,)")
                if not torch.is_floating_point(features):
                    raise TypeError("features must be a float tensor")
                if torch.is_floating_point(targets):
                    raise TypeError("targets must be an integer tensor")
                if features.size(0) != targets.size(0):
                    raise ValueError("different numbers of samples")
                self.data = (features, targets)

            def __len__(self):
                return len(self.data[1])

            def __getitem__(self, i):
                x, y = self.data
                return x[i], int(y[i])
    '''),
    ex2("canonical", LOADER),
    ex2("keyword-dict", '''
        def make_loader(dataset, batch_size, *, shuffle=True, drop_last=False, seed=None):
            options = dict(batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
            if seed is not None:
                options["generator"] = torch.Generator().manual_seed(seed)
            return DataLoader(dataset, **options)
    '''),
    ex2("generator-then-seed", '''
        def make_loader(dataset, batch_size, *, shuffle=True, drop_last=False, seed=None):
            generator = None
            if seed is not None:
                generator = torch.Generator()
                generator.manual_seed(seed)
            loader = DataLoader(dataset, batch_size, shuffle, generator=generator, drop_last=drop_last)
            return loader
    '''),
    ex3("canonical", SIZES),
    ex3("loop", '''
        def batch_sizes(n_samples, batch_size, drop_last=False):
            sizes = []
            start = 0
            while start < n_samples:
                size = min(batch_size, n_samples - start)
                if size == batch_size or not drop_last:
                    sizes.append(size)
                start += batch_size
            return sizes
    '''),
    ex3("range-comprehension", '''
        def batch_sizes(n_samples, batch_size, drop_last=False):
            sizes = [min(batch_size, n_samples - start) for start in range(0, n_samples, batch_size)]
            if drop_last and sizes and sizes[-1] < batch_size:
                sizes.pop()
            return sizes
    '''),
    ex3("ceil-division", '''
        import math

        def batch_sizes(n_samples, batch_size, drop_last=False):
            count = n_samples // batch_size if drop_last else math.ceil(n_samples / batch_size)
            return [min(batch_size, n_samples - i * batch_size) for i in range(count)]
    '''),
]

BUGGY = [
    # Exercise 1 · CourseDataset
    ex1("wraps-tensordataset", '''
        class CourseDataset(TensorDataset):
            def __init__(self, features, targets):
                if not isinstance(features, torch.Tensor) or not isinstance(targets, torch.Tensor):
                    raise TypeError("tensors please")
                if features.ndim != 2 or targets.ndim != 1:
                    raise ValueError("features 2-D, targets 1-D")
                if not features.is_floating_point() or targets.is_floating_point():
                    raise TypeError("float features, integer targets")
                if len(features) != len(targets):
                    raise ValueError("same length please")
                super().__init__(features, targets)
    ''', "dataset-wraps-tensordataset"),
    ex1("len-hard-coded", mutate(DATASET, "return len(self.targets)", "return 1000"), "dataset-len-hard-coded"),
    ex1("len-counts-features", mutate(DATASET, "return len(self.targets)", "return self.features.shape[1]"),
        "dataset-len-counts-features"),
    ex1("item-swapped", mutate(DATASET, "return self.features[index], self.targets[index]",
                               "return self.targets[index], self.features[index]"), "dataset-item-swapped"),
    ex1("item-column", mutate(DATASET, "return self.features[index], self.targets[index]",
                              "return self.features[:, index], self.targets[index]"), "dataset-item-column"),
    ex1("item-global-features", mutate(DATASET, "return self.features[index], self.targets[index]",
                                       "return features[index, :self.features.shape[1]], self.targets[index]"),
        "dataset-item-ignores-data"),
    # Class labels turned into floats: CrossEntropyLoss then fails with "expected scalar type Long but found
    # Float" (e.g. burlachenkok/flpytorch#14, torchgeo/terratorch#644).
    ex1("float-label", mutate(DATASET, "return self.features[index], self.targets[index]",
                              "return self.features[index], self.targets[index].float()"),
        "dataset-item-float-target"),
    ex1("python-float-label", mutate(DATASET, "return self.features[index], self.targets[index]",
                                     "return self.features[index], float(self.targets[index])"),
        "dataset-item-float-target"),
    ex1("one-based-index", mutate(DATASET, "return self.features[index], self.targets[index]",
                                  "return self.features[index + 1], self.targets[index + 1]"),
        "dataset-item-off-by-one"),
    ex1("no-length-check", mutate(DATASET, "raise ValueError(f\"{len(features)} feature rows but {len(targets)} targets\")",
                                  "pass"), "dataset-accepts-length-mismatch"),
    ex1("float-targets-accepted", mutate(DATASET, "if targets.is_floating_point() or targets.is_complex() or "
                                         "targets.dtype == torch.bool:", "if targets.dtype == torch.bool:"),
        "dataset-accepts-float-targets"),
    ex1("int-features-cast", mutate(DATASET, '''        if not features.is_floating_point():
            raise TypeError(f"features must be floating point, got {features.dtype}")''',
                                    '''        features = features.float()'''), "dataset-item-features-converted"),
    ex1("no-rank-check", mutate(mutate(DATASET, "if features.ndim != 2:", "if False:"), "if targets.ndim != 1:",
                                "if False:"), "dataset-accepts-wrong-rank"),
    ex1("no-isinstance-check", mutate(DATASET, "if not isinstance(value, torch.Tensor):", "if value is None:"),
        "dataset-wrong-error-type"),
    ex1("value-error-for-dtype", mutate(DATASET, 'raise TypeError(f"targets must be integer class labels',
                                        'raise ValueError(f"targets must be integer class labels'),
        "dataset-wrong-error-type"),
    ex1("error-without-message", mutate(DATASET, 'raise ValueError(f"{len(features)} feature rows but {len(targets)} targets")',
                                        "raise ValueError"), "dataset-no-error-message"),
    ex1("rejects-float64", mutate(DATASET, "if not features.is_floating_point():",
                                  "if features.dtype != torch.float32:"), "dataset-crashed"),
    # Exercise 2 · make_loader
    ex2("ignores-seed-shuffle-drop-last", '''
        def make_loader(dataset, batch_size, *, shuffle=True, drop_last=False, seed=None):
            return DataLoader(dataset, batch_size=batch_size, shuffle=True)
    ''', "loader-drop-last-ignored"),
    ex2("ignores-seed", mutate(LOADER, "generator=generator)", "generator=None)"), "loader-seed-ignored"),
    ex2("ignores-shuffle", mutate(LOADER, "shuffle=shuffle", "shuffle=True"), "loader-shuffle-ignored"),
    ex2("forgets-shuffle", mutate(LOADER, "shuffle=shuffle, ", ""), "loader-never-shuffles"),
    ex2("ignores-drop-last", mutate(LOADER, ", drop_last=drop_last", ""), "loader-drop-last-ignored"),
    ex2("always-drops-last", mutate(LOADER, "drop_last=drop_last", "drop_last=True"), "loader-always-drops-last"),
    ex2("batch-size-hard-coded", mutate(LOADER, "batch_size=batch_size", "batch_size=100"),
        "loader-batch-size-ignored"),
    ex2("fixed-seed", mutate(LOADER, "manual_seed(seed)", "manual_seed(0)"), "loader-fixed-seed"),
    ex2("global-manual-seed", '''
        def make_loader(dataset, batch_size, *, shuffle=True, drop_last=False, seed=None):
            if seed is not None:
                torch.manual_seed(seed)
            return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
    ''', "loader-global-seed"),
    ex2("global-dataset", mutate(LOADER, "DataLoader(dataset,", "DataLoader(TensorDataset(features, targets),"),
        "loader-dataset-ignored"),
    ex2("fixed-permutation", '''
        def make_loader(dataset, batch_size, *, shuffle=True, drop_last=False, seed=None):
            generator = None if seed is None else torch.Generator().manual_seed(seed)
            if shuffle:
                order = torch.randperm(len(dataset), generator=generator).tolist()
                return DataLoader(dataset, batch_size=batch_size, sampler=order, drop_last=drop_last)
            return DataLoader(dataset, batch_size=batch_size, drop_last=drop_last)
    ''', "loader-same-order-every-epoch"),
    ex2("unseeded-fixed-generator", mutate(LOADER, "None if seed is None else torch.Generator().manual_seed(seed)",
                                           "torch.Generator().manual_seed(seed or 0)"), "loader-unseeded-not-global"),
    ex2("returns-batches", '''
        def make_loader(dataset, batch_size, *, shuffle=True, drop_last=False, seed=None):
            generator = None if seed is None else torch.Generator().manual_seed(seed)
            return list(DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                                   generator=generator))
    ''', "loader-not-a-dataloader"),
    # Exercise 3 · batch_sizes
    ex3("hard-coded", '''
        def batch_sizes(n_samples, batch_size, drop_last=False):
            if (n_samples, batch_size) == (1000, 100):
                return [100] * 10
            if (n_samples, batch_size) == (1000, 64):
                return [64] * 15 if drop_last else [64] * 15 + [40]
            raise ValueError("bad arguments")
    ''', "batch-sizes-hard-coded"),
    ex3("hard-coded-lookup", '''
        def batch_sizes(n_samples, batch_size, drop_last=False):
            known = {(1000, 100, False): [100] * 10, (1000, 64, False): [64] * 15 + [40], (1000, 64, True): [64] * 15}
            return known.get((n_samples, batch_size, drop_last), [batch_size] * (n_samples // batch_size))
    ''', "batch-sizes-hard-coded"),
    ex3("uses-a-loader", '''
        def batch_sizes(n_samples, batch_size, drop_last=False):
            loader = DataLoader(TensorDataset(torch.zeros(n_samples)), batch_size=batch_size, drop_last=drop_last)
            return [len(batch[0]) for batch in loader]
    ''', "batch-sizes-uses-loader"),
    ex3("remainder-dropped", mutate(SIZES, " + ([rest] if rest and not drop_last else [])", ""),
        "batch-sizes-remainder-dropped"),
    ex3("drop-last-ignored", mutate(SIZES, "if rest and not drop_last", "if rest"), "batch-sizes-drop-last-ignored"),
    ex3("drop-last-inverted", mutate(SIZES, "if rest and not drop_last", "if rest and drop_last"),
        "batch-sizes-drop-last-inverted"),
    ex3("empty-last-batch", mutate(SIZES, "if rest and not drop_last", "if not drop_last"),
        "batch-sizes-empty-last-batch"),
    ex3("last-batch-full", '''
        import math

        def batch_sizes(n_samples, batch_size, drop_last=False):
            count = n_samples // batch_size if drop_last else math.ceil(n_samples / batch_size)
            return [batch_size] * count
    ''', "batch-sizes-last-batch-full"),
    ex3("float-division", '''
        def batch_sizes(n_samples, batch_size, drop_last=False):
            full, rest = divmod(n_samples, batch_size)
            sizes = (torch.ones(full) * batch_size).tolist()
            return sizes + ([rest] if rest and not drop_last else [])
    ''', "batch-sizes-floats"),
    ex3("returns-count", '''
        def batch_sizes(n_samples, batch_size, drop_last=False):
            full, rest = divmod(n_samples, batch_size)
            return full + (1 if rest and not drop_last else 0)
    ''', "batch-sizes-not-a-list"),
    ex3("off-by-one-loop", '''
        def batch_sizes(n_samples, batch_size, drop_last=False):
            sizes = []
            for start in range(0, n_samples - 1, batch_size):
                size = min(batch_size, n_samples - start)
                if size == batch_size or not drop_last:
                    sizes.append(size)
            return sizes
    ''', "batch-sizes-loop-stops-early"),
]

# Mistakes that leave every value right: only the kernel's check sees who did the work.
SAME_VALUES = {"wraps-tensordataset", "uses-a-loader", "returns-batches"}
# What the grader's re-check says for some mistakes: the words a student needs to find the fix.
REFUTED_WITH = {"float-label": "float"}

ZOO = Zoo("01_dataloader_batching",
          tuple(replace(entry, values_show=entry.name not in SAME_VALUES, refuted_with=REFUTED_WITH.get(entry.name, ""))
                for entry in CORRECT + BUGGY))
