"""Ranking metrics checked against scikit-learn, threshold rules checked by brute force, and the
detection curve plots."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sklearn.metrics as skm

from vidtl.core.errors import UserError
from vidtl.evaluation.detection_curves import plot_pr_curve, plot_roc_curve
from vidtl.evaluation.ranking_metrics import (
    average_precision,
    binary_detection_metrics,
    f1_scores,
    mean_average_precision,
    per_class_average_precision,
    precision_recall_curve,
    roc_auc,
    roc_curve,
)
from vidtl.evaluation.thresholds import (
    ThresholdRule,
    choose_threshold,
    choose_thresholds,
    parse_threshold_rule,
    threshold_choice,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def tied_case(seed: int = 0, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Sigmoid scores of fixed logits, rounded to one decimal (many ties), and 0/1 labels."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.4).astype(np.int64)
    logits = rng.normal(size=n) + 1.2 * labels
    return np.round(1 / (1 + np.exp(-logits)), 1), labels


BINARY_CASES = {
    "ties": tied_case(0),
    "more_ties": tied_case(1, 200),
    "all_equal_scores": (np.full(7, 0.3), np.array([0, 1, 1, 0, 0, 1, 0])),
    "all_positive": (np.array([0.2, 0.9, 0.5, 0.5]), np.ones(4, dtype=np.int64)),
    "one_positive_sample": (np.array([0.7]), np.array([1])),
    "perfect": (np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])),
    "inverted": (np.array([0.1, 0.2, 0.8, 0.9]), np.array([1, 1, 0, 0])),
    "f1_tie": (np.array([0.875, 0.75, 0.625, 0.5]), np.array([1, 0, 0, 1])),  # F1 2/3 twice
}
TWO_CLASS = [k for k in BINARY_CASES if len(set(BINARY_CASES[k][1].tolist())) == 2]


@pytest.mark.parametrize("case", sorted(BINARY_CASES))
def test_precision_recall_curve_is_sklearns(case):
    scores, labels = BINARY_CASES[case]
    ours = precision_recall_curve(scores, labels)
    theirs = skm.precision_recall_curve(labels, scores, drop_intermediate=False)
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine.shape == reference.shape
        np.testing.assert_allclose(mine, reference, rtol=0, atol=1e-15)
    assert len(ours[2]) == len(np.unique(scores))  # tied scores are one threshold


def test_precision_recall_curve_without_a_positive_is_sklearns():
    scores, labels = np.array([0.3, 0.1, 0.3]), np.zeros(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = skm.precision_recall_curve(labels, scores, drop_intermediate=False)
    for mine, reference in zip(precision_recall_curve(scores, labels), theirs, strict=True):
        np.testing.assert_array_equal(mine, reference)


@pytest.mark.parametrize("case", sorted(BINARY_CASES))
def test_average_precision_is_sklearns(case):
    scores, labels = BINARY_CASES[case]
    assert average_precision(scores, labels) == pytest.approx(
        skm.average_precision_score(labels, scores), abs=1e-12)


def test_average_precision_without_a_positive_is_nan():
    assert np.isnan(average_precision([0.2, 0.4], [0, 0]))
    assert average_precision([0.2, 0.4], [0, 1]) == 1.0


@pytest.mark.parametrize("case", sorted(BINARY_CASES))
def test_roc_curve_is_sklearns(case):
    scores, labels = BINARY_CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one class only: sklearn warns, its rates are NaN
        theirs = skm.roc_curve(labels, scores, drop_intermediate=False)
    for mine, reference in zip(roc_curve(scores, labels), theirs, strict=True):
        np.testing.assert_allclose(mine, reference, rtol=0, atol=1e-15)


@pytest.mark.parametrize("case", TWO_CLASS)
def test_roc_auc_is_sklearns(case):
    scores, labels = BINARY_CASES[case]
    assert roc_auc(scores, labels) == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)


def test_roc_auc_counts_a_tie_as_half_and_is_nan_with_one_class():
    assert roc_auc([0.5, 0.5], [0, 1]) == 0.5
    assert roc_auc([0.2, 0.5, 0.5], [0, 0, 1]) == 0.75
    assert np.isnan(roc_auc([0.2, 0.5], [1, 1]))
    assert np.isnan(roc_auc([0.2, 0.5], [0, 0]))
    assert np.isnan(roc_auc([0.2], [1]))


def multilabel_case(seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(50, 6) rounded sigmoid scores; class 2 has no positive, class 4 only positives."""
    rng = np.random.default_rng(seed)
    targets = (rng.random((50, 6)) < 0.3).astype(np.int64)
    targets[:, 2], targets[:, 4] = 0, 1
    targets[0, 0] = 1
    logits = rng.normal(size=(50, 6)) + 1.5 * targets
    return np.round(1 / (1 + np.exp(-logits)), 1), targets


