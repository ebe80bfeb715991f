"""Step 1's solver (engine.linear.solve_softmax_head): the strength chosen by validation loss
(weak regularization winning where the data are many and clean, strong where they are few
and noisy), cross-validation when the validation photos are too few, and the head's
probabilities as a softmax layer computes them."""
from __future__ import annotations

import numpy as np

from engine.linear import STRENGTHS, solve_softmax_head


def _blobs(rng, count: int, dims: int, informative: int, separation: float, flip: float,
           classes: int = 2):
    """Gaussian classes apart along ``informative`` dimensions; ``flip`` of labels wrong."""
    labels = rng.integers(0, classes, count)
    centers = rng.normal(0, 1, (classes, informative)) * separation
    features = rng.normal(0, 1, (count, dims))
    features[:, :informative] += centers[labels]
    noisy = rng.random(count) < flip
    labels[noisy] = rng.integers(0, classes, int(noisy.sum()))
    return features.astype(np.float32) * 3 + 5, labels   # not standardized: the solver does it


def test_many_clean_photos_choose_weak_regularization_few_noisy_ones_strong():
    rng = np.random.default_rng(0)
    x, y = _blobs(rng, 3000, 40, 40, separation=0.6, flip=0.0, classes=3)
    weak = solve_softmax_head(x[:2000], y[:2000], x[2000:], y[2000:], 3)
    x, y = _blobs(rng, 400, 600, 2, separation=1.0, flip=0.3)
    strong = solve_softmax_head(x[:40], y[:40], x[40:], y[40:], 2)

    assert weak.chosen_by == strong.chosen_by == "validation"
    assert weak.strength >= 0.3, weak
    assert strong.strength <= 0.01, strong
    for solved in (weak, strong):
        # The kept strength is the tried one with the lowest validation loss.
        assert solved.strengths == STRENGTHS[:len(solved.losses)]
        assert solved.losses[solved.strengths.index(solved.strength)] == min(solved.losses)


def test_the_kept_strength_beats_the_others_on_photos_it_never_saw():
    rng = np.random.default_rng(1)
    x, y = _blobs(rng, 4000, 300, 5, separation=0.8, flip=0.1, classes=4)
    solved = solve_softmax_head(x[:150], y[:150], x[150:400], y[150:400], 4)
    held = np.arange(400, 4000)

    def test_loss(strength):
        other = solve_softmax_head(x[:150], y[:150], x[150:400], y[150:400], 4,
                                   strengths=(strength,))
        picked = other.probabilities(x[held])[np.arange(len(held)), y[held]]
        return -np.log(picked).mean()

    kept = test_loss(solved.strength)
    assert kept <= min(test_loss(STRENGTHS[0]), test_loss(STRENGTHS[-1]))


def test_too_few_validation_photos_choose_by_cross_validation():
    rng = np.random.default_rng(2)
    x, y = _blobs(rng, 130, 20, 5, separation=1.0, flip=0.05)
    val = np.array([i for i in range(100, 130) if y[i] == 0][:6] + [i for i in range(100, 130)
                                                                   if y[i] == 1][:2])
    solved = solve_softmax_head(x[:100], y[:100], x[val], y[val], 2)
    assert solved.chosen_by == "cross-validation"
    assert len(solved.losses) >= 3 and np.isfinite(solved.losses).all()


def test_probabilities_are_the_regression_s_with_two_three_and_an_unseen_class():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    for classes in (2, 3):
        x, y = _blobs(rng, 600, 10, 10, separation=1.0, flip=0.0, classes=classes)
        solved = solve_softmax_head(x[:400], y[:400], x[400:], y[400:], classes)
        standard = (x - x[:400].mean(0)) / np.sqrt(x[:400].var(0) + 1e-3)
        reference = LogisticRegression(C=solved.strength, max_iter=5000, tol=1e-8).fit(
            standard[:400], y[:400])
        np.testing.assert_allclose(solved.probabilities(x[400:]),
                                   reference.predict_proba(standard[400:]), atol=1e-3)
    # Class 2 has no training photo: it gets no probability, the others keep theirs.
    x, y = _blobs(rng, 300, 10, 10, separation=1.0, flip=0.0)
    solved = solve_softmax_head(x[:200], y[:200], x[200:], y[200:], 3)
    probabilities = solved.probabilities(x[200:])
    assert probabilities.shape == (100, 3) and probabilities[:, 2].max() < 1e-9
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
