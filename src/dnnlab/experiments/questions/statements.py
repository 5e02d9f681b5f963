"""Every statement of the five answer sets, and what dnnlab's measurements say about it.

The chapter's questions are answered in ``../shared/seed-answers/`` by students
and chat assistants (files 000-004; 003 also quotes the book's answer key,
"Correct answer:", which is one more set of statements here, not the referee).
:data:`STATEMENTS` lists each distinct statement of each set once, in a short
paraphrase or a quote of a few words, with how it is judged:

- ``tests``: the ids of the claims (stochastic, three-valued verdicts) and
  checked facts (true by construction, shown apart) that say what the
  statement says, and ``against``: those that say the opposite (a supported
  one makes the statement wrong);
- or ``why``: the reason it is not judged, starting "not testable by
  experiment" (a value judgement, a recommendation without an outcome, a tool
  dnnlab does not run) or "not measured here" (testable, no arm measures it).

:func:`rows` looks every id up in the stored results (``result.json`` of each
question, its ``claims`` and ``facts``), so the table follows the verdicts
whenever ``dnnlab questions`` or ``--rejudge`` rewrites them;
:func:`markdown` draws it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# The answer sets, by the key the table uses (file names in ../shared/seed-answers/).
SOURCES = {
    "000": "000_def253ff451068fc.txt (questions 1-7, ELU edition)",
    "001": "001_5d9a0292ed7b7506.txt (questions 1-7, SELU/SGD edition, and exercise 8)",
    "002": "002_cc67d16b8f427ed6.txt (questions 1-7, ELU edition)",
    "003": "003_e0e88ed27c9ad342.txt, the student's answers",
    "003 key": "003_e0e88ed27c9ad342.txt, the book's answer key quoted there",
    "004": "004_62d5abefb2c60c7f.txt (quiz with model answers, questions 1-7)",
}
UNTESTABLE = "not testable by experiment"
UNMEASURED = "not measured here"


@dataclass(frozen=True)
class Statement:
    """One statement of one answer set, and the claims or facts that test it (or why none)."""

    source: str  # a key of SOURCES
    question: str  # the dnnlab question it answers ("exercise-8" for the exercise)
    says: str  # a short paraphrase, or a quote of a few words in quotation marks
    tests: tuple[str, ...] = ()  # claims and facts that say what it says
    against: tuple[str, ...] = ()  # claims and facts that say the opposite
    why: str | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown answer set {self.source!r}; one of {', '.join(SOURCES)}")
        if set(self.tests) & set(self.against):
            raise ValueError(f"{self.says!r}: an id cannot both agree and disagree with it")
        if bool(self.tests or self.against) == bool(self.why):
            raise ValueError(f"{self.says!r}: give either the ids that test it or why none does")
        if self.why and not self.why.startswith((UNTESTABLE, UNMEASURED)):
            raise ValueError(f"{self.says!r}: why must start {UNTESTABLE!r} or {UNMEASURED!r}")

    @property
    def ids(self) -> tuple[str, ...]:
        """Every id that tests it, agreeing ones first."""
        return self.tests + self.against


def _s(source: str, question: str, says: str, *tests: str, against=(), why=None, sign="+"):
    """A table row: ``sign="-"`` puts every id of ``tests`` against the statement."""
    if sign == "-":
        tests, against = (), tests
    return Statement(source, question, says, tuple(tests), tuple(against), why)


# Reasons shared by several statements.
_VALUE = f"{UNTESTABLE}: a value judgement (worth it, manageable), not an outcome"
_RANGE = f"{UNTESTABLE}: a recommended range, with no outcome it promises"
_SPARSE_USE = (
    f"{UNTESTABLE} here: dnnlab runs dense tensors; speed and memory of sparse storage need a "
    "sparse runtime it does not have"
)
_MINIMA = (
    f"{UNTESTABLE} here: neither the quadratic (one minimum) nor the MLP has known local "
    "minima to escape from"
)
_VAGUE = f"{UNTESTABLE}: names no outcome to measure"

# fmt: off
STATEMENTS: tuple[Statement, ...] = (
    # ---- 000 ---------------------------------------------------------------------------------
    _s("000", "same-init", "No: the same value for every weight is not OK, even drawn with He",
       "same-init/identical-neurons", "same-init/worse-accuracy"),
    _s("000", "same-init", "with equal weights the neurons compute the same function",
       "same-init/identical-neurons"),
    _s("000", "same-init", "He init is designed for ReLU and its variants",
       "glorot-he/he-keeps-relu-signal", "glorot-he/glorot-fades-relu"),
    _s("000", "zero-bias", "Yes: zero biases are acceptable, a common and effective choice",
       "zero-bias/no-accuracy-difference"),
    _s("000", "zero-bias", "other (random) bias initializations may be used too",
       "zero-bias/no-accuracy-difference"),
    _s("000", "elu-vs-relu", "ELU produces non-zero (negative) outputs for negative inputs",
       "elu-vs-relu/elu-bounded-below"),
    _s("000", "elu-vs-relu", "ELU \"smoothly approaches negative infinity\" below 0",
       "elu-vs-relu/elu-bounded-below", sign="-"),
    _s("000", "elu-vs-relu", "gradients flow for negative inputs",
       "elu-vs-relu/elu-nonzero-gradient-for-negative-inputs"),
    _s("000", "elu-vs-relu", "ELU alleviates the dying ReLU problem",
       "elu-vs-relu/relu-units-die-at-high-lr", "elu-vs-relu/elu-fewer-dead-units-at-high-lr"),
    _s("000", "elu-vs-relu", "ELU is smooth, without ReLU's sharp transition at 0",
       "elu-vs-relu/elu-smooth-at-zero"),
    _s("000", "elu-vs-relu", "smoothness gives faster, more stable convergence",
       "elu-vs-relu/elu-converges-faster"),
    _s("000", "elu-vs-relu", "\"approximates identity for positive values\", as an advantage over "
       "ReLU", "elu-vs-relu/relu-identity-for-positive-inputs", sign="-"),
    _s("000", "which-activation", "leaky ReLU keeps neurons from becoming completely inactive",
       "elu-vs-relu/leaky-relu-fewer-inactive-units-at-high-lr"),
    _s("000", "which-activation", "ReLU is computationally efficient",
       "which-activation/relu-cheapest-to-compute"),
    _s("000", "which-activation", "ReLU gives good performance in many scenarios (a default)",
       "which-activation/swish-more-accurate-than-relu",
       "which-activation/gelu-more-accurate-than-relu",
       "which-activation/mish-more-accurate-than-relu", sign="-"),
    _s("000", "which-activation", "ReLU when sparsity in activations is desired",
       "sparse-models/relu-activation-sparsity-is-not-weight-sparsity"),
    _s("000", "which-activation", "tanh squashes values between -1 and 1, centred on 0",
       "which-activation/output-ranges"),
    _s("000", "which-activation", "tanh for hidden layers whose outputs should be normalized",
       why=_VAGUE),
    _s("000", "which-activation", "logistic maps to (0, 1): binary classification outputs",
       "which-activation/output-ranges", "which-activation/sigmoid-for-multilabel"),
    _s("000", "which-activation", "sigmoid suffers vanishing gradients, poor in deep nets",
       "which-activation/sigmoid-worst", "glorot-he/normal-1-saturates"),
    _s("000", "which-activation", "softmax outputs a distribution over classes that sums to 1",
       "which-activation/softmax-sums-to-one"),
    _s("000", "momentum", "momentum near 1 overshoots the optimum", "momentum/near-one-overshoots"),
    _s("000", "momentum", "momentum near 1 converges slowly", "momentum/near-one-slower"),
    _s("000", "momentum", "momentum near 1 has difficulty escaping local minima", why=_MINIMA),
    _s("000", "momentum", "momentum near 1 is unstable: numerical errors or noise are amplified",
       "momentum/near-one-fails-on-mlp", "momentum/near-one-precision-matters"),
    _s("000", "momentum", "choose momentum in 0.8-0.9", why=_RANGE),
    _s("000", "sparse-models", "L1 regularization gives a sparse model",
       "sparse-models/l1-gives-exact-zeros"),
    _s("000", "sparse-models", "dropout gives a sparse model",
       "sparse-models/dropout-gives-sparse-weights"),
    _s("000", "sparse-models", "thresholding or pruning small weights after training",
       "sparse-models/magnitude-pruning-keeps-accuracy"),
    _s("000", "sparse-models", "sparse models use less memory and infer faster", why=_SPARSE_USE),
    _s("000", "dropout-cost", "dropout slows down training", "dropout-cost/slower-epochs"),
    _s("000", "dropout-cost", "dropout needs multiple forward and backward passes per instance",
       "dropout-cost/one-pass-per-step", sign="-"),
    _s("000", "dropout-cost", "dropout does not slow down inference",
       "dropout-cost/inference-not-slower"),
    _s("000", "dropout-cost", "its cost is outweighed by its regularization benefits", why=_VALUE),
    # ---- 001 ---------------------------------------------------------------------------------
    _s("001", "same-init", "No: equal weights make symmetric neurons with the same gradients, "
       "symmetric throughout training", "same-init/identical-neurons"),
    _s("001", "same-init", "He init scales weights to avoid vanishing or exploding gradients",
       "glorot-he/he-keeps-relu-gradients"),
    _s("001", "same-init", "random initialization promotes diversity and effective learning",
       "same-init/worse-accuracy"),
    _s("001", "zero-bias", "Yes: zero biases are a common, reasonable choice",
       "zero-bias/no-accuracy-difference"),
    _s("001", "zero-bias", "bias gradients are computed separately, proportional to the error",
       why=f"{UNTESTABLE}: a description of backpropagation, not an outcome"),
    _s("001", "zero-bias", "non-zero biases may help with prior knowledge of the domain",
       why=_VAGUE),
    _s("001", "elu-vs-relu", "SELU self-normalizes: stable mean and variance through the net",
       "elu-vs-relu/selu-self-normalizes-when-conditions-hold",
       "glorot-he/lecun-selu-self-normalizes", "elu-vs-relu/selu-stays-normalized-after-training"),
    _s("001", "elu-vs-relu", "ReLU leads to gradient issues in deep nets",
       "glorot-he/he-keeps-relu-gradients", sign="-"),
    _s("001", "elu-vs-relu", "SELU is smooth and differentiable, ReLU is not at 0",
       "elu-vs-relu/selu-smooth-at-zero"),
    _s("001", "elu-vs-relu", "SELU's differentiability \"enables\" backpropagation; ReLU needs "
       "subgradient methods", "which-activation/relu-trains-by-backprop", sign="-"),
    _s("001", "elu-vs-relu", "SELU keeps activations in range against vanishing/exploding "
       "gradients", "glorot-he/lecun-selu-self-normalizes"),
    _s("001", "which-activation", "SELU for deep dense nets", "which-activation/selu-best"),
    _s("001", "which-activation", "leaky ReLU mitigates dying ReLU; negative inputs still learn",
       "elu-vs-relu/leaky-relu-fewer-inactive-units-at-high-lr"),
    _s("001", "which-activation", "ReLU is computationally efficient",
       "which-activation/relu-cheapest-to-compute"),
    _s("001", "which-activation", "ReLU avoids vanishing gradients for positive values",
       "elu-vs-relu/relu-identity-for-positive-inputs"),
    _s("001", "which-activation", "ReLU encourages sparse activation",
       "sparse-models/relu-activation-sparsity-is-not-weight-sparsity"),
    _s("001", "which-activation", "tanh gives positive and negative values, in -1 to 1",
       "which-activation/output-ranges"),
    _s("001", "which-activation", "logistic in (0, 1), binary or probabilistic outputs",
       "which-activation/output-ranges", "which-activation/sigmoid-for-multilabel"),
    _s("001", "which-activation", "softmax: a probability distribution for multi-class outputs",
       "which-activation/softmax-sums-to-one"),
    _s("001", "momentum", "momentum near 1 overshoots, updates become excessively large",
       "momentum/near-one-overshoots", "momentum/near-one-fails-on-mlp"),
    _s("001", "momentum", "momentum near 1 converges slowly or not at all",
       "momentum/near-one-slower"),
    _s("001", "momentum", "hard to escape local minima or saddle points", why=_MINIMA),
    _s("001", "momentum", "weight updates oscillate or diverge",
       "momentum/more-momentum-more-oscillations"),
    _s("001", "momentum", "choose momentum in 0.8-0.9", why=_RANGE),
    _s("001", "sparse-models", "L1 sets many weights to exactly zero",
       "sparse-models/l1-gives-exact-zeros"),
    _s("001", "sparse-models", "dropout creates a form of sparsity",
       "sparse-models/dropout-gives-sparse-weights"),
    _s("001", "sparse-models", "pruning small-magnitude weights after training",
       "sparse-models/magnitude-pruning-keeps-accuracy"),
    _s("001", "sparse-models", "sparse models are memory- and compute-efficient", why=_SPARSE_USE),
    _s("001", "dropout-cost", "dropout slightly slows training (more computation per step)",
       "dropout-cost/slower-epochs"),
    _s("001", "dropout-cost", "its impact on training speed is \"generally negligible\"",
       "dropout-cost/slowdown-negligible"),
    _s("001", "dropout-cost", "dropout does not slow down inference",
       "dropout-cost/inference-not-slower"),
    _s("001", "dropout-cost", "MC Dropout slows inference: several forward passes",
       "dropout-cost/mc-costs-k-predictions"),
    _s("001", "dropout-cost", "MC Dropout's cost is manageable", why=_VALUE),
    _s("001", "dropout-cost", "MC Dropout's samples capture the model's uncertainty",
       "dropout-cost/mc-lowers-nll"),
    _s("001", "exercise-8", "the code early-stops and validates on the test set",
       why=f"{UNTESTABLE}: a flaw of method (the test set then chooses the model); dnnlab "
       "validates on held-out training images instead"),
    _s("001", "exercise-8", "MC Dropout sampled through model.predict",
       "dropout-cost/predict-never-samples-dropout", sign="-"),
    _s("001", "exercise-8", "AlphaDropout (rate 0.5) on ELU/He layers",
       why=f"{UNMEASURED}: exercise 8 puts alpha dropout on the SELU net, as the exercise asks"),
    _s("001", "exercise-8", "compare learning curves to see whether BN converges faster, "
       "performs better", why=f"{UNMEASURED} as a question claim: exercise 8 (c) in the report "
       "judges BN against the baseline"),
    # ---- 002 ---------------------------------------------------------------------------------
    _s("002", "same-init", "No: equal weights lose He init's scaling; weights must differ to "
       "break symmetry", "same-init/identical-neurons", "same-init/worse-accuracy"),
    _s("002", "same-init", "He normal draws with variance 2 / fan_in",
       "glorot-he/initializer-variances"),
    _s("002", "zero-bias", "zero biases are common, the frameworks' default",
       "zero-bias/no-accuracy-difference", "zero-bias/keras-default-bias-is-zero"),
    _s("002", "zero-bias", "zero biases \"break the symmetry\" (tied weights stay tied with them)",
       "same-init/identical-neurons", sign="-"),
    _s("002", "zero-bias", "equal non-zero biases give a layer's neurons identical outputs",
       "zero-bias/equal-biases-keep-random-neurons-distinct", sign="-"),
    _s("002", "zero-bias", "large biases cause vanishing gradients with sigmoid/tanh",
       why=f"{UNMEASURED}: no arm draws large biases"),
    _s("002", "zero-bias", "zero biases are simple and computationally efficient", why=_VAGUE),
    _s("002", "zero-bias", "RNN forget-gate biases start at 1",
       why=f"{UNMEASURED}: dnnlab trains no recurrent nets"),
    _s("002", "elu-vs-relu", "ELU is smooth and continuous; ReLU has \"a discontinuity at zero\"",
       "elu-vs-relu/elu-smooth-at-zero", "elu-vs-relu/relu-is-continuous"),
    _s("002", "elu-vs-relu", "ELU is less prone to dying units (non-zero gradient below 0)",
       "elu-vs-relu/elu-fewer-dead-units-at-high-lr",
       "elu-vs-relu/elu-nonzero-gradient-for-negative-inputs"),
    _s("002", "elu-vs-relu", "ELU nets converge faster", "elu-vs-relu/elu-converges-faster"),
    _s("002", "elu-vs-relu", "ELU captures richer representations: better performance",
       "elu-vs-relu/elu-more-accurate"),
    _s("002", "which-activation", "ELU mitigates vanishing gradients (smooth)",
       "elu-vs-relu/elu-mean-closer-to-zero"),
    _s("002", "which-activation", "leaky ReLU addresses dying ReLU",
       "elu-vs-relu/leaky-relu-fewer-inactive-units-at-high-lr"),
    _s("002", "which-activation", "ReLU: a computationally efficient default",
       "which-activation/relu-cheapest-to-compute"),
    _s("002", "which-activation", "tanh ranges over -1 to 1", "which-activation/output-ranges"),
    _s("002", "which-activation", "sigmoid output for binary classification, range [0, 1]",
       "which-activation/output-ranges", "which-activation/sigmoid-for-multilabel"),
    _s("002", "which-activation", "softmax outputs sum to 1",
       "which-activation/softmax-sums-to-one"),
    _s("002", "momentum", "momentum near 1 \"reduces the effective learning rate\"",
       "momentum/terminal-step-is-lr-over-one-minus-m", sign="-"),
    _s("002", "momentum", "overshooting and oscillations around the minimum",
       "momentum/near-one-overshoots", "momentum/more-momentum-more-oscillations"),
    _s("002", "momentum", "large momentum-induced updates make the model diverge",
       "momentum/near-one-fails-on-mlp"),
    _s("002", "momentum", "\"numerical precision issues\" at extreme momentum",
       "momentum/near-one-precision-matters"),
    _s("002", "momentum", "choose momentum in 0.8-0.99", why=_RANGE),
    _s("002", "sparse-models", "iterative (gradual) magnitude pruning with fine-tuning",
       "sparse-models/gradual-pruning-beats-one-shot",
       "sparse-models/gradual-pruning-keeps-dense-accuracy-at-equal-budget",
       "sparse-models/magnitude-pruning-keeps-accuracy"),
    _s("002", "sparse-models", "L1 regularization encourages sparsity",
       "sparse-models/l1-gives-exact-zeros"),
    _s("002", "sparse-models", "quantization produces a sparse model",
       "sparse-models/quantization-gives-sparse-weights"),
    _s("002", "sparse-models", "knowledge distillation produces a sparse model",
       "sparse-models/distillation-gives-sparse-weights"),
    _s("002", "sparse-models", "sparse models reduce memory and speed up inference",
       why=_SPARSE_USE),
    _s("002", "dropout-cost", "dropout needs more epochs to converge",
       "dropout-cost/doubles-epochs-to-converge"),
    _s("002", "dropout-cost", "each training epoch takes longer", "dropout-cost/slower-epochs"),
    _s("002", "dropout-cost", "inference is as fast as (or faster than) without dropout",
       "dropout-cost/inference-not-slower"),
    # ---- 003, the student ---------------------------------------------------------------------
    _s("003", "glorot-he", "they fix unstable gradients: vanishing, or exploding \"mostly for "
       "RNNs\"", "glorot-he/glorot-fades-relu", "glorot-he/normal-1-explodes"),
    _s("003", "glorot-he", "saturating activations aggravate it", "glorot-he/normal-1-saturates"),
    _s("003", "same-init", "No: the same value is like zero (all neurons alike)",
       "same-init/identical-neurons"),
    _s("003", "same-init", "uniform draws use the limit sqrt(3 sigma^2)",
       "glorot-he/initializer-variances"),
    _s("003", "zero-bias", "Yes: zero biases are the default",
       "zero-bias/no-accuracy-difference", "zero-bias/keras-default-bias-is-zero"),
    _s("003", "which-activation", "sigmoid or tanh outputs for multi-label or binary outputs",
       "which-activation/sigmoid-for-multilabel", "which-activation/output-ranges"),
    _s("003", "which-activation", "softmax for multi-class outputs",
       "which-activation/softmax-sums-to-one"),
    _s("003", "which-activation", "ReLU for the hidden layers of shallow nets (Swish for deep)",
       why=f"{UNMEASURED}: no arm compares activations across depths"),
    _s("003", "which-activation", "ReLU \"could kill neurons\"",
       "elu-vs-relu/relu-units-die-at-high-lr"),
    _s("003", "which-activation", "leaky ReLU solves the dead-neuron problem",
       "elu-vs-relu/leaky-relu-fewer-inactive-units-at-high-lr"),
    _s("003", "which-activation", "Swish for deep nets, at a higher computational cost",
       "which-activation/swish-more-accurate-than-relu",
       "which-activation/swish-costs-more-compute"),
    _s("003", "which-activation", "SELU self-normalizes only with standardized inputs, LeCun "
       "init, plain MLPs, no regularization",
       "elu-vs-relu/selu-self-normalizes-when-conditions-hold"),
    _s("003", "which-activation", "softplus for outputs that must be positive",
       "which-activation/output-ranges"),
    _s("003", "momentum", "momentum is an exponentially decaying sum, not an average: the step "
       "may explode", "momentum/terminal-step-is-lr-over-one-minus-m"),
    _s("003", "sparse-models", "use ReLU to kill neurons",
       "elu-vs-relu/pruning-dead-relu-units-gives-sparse-model"),
    _s("003", "sparse-models", "L1 regularization", "sparse-models/l1-gives-exact-zeros"),
    _s("003", "sparse-models", "dropout (marked wrong by the student)",
       "sparse-models/dropout-gives-sparse-weights"),
    _s("003", "dropout-cost", "dropout \"speeds up training because fewer neurons\" are computed",
       "dropout-cost/dropout-speeds-up-epochs", against=("dropout-cost/one-pass-per-step",)),
    _s("003", "dropout-cost", "(the student's correction) dropout slows convergence",
       "dropout-cost/doubles-epochs-to-converge"),
    _s("003", "dropout-cost", "no effect on inference", "dropout-cost/inference-not-slower"),
    _s("003", "dropout-cost", "MC Dropout slows inference: K samples per output",
       "dropout-cost/mc-costs-k-predictions"),
    # ---- 003, the book's answer key -----------------------------------------------------------
    _s("003 key", "glorot-he", "output std close to input std at the start of training",
       "glorot-he/he-keeps-relu-signal", "glorot-he/glorot-keeps-tanh-signal"),
    _s("003 key", "glorot-he", "this reduces the vanishing/exploding gradients problem",
       "glorot-he/he-keeps-relu-gradients"),
    _s("003 key", "same-init", "No: symmetry is not broken and backpropagation cannot break it",
       "same-init/identical-neurons"),
    _s("003 key", "same-init", "like one neuron per layer: virtually impossible to converge to a "
       "good solution", "same-init/worse-accuracy"),
    _s("003 key", "momentum", "near 1 it picks up speed and overshoots the minimum",
       "momentum/near-one-overshoots"),
    _s("003 key", "momentum", "it oscillates many times before converging",
       "momentum/more-momentum-more-oscillations"),
    _s("003 key", "momentum", "it takes much longer to converge", "momentum/near-one-slower"),
    _s("003 key", "sparse-models", "train normally, then zero out tiny weights",
       "sparse-models/magnitude-pruning-keeps-accuracy"),
    _s("003 key", "sparse-models", "for more sparsity, l1 regularization during training",
       "sparse-models/l1-pruned-beats-plain-pruned"),
    _s("003 key", "sparse-models", "use the TensorFlow Model Optimization Toolkit",
       "sparse-models/gradual-pruning-beats-one-shot"),
    _s("003 key", "dropout-cost", "dropout slows training, \"roughly by a factor of two\"",
       "dropout-cost/doubles-epochs-to-converge", "dropout-cost/doubles-time-to-converge"),
    _s("003 key", "dropout-cost", "no impact on inference speed",
       "dropout-cost/inference-not-slower"),
    _s("003 key", "dropout-cost", "MC Dropout: 10 or more inferences, \"a factor of 10 or more\"",
       "dropout-cost/mc-costs-k-predictions"),
    _s("003 key", "dropout-cost", "with MC Dropout, 10 or more inferences give better predictions",
       "dropout-cost/mc-lowers-nll"),
    # ---- 004 ---------------------------------------------------------------------------------
    _s("004", "same-init", "No: symmetry is not broken; a layer's neurons keep the same weights",
       "same-init/identical-neurons"),
    _s("004", "zero-bias", "zero biases are fine; drawn like weights is fine too: \"not much "
       "difference\"", "zero-bias/no-accuracy-difference"),
    _s("004", "elu-vs-relu", "ELU takes negative values: mean output closer to 0",
       "elu-vs-relu/elu-mean-closer-to-zero"),
    _s("004", "elu-vs-relu", "that mean near 0 alleviates vanishing gradients",
       why=f"{UNMEASURED}: gradient std at depth is measured for ELU and ReLU only at "
       "initialization (glorot-he), not as a claim about ELU against ReLU"),
    _s("004", "elu-vs-relu", "ELU's nonzero derivative avoids dying units",
       "elu-vs-relu/elu-nonzero-gradient-for-negative-inputs",
       "elu-vs-relu/elu-fewer-dead-units-at-high-lr"),
    _s("004", "elu-vs-relu", "ELU is smooth everywhere; ReLU's kink slows gradient descent",
       "elu-vs-relu/elu-smooth-at-zero", "elu-vs-relu/elu-converges-faster"),
    _s("004", "which-activation", "ELU is a good default; ReLU is generally outperformed by ELU "
       "and leaky ReLU", "elu-vs-relu/elu-more-accurate", "which-activation/selu-best"),
    _s("004", "which-activation", "leaky ReLU variants if the net must be as fast as possible",
       "which-activation/leaky-relu-faster-than-elu"),
    _s("004", "which-activation", "tanh outputs a number between -1 and 1",
       "which-activation/output-ranges"),
    _s("004", "which-activation", "tanh in the output layer \"to estimate a probability\"",
       "which-activation/output-ranges", sign="-"),
    _s("004", "which-activation", "tanh is rarely used in hidden layers",
       why=f"{UNTESTABLE}: a statement of practice (how often), not of outcome"),
    _s("004", "which-activation", "softmax for mutually exclusive classes",
       "which-activation/softmax-sums-to-one"),
    _s("004", "momentum", "near 1 it overshoots, oscillates, and takes much longer to converge",
       "momentum/near-one-overshoots", "momentum/more-momentum-more-oscillations",
       "momentum/near-one-slower"),
    _s("004", "sparse-models", "zero out tiny weights after training",
       "sparse-models/magnitude-pruning-keeps-accuracy"),
    _s("004", "sparse-models", "L1 regularization pushes toward sparsity",
       "sparse-models/l1-gives-exact-zeros", "sparse-models/l1-pruned-beats-plain-pruned"),
    _s("004", "dropout-cost", "dropout slows training, roughly by a factor of two",
       "dropout-cost/doubles-epochs-to-converge", "dropout-cost/doubles-time-to-converge"),
    _s("004", "dropout-cost", "no impact on inference", "dropout-cost/inference-not-slower"),
)
# fmt: on


def referenced_ids(statements: Iterable[Statement] = STATEMENTS) -> list[str]:
    """Every claim or fact id the table reads, once each, in order."""
    return list(dict.fromkeys(i for s in statements for i in s.ids))


def outcomes(results: Iterable[dict]) -> dict[str, dict[str, Any]]:
    """Id -> ``{"kind": "claim" | "fact", "verdict": ...}`` from stored question results.

    A claim's verdict is its own; a checked fact reads ``supported`` if it
    holds, ``refuted`` if it does not (a fact that fails is a bug to report).
    """
    found: dict[str, dict[str, Any]] = {}
    for result in results:
        for claim in result.get("claims", []):
            found[claim["id"]] = {"kind": "claim", "verdict": claim["verdict"]}
        for fact in result.get("facts", []):
            verdict = "supported" if fact.get("holds") else "refuted"
            found[fact["id"]] = {"kind": "fact", "verdict": verdict}
    return found


_FOR = {
    ("supported", True): "right",
    ("refuted", False): "right",
    ("supported", False): "wrong",
    ("refuted", True): "wrong",
}


def judged(statement: Statement, found: dict[str, dict[str, Any]]) -> str:
    """What the measurements make of a statement: right, wrong, partly right, open or unjudged.

    Each id gives right or wrong (its verdict read as agreeing or disagreeing
    with the statement) or nothing (inconclusive, or not measured); right only
    if every id is right, wrong if every decided id is wrong, partly right if
    they disagree.
    """
    if statement.why:
        return "not judged"
    reads = [
        _FOR.get((found[i]["verdict"], i in statement.tests)) for i in statement.ids if i in found
    ]
    decided = [r for r in reads if r]
    if not reads:
        return "not measured yet"
    if not decided:
        return "open"
    if all(r == "right" for r in decided):
        return "right" if len(decided) == len(statement.ids) else "right so far"
    if all(r == "wrong" for r in decided):
        return "wrong"
    return "partly right"


def rows(results: Iterable[dict]) -> list[dict[str, Any]]:
    """The table: one row per statement, each id with its kind and verdict, and the reading."""
    found = outcomes(results)
    out = []
    for s in STATEMENTS:
        tested = [
            {
                "id": i,
                "agrees": i in s.tests,
                **found.get(i, {"kind": None, "verdict": "not measured"}),
            }
            for i in s.ids
        ]
        out.append(
            {
                "source": s.source,
                "question": s.question,
                "says": s.says,
                "tests": tested,
                "why": s.why,
                "reading": judged(s, found),
            }
        )
    return out


def summary(table: list[dict[str, Any]]) -> dict[str, int]:
    """How many statements read each way."""
    counts: dict[str, int] = {}
    for row in table:
        counts[row["reading"]] = counts.get(row["reading"], 0) + 1
    return counts


def cell(test: dict[str, Any]) -> str:
    """One id of a row, with its verdict (or whether the fact holds) and its direction."""
    kind = test["verdict"]
    if test["kind"] == "fact":
        kind = "fact holds" if test["verdict"] == "supported" else "fact fails"
    against = "" if test["agrees"] else " (says the opposite)"
    return f"`{test['id']}`: {kind}{against}"


def markdown(results: Iterable[dict]) -> str:
    """The table in Markdown, grouped by answer set, with a count of readings."""
    table = rows(results)
    counts = ", ".join(f"{n} {k}" for k, n in sorted(summary(table).items()))
    lines = [
        f"{len(table)} statements in {len(SOURCES)} answer sets: {counts}.",
        "",
        "A statement is *right* when every claim or fact that tests it comes out its way "
        '(a claim it contradicts, marked "says the opposite", refuted), *wrong* when every '
        "decided one goes against it, *partly right* when they disagree, *open* when all are "
        "inconclusive.",
    ]
    for source, title in SOURCES.items():
        lines += ["", f"**{source}**: {title}", ""]
        lines += ["| question | statement | tested by | reading |", "| --- | --- | --- | --- |"]
        for row in (r for r in table if r["source"] == source):
            tests = "; ".join(cell(t) for t in row["tests"]) or row["why"]
            says = row["says"].replace("|", "\\|")
            lines.append(f"| {row['question']} | {says} | {tests} | {row['reading']} |")
    return "\n".join(lines) + "\n"