def test_per_class_average_precision_is_sklearns_with_nan_for_an_absent_class():
    scores, targets = multilabel_case()
    per_class = per_class_average_precision(scores, targets)
    kept = [0, 1, 3, 4, 5]
    assert per_class.shape == (6,) and np.isnan(per_class[2])
    np.testing.assert_allclose(per_class[kept], skm.average_precision_score(
        targets[:, kept], scores[:, kept], average=None), rtol=0, atol=1e-12)
    assert per_class[4] == 1.0  # a class of only positives


def test_mean_average_precision_drops_the_classes_without_a_positive():
    scores, targets = multilabel_case()
    kept = [0, 1, 3, 4, 5]
    reference = skm.average_precision_score(targets[:, kept], scores[:, kept], average="macro")
    found = mean_average_precision(scores, targets)
    assert found == pytest.approx(reference, abs=1e-12)
    assert found != pytest.approx(reference * 5 / 6)  # the absent class is not counted as 0
    assert np.isnan(mean_average_precision(scores, np.zeros_like(targets)))


def test_average_precision_of_one_sample():
    assert per_class_average_precision([[0.4, 0.9]], [[1, 0]]).tolist()[0] == 1.0
    assert mean_average_precision([[0.4, 0.9]], [[1, 0]]) == 1.0


def test_f1_scores_are_sklearns_over_all_classes():
    scores, targets = multilabel_case()
    thresholds = np.array([0.5, 0.3, 0.99, 0.7, 1.5, 0.2])  # class 4 never predicted
    predicted = (scores >= thresholds).astype(np.int64)
    assert not predicted[:, 2].any() and not targets[:, 2].any()  # an empty class counts 0
    found = f1_scores(scores, targets, thresholds)
    assert set(found) == {"f1_micro", "f1_macro", "precision_micro", "recall_micro"}
    expected = {
        "f1_micro": skm.f1_score(targets, predicted, average="micro", zero_division=0),
        "f1_macro": skm.f1_score(targets, predicted, average="macro", zero_division=0),
        "precision_micro": skm.precision_score(targets, predicted, average="micro",
                                               zero_division=0),
        "recall_micro": skm.recall_score(targets, predicted, average="micro", zero_division=0),
    }
    for name, value in expected.items():
        assert found[name] == pytest.approx(value, abs=1e-12), name


def test_f1_scores_predict_at_the_threshold_itself():
    found = f1_scores([[0.5, 0.25], [0.125, 0.75]], [[1, 0], [0, 1]], np.float32([0.5, 0.75]))
    assert found == {"f1_micro": 1.0, "f1_macro": 1.0, "precision_micro": 1.0,
                     "recall_micro": 1.0}
    nothing = f1_scores([[0.5, 0.2]], [[1, 0]], [0.9, 0.9])
    assert nothing["precision_micro"] == 0.0 and nothing["f1_macro"] == 0.0


@pytest.mark.parametrize("case", TWO_CLASS)
def test_binary_detection_metrics_are_sklearns(case):
    scores, labels = BINARY_CASES[case]
    threshold = float(np.median(scores))
    predicted = (scores >= threshold).astype(np.int64)
    found = binary_detection_metrics(scores, labels, threshold)
    assert found["precision"] == pytest.approx(skm.precision_score(labels, predicted,
                                                                   zero_division=0))
    assert found["recall"] == pytest.approx(skm.recall_score(labels, predicted))
    assert found["f1"] == pytest.approx(skm.f1_score(labels, predicted, zero_division=0))
    assert found["roc_auc"] == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)
    assert found["pr_auc"] == pytest.approx(skm.average_precision_score(labels, scores),
                                            abs=1e-12)
    assert (found["threshold"], found["positives"], found["negatives"]) == (
        threshold, int(labels.sum()), int((1 - labels).sum()))


def test_binary_detection_metrics_with_nothing_predicted_or_one_class():
    found = binary_detection_metrics([0.1, 0.4, 0.3], [0, 1, 0], 0.9)
    assert (found["precision"], found["recall"], found["f1"]) == (0.0, 0.0, 0.0)
    assert found["roc_auc"] == 1.0
    lonely = binary_detection_metrics([0.1, 0.4], [0, 0], 0.2)
    assert np.isnan(lonely["roc_auc"]) and np.isnan(lonely["pr_auc"])
    assert (lonely["positives"], lonely["negatives"], lonely["precision"]) == (0, 2, 0.0)


