"""Lesson 03's bug zoo: student cells for MLP, predict and count_parameters, correct ones and typical mistakes.

Each entry is the source of one exercise cell: tests/test_zoos.py runs it through the lesson's real
grade cells in a kernel, and tests/test_rechecks.py through the grader's re-check.
A buggy entry names the diagnosis code its failure message must carry (course_utils.checks.lesson03).
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from tests.zoos import Zoo, mutate, variant


mlp = partial(variant, "ex1-tests")
predictor = partial(variant, "ex2-tests")
counter = partial(variant, "ex3-tests")


CANONICAL_MLP = """
class MLP(nn.Module):
    def __init__(self, in_features, hidden, out_features):
        super().__init__()
        self.hidden = nn.Linear(in_features, hidden)
        self.act = nn.ReLU()
        self.out = nn.Linear(hidden, out_features)

    def forward(self, x):
        return self.out(self.act(self.hidden(x)))
"""

CANONICAL_PREDICT = """
def predict(model, x):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = model(x)
    model.train(was_training)
    return logits.argmax(dim=1)
"""

CANONICAL_COUNT = """
def count_parameters(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
"""




CORRECT = [
    mlp("canonical", CANONICAL_MLP),
    mlp("sequential-inside", """
        class MLP(nn.Module):
            def __init__(self, in_features: int, hidden: int, out_features: int) -> None:
                super().__init__()
                self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, out_features))

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.net(x)
    """),
    mlp("functional-relu", """
        import torch.nn.functional as F

        class MLP(nn.Module):
            def __init__(self, in_features, hidden, out_features):
                super(MLP, self).__init__()
                self.fc1 = nn.Linear(in_features, hidden)
                self.fc2 = nn.Linear(hidden, out_features)

            def forward(self, x):
                h = F.relu(self.fc1(x))
                return self.fc2(h)
    """),
    mlp("module-list-and-clamp", """
        class MLP(nn.Module):
            def __init__(self, in_features, hidden, out_features):
                super().__init__()
                self.layers = nn.ModuleList([nn.Linear(in_features, hidden), nn.Linear(hidden, out_features)])

            def forward(self, x):
                x = self.layers[0](x).clamp(min=0)
                return self.layers[1](x)
    """),
    predictor("canonical", CANONICAL_PREDICT),
    predictor("try-finally-inference-mode", """
        def predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
            mode = model.training
            model.eval()
            try:
                with torch.inference_mode():
                    return model(x).argmax(dim=-1)
            finally:
                model.train(mode)
    """),
    predictor("softmax-then-argmax", """
        def predict(model, x):
            training = model.training
            model.eval()
            with torch.no_grad():
                probabilities = torch.softmax(model(x), dim=1)
            if training:
                model.train()
            return torch.argmax(probabilities, dim=1)
    """),
    counter("canonical", CANONICAL_COUNT),
    counter("loop", """
        def count_parameters(model):
            total = 0
            for parameter in model.parameters():
                if parameter.requires_grad:
                    total += parameter.numel()
            return total
    """),
    counter("named-parameters-and-prod", """
        import math

        def count_parameters(model: nn.Module) -> int:
            return sum(math.prod(p.shape) for _, p in model.named_parameters() if p.requires_grad)
    """),
]

BUGGY = [
    # Exercise 1 · MLP
    mlp("no-super-init", mutate(CANONICAL_MLP, "        super().__init__()\n", ""), "mlp-super-init"),
    mlp("hard-coded-sizes", mutate(mutate(CANONICAL_MLP, "nn.Linear(in_features, hidden)", "nn.Linear(10, 32)"),
                                   "nn.Linear(hidden, out_features)", "nn.Linear(32, 3)"), "mlp-sizes-ignored"),
    mlp("second-layer-to-in-features", mutate(CANONICAL_MLP, "nn.Linear(hidden, out_features)",
                                              "nn.Linear(hidden, in_features)"), "mlp-layer-sizes"),
    mlp("no-relu", mutate(CANONICAL_MLP, "self.out(self.act(self.hidden(x)))", "self.out(self.hidden(x))"),
        "mlp-no-relu"),
    mlp("relu-on-logits", mutate(CANONICAL_MLP, "return self.out(self.act(self.hidden(x)))",
                                 "return self.act(self.out(self.act(self.hidden(x))))"), "mlp-relu-on-logits"),
    mlp("relu-after-both-layers-in-sequential", """
        class MLP(nn.Module):
            def __init__(self, in_features, hidden, out_features):
                super().__init__()
                self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.Linear(hidden, out_features), nn.ReLU())

            def forward(self, x):
                return self.net(x)
    """, "mlp-relu-on-logits"),
    mlp("softmax-in-forward", mutate(CANONICAL_MLP, "return self.out(self.act(self.hidden(x)))",
                                     "return torch.softmax(self.out(self.act(self.hidden(x))), dim=1)"),
        "mlp-softmax-in-forward"),
    mlp("softmax-dim0-in-forward", mutate(CANONICAL_MLP, "return self.out(self.act(self.hidden(x)))",
                                          "return nn.Softmax(dim=0)(self.out(self.act(self.hidden(x))))"),
        "mlp-softmax-dim"),
    mlp("sigmoid-instead-of-relu", mutate(CANONICAL_MLP, "nn.ReLU()", "nn.Sigmoid()"), "mlp-wrong-activation"),
    mlp("no-bias", mutate(CANONICAL_MLP, "nn.Linear(in_features, hidden)", "nn.Linear(in_features, hidden, bias=False)"),
        "mlp-no-bias"),
    mlp("layers-in-a-list", """
        class MLP(nn.Module):
            def __init__(self, in_features, hidden, out_features):
                super().__init__()
                self.layers = [nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, out_features)]

            def forward(self, x):
                for layer in self.layers:
                    x = layer(x)
                return x
    """, "mlp-unregistered-layers"),
    mlp("layers-created-in-forward", """
        class MLP(nn.Module):
            def __init__(self, in_features, hidden, out_features):
                super().__init__()
                self.sizes = (in_features, hidden, out_features)

            def forward(self, x):
                n_in, n_hidden, n_out = self.sizes
                return nn.Linear(n_hidden, n_out)(torch.relu(nn.Linear(n_in, n_hidden)(x)))
    """, "mlp-layers-in-forward"),
    mlp("extra-layer", mutate(mutate(CANONICAL_MLP, "self.out = nn.Linear(hidden, out_features)",
                                     "self.mid = nn.Linear(hidden, hidden)\n        self.out = nn.Linear(hidden, out_features)"),
                              "self.out(self.act(self.hidden(x)))", "self.out(self.act(self.mid(self.act(self.hidden(x)))))"),
        "mlp-extra-parameters"),
    mlp("batch-size-written-in", mutate(CANONICAL_MLP, "return self.out(self.act(self.hidden(x)))",
                                        "return self.out(self.act(self.hidden(x))).reshape(13, -1)"), "mlp-batch-size"),
    # Exercise 2 · predict
    predictor("no-eval", mutate(CANONICAL_PREDICT, "    model.eval()\n", ""), "predict-not-eval"),
    predictor("no-no-grad", """
        def predict(model, x):
            was_training = model.training
            model.eval()
            logits = model(x)
            model.train(was_training)
            return logits.argmax(dim=1)
    """, "predict-tracks-gradients"),
    predictor("mode-not-restored", mutate(CANONICAL_PREDICT, "    model.train(was_training)\n", ""),
              "predict-mode-not-restored"),
    predictor("always-train-afterwards", mutate(CANONICAL_PREDICT, "model.train(was_training)", "model.train()"),
              "predict-forced-train"),
    predictor("returns-logits", mutate(CANONICAL_PREDICT, "return logits.argmax(dim=1)", "return logits"),
              "predict-returns-logits"),
    predictor("returns-probabilities", mutate(CANONICAL_PREDICT, "return logits.argmax(dim=1)",
                                              "return torch.softmax(logits, dim=1)"), "predict-returns-probabilities"),
    predictor("argmax-dim0", mutate(CANONICAL_PREDICT, "argmax(dim=1)", "argmax(dim=0)"), "predict-argmax-dim0"),
    predictor("softmax-dim0", mutate(CANONICAL_PREDICT, "return logits.argmax(dim=1)",
                                     "return torch.softmax(logits, dim=0).argmax(dim=1)"), "predict-softmax-dim0"),
    predictor("keepdim", mutate(CANONICAL_PREDICT, "argmax(dim=1)", "argmax(dim=1, keepdim=True)"), "predict-keepdim"),
    predictor("float-classes", mutate(CANONICAL_PREDICT, "argmax(dim=1)", "argmax(dim=1).float()"),
              "predict-float-classes"),
    # torch.max(logits, 1) returns (values, indices), as in PyTorch's tutorial `_, predicted = torch.max(outputs, 1)`
    predictor("returns-max-pair", mutate(CANONICAL_PREDICT, "return logits.argmax(dim=1)",
                                         "return torch.max(logits, 1)"), "predict-returns-max-tuple"),
    predictor("returns-a-list", mutate(CANONICAL_PREDICT, "argmax(dim=1)", "argmax(dim=1).tolist()"),
              "predict-not-tensor"),
    # Exercise 3 · count_parameters
    counter("if-on-one-layer", """
        def count_parameters(model):
            if model[0].weight.requires_grad:
                return 451
            return 99
    """, "count-hard-coded"),
    counter("returns-451", """
        def count_parameters(model):
            return 451
    """, "count-hard-coded"),
    counter("first-layer-special-case", """
        def count_parameters(model):
            total = sum(p.numel() for p in model.parameters())
            if not model[0].weight.requires_grad:
                total -= model[0].weight.numel() + model[0].bias.numel()
            return total
    """, "count-sequential-only"),
    counter("frozen-counted", mutate(CANONICAL_COUNT, " if p.requires_grad", ""), "count-includes-frozen"),
    counter("tensors-counted", """
        def count_parameters(model):
            return len([p for p in model.parameters() if p.requires_grad])
    """, "count-tensors-not-numbers"),
    counter("weights-only", """
        def count_parameters(model):
            return sum(p.numel() for name, p in model.named_parameters() if p.requires_grad and "weight" in name)
    """, "count-weights-only"),
    counter("sum-of-dimensions", """
        def count_parameters(model):
            return sum(sum(p.shape) for p in model.parameters() if p.requires_grad)
    """, "count-not-numel"),
    counter("iterates-layers", """
        def count_parameters(model):
            return sum(p.numel() for layer in model for p in layer.parameters() if p.requires_grad)
    """, "count-shared-twice"),
    # Tied weights counted once per module that holds them (e.g. TylerYep/torchinfo#377, sksq96/pytorch-summary#37)
    counter("per-module", """
        def count_parameters(model):
            total = 0
            for module in model.modules():
                total += sum(p.numel() for p in module.parameters(recurse=False) if p.requires_grad)
            return total
    """, "count-shared-twice"),
    counter("state-dict", """
        def count_parameters(model):
            return sum(value.numel() for value in model.state_dict().values())
    """, "count-buffers"),
    counter("linear-layers-only", """
        def count_parameters(model):
            total = 0
            for layer in model.modules():
                if isinstance(layer, nn.Linear):
                    total += sum(p.numel() for p in layer.parameters() if p.requires_grad)
            return total
    """, "count-only-linear"),
    counter("returns-a-tensor", """
        def count_parameters(model):
            return torch.tensor([p.numel() for p in model.parameters() if p.requires_grad]).sum()
    """, "count-not-int"),
]

# What the grader's re-check says for some mistakes: the words a student needs to find the fix.
REFUTED_WITH = {"no-relu": "out(relu(hidden(x)))", "hard-coded-sizes": "nn.Linear", "no-no-grad": "no_grad",
                "mode-not-restored": "training mode", "argmax-dim0": "argmax(dim=1)", "frozen-counted": "trainable",
                "returns-a-tensor": "not a Python int"}

ZOO = Zoo("03_forward_pass", tuple(replace(entry, refuted_with=REFUTED_WITH.get(entry.name, ""))
                                   for entry in CORRECT + BUGGY))