@pytest.mark.parametrize("call, message", [
    (lambda: average_precision([0.1, 0.2], [1]), "shape"),
    (lambda: average_precision([0.1, np.nan], [1, 0]), "finite"),
    (lambda: roc_auc([0.1, np.inf], [1, 0]), "finite"),
    (lambda: roc_auc([0.1, 0.2], [1, 2]), "0/1"),
    (lambda: roc_auc([], []), "empty"),
    (lambda: roc_curve([[0.1, 0.2]], [[1, 0]]), "1-D"),
    (lambda: mean_average_precision([0.1, 0.2], [1, 0]), "2-D"),
    (lambda: mean_average_precision([[0.1, 0.2]], [[1, 0, 1]]), "shape"),
    (lambda: f1_scores([[0.1, 0.2]], [[1, 0]], [0.5]), "thresholds"),
    (lambda: f1_scores([[0.1, 0.2]], [[1, 0.5]], [0.5, 0.5]), "0/1"),
    (lambda: binary_detection_metrics([0.1], [1], float("nan")), "threshold"),
])
def test_bad_inputs_say_what_is_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# -- thresholds ---------------------------------------------------------------------------


def brute_force(scores: np.ndarray, labels: np.ndarray) -> dict[float, tuple[float, ...]]:
    """Each distinct score -> (precision, recall, F1) of ``scores >= it``."""
    table = {}
    for t in np.unique(scores).tolist():
        predicted = scores >= t
        tp = float(labels[predicted].sum())
        fp, fn = float(predicted.sum()) - tp, float(labels.sum()) - tp
        table[t] = (tp / (tp + fp), tp / (tp + fn), 2 * tp / (2 * tp + fp + fn))
    return table


@pytest.mark.parametrize("case", TWO_CLASS)
def test_f1_rule_takes_the_highest_threshold_of_the_best_f1(case):
    scores, labels = BINARY_CASES[case]
    table = brute_force(scores, labels)
    chosen = choose_threshold(scores, labels, "f1")
    best = max(row[2] for row in table.values())
    assert table[chosen][2] == best
    assert all(row[2] < best for t, row in table.items() if t > chosen)


def test_f1_rule_breaks_a_tie_by_the_highest_threshold():
    scores, labels = BINARY_CASES["f1_tie"]
    assert choose_threshold(scores, labels, "f1") == 0.875


@pytest.mark.parametrize("case", TWO_CLASS)
@pytest.mark.parametrize("target", [0.5, 0.8, 0.9, 1.0])
def test_precision_rule_takes_the_lowest_threshold_reaching_the_target(case, target):
    scores, labels = BINARY_CASES[case]
    table = brute_force(scores, labels)
    chosen = choose_threshold(scores, labels, f"precision@{target}")
    if any(row[0] >= target for row in table.values()):
        assert table[chosen][0] >= target
        assert all(row[0] < target for t, row in table.items() if t < chosen)
    else:
        best = max(row[0] for row in table.values())
        assert table[chosen][0] == best
        assert all(row[0] < best for t, row in table.items() if t < chosen)


@pytest.mark.parametrize("case", TWO_CLASS)
@pytest.mark.parametrize("target", [0.3, 0.5, 0.95, 1.0])
def test_recall_rule_takes_the_highest_threshold_reaching_the_target(case, target):
    scores, labels = BINARY_CASES[case]
    table = brute_force(scores, labels)
    chosen = choose_threshold(scores, labels, f"recall@{target}")
    assert table[chosen][1] >= target
    assert all(row[1] < target for t, row in table.items() if t > chosen)


def test_an_unreachable_precision_takes_the_lowest_best_precision():
    scores, labels = np.array([0.875, 0.75, 0.625, 0.5]), np.array([0, 1, 0, 1])
    # precision 0 at 0.875, 1/2 at 0.75, 1/3 at 0.625, 1/2 at 0.5
    assert choose_threshold(scores, labels, "precision@0.9") == 0.5
    later = np.array([0, 0, 1, 1])  # precision 0, 0, 1/3, 1/2
    choice = threshold_choice(np.stack([scores] * 3, 1), np.stack([labels, later, 1 - labels], 1),
                              "precision@0.9")
    assert choice.unreached == [0, 1] and choice.kept_fixed == []
    assert choice.thresholds.tolist() == [0.5, 0.5, 0.875]
    reached = threshold_choice(scores[:, None], labels[:, None], "precision@0.5")
    assert reached.unreached == [] and reached.thresholds.tolist() == [0.5]


def test_classes_without_a_positive_or_negative_keep_the_fixed_threshold():
    scores = np.array([[0.25, 0.375, 0.5], [0.625, 0.75, 0.875], [0.125, 0.0625, 0.5625]])
    targets = np.array([[0, 1, 0], [0, 1, 1], [0, 1, 0]])  # class 0 none, class 1 all positive
    for rule, kept in [("f1", [0]), ("recall@0.9", [0]), ("precision@0.9", [0, 1])]:
        choice = threshold_choice(scores, targets, rule, fixed=0.25)
        assert choice.kept_fixed == kept, rule
        assert all(choice.thresholds[k] == np.float32(0.25) for k in kept)
        assert choice.thresholds[2] == 0.875
    assert choose_threshold(scores[:, 1], targets[:, 1], "recall@1") == 0.0625
    assert choose_threshold(scores[:, 0], targets[:, 0], "f1", fixed=0.4) == 0.4


def test_the_fixed_rule_ignores_the_scores():
    scores, targets = multilabel_case()
    thresholds = choose_thresholds(scores, targets, "fixed", fixed=0.3)
    assert thresholds.dtype == np.float32 and thresholds.tolist() == [np.float32(0.3)] * 6
    assert choose_threshold(scores[:, 0], targets[:, 0], ThresholdRule("fixed"), 0.7) == 0.7


def test_float32_thresholds_keep_the_chosen_scores_predicted():
    scores = np.array([[0.1], [0.2], [0.3], [0.7]])  # float64 values above their float32
    targets = np.array([[1], [0], [1], [1]])
    exact = choose_threshold(scores[:, 0], targets[:, 0], "recall@1.0")
    assert exact == 0.1 and float(np.float32(0.1)) > 0.1
    thresholds = choose_thresholds(scores, targets, "recall@1.0")
    assert thresholds.dtype == np.float32
    np.testing.assert_array_equal(scores >= thresholds, scores >= exact)


def test_multilabel_thresholds_are_those_of_each_column():
    scores, targets = multilabel_case()
    for rule in ("f1", "precision@0.8", "recall@0.9"):
        thresholds = choose_thresholds(scores, targets, rule)
        for k in (0, 1, 3, 5):
            exact = choose_threshold(scores[:, k], targets[:, k], rule)
            assert float(thresholds[k]) <= exact < float(np.nextafter(thresholds[k],
                                                                      np.float32(2)))
            np.testing.assert_array_equal(scores[:, k] >= thresholds[k], scores[:, k] >= exact)


@pytest.mark.parametrize("text, kind, target", [
    ("f1", "f1", None), ("fixed", "fixed", None), ("precision@0.9", "precision", 0.9),
    ("recall@0.95", "recall", 0.95), ("recall@1", "recall", 1.0),
    ("precision@.5", "precision", 0.5),
])
def test_threshold_rules_parse(text, kind, target):
    rule = parse_threshold_rule(text)
    assert (rule.kind, rule.target) == (kind, target)
    assert parse_threshold_rule(str(rule)) == rule


@pytest.mark.parametrize("text", ["F1", "precision", "precision@", "precision@0", "recall@1.5",
                                  "recall@-0.1", "recall@nan", "precision@0.9 ", "accuracy",
                                  "f1@0.5", "", None, 0.5, "precision@1e-1"])
def test_other_threshold_rules_are_refused(text):
    with pytest.raises(UserError, match=r"eval\.threshold.*precision@P"):
        parse_threshold_rule(text)
    with pytest.raises(UserError, match=r"eval\.threshold"):
        choose_thresholds([[0.1]], [[1]], text)


def test_threshold_rules_refuse_bad_targets_when_built_directly():
    for kind, target in [("precision", None), ("recall", 0.0), ("f1", 0.5), ("top", None)]:
        with pytest.raises(UserError, match=r"eval\.threshold"):
            ThresholdRule(kind, target)


# -- curves ---------------------------------------------------------------------------------


def test_curves_are_whole_png_files(tmp_path):
    import matplotlib.pyplot as plt

    scores, labels = BINARY_CASES["ties"]
    precision, recall, _ = precision_recall_curve(scores, labels)
    fpr, tpr, _ = roc_curve(scores, labels)
    pr, roc = tmp_path / "out" / "pr.png", tmp_path / "out" / "roc.png"
    figures = len(plt.get_fignums())
    plot_pr_curve(pr, precision, recall, operating_point=(0.6, 0.7), title="class a")
    plot_roc_curve(roc, fpr, tpr, operating_point=(0.2, 0.7), title="class a")
    plot_pr_curve(pr, precision, recall)  # replaced whole
    for path in (pr, roc):
        data = path.read_bytes()
        assert data[:8] == PNG_MAGIC and data[-8:-4] == b"IEND"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["pr.png", "roc.png"]
    assert len(plt.get_fignums()) == figures


def test_curves_refuse_arrays_that_disagree(tmp_path):
    with pytest.raises(ValueError, match="precision"):
        plot_pr_curve(tmp_path / "pr.png", [1.0, 0.5], [0.0])
    with pytest.raises(ValueError, match="fpr"):
        plot_roc_curve(tmp_path / "roc.png", [], [])
    assert list(tmp_path.iterdir()) == []
