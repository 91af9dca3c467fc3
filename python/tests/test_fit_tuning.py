"""The models trained on a fixed schedule (Adam MatrixFactorization, EmbeddingNN, NeuMF) left
without lr and weight_decay choose both on a hold-out of their training ratings
(embedrec._fit_tuning), each candidate a whole fit of the schedule: the walk crosses a flat
penalty and finds the minimum, the choice follows the data and beats the fixed values where
they flatten the model, shows in params, is kept by save / load, and a stop or an interrupt
during it leaves the model as it was."""

import math

import numpy as np
import pandas as pd
import pytest

import embedrec
from conftest import low_rank
from embedrec import _fit_tuning


@pytest.fixture(scope="module")
def dense():
    """Many ratings per item, little noise: the networks' fixed penalty (0.3) is far too strong."""
    return low_rank(1200, 60, 45, noise=0.25, seed=1, rank=4)


MODELS = {
    "adam": lambda **kw: embedrec.MatrixFactorization(8, optimizer="adam", **kw),
    "embedding-nn": lambda **kw: embedrec.EmbeddingNN(8, 8, layers=(16,), **kw),
    "neumf": lambda **kw: embedrec.NeuMF(8, (16, 8), **kw),
}


# ----- the walk, on score functions of known shape ------------------------------------------------
def bowl(lr_best, wd_best, plateau_above=None):
    """A score with its minimum at (lr_best, wd_best), flat (the model flattened) for weight
    decays above ``plateau_above``."""
    calls = []

    def score(lr, weight_decay):
        calls.append((lr, weight_decay))
        if plateau_above is not None and weight_decay > plateau_above:
            return 1.0, 0.0
        return 0.5 + 0.01 * (math.log(lr / lr_best) ** 2 + math.log(weight_decay / wd_best) ** 2), 0.0
    return score, calls


def test_the_walk_crosses_a_flat_penalty_and_finds_the_minimum():
    score, calls = bowl(0.01, 0.001, plateau_above=0.05)
    choice = _fit_tuning.choose(score, 0.003, 0.3)
    assert choice.lr == pytest.approx(0.009, rel=0.01)  # a factor 3 from 0.003
    assert choice.weight_decay == pytest.approx(0.00095, rel=0.01)  # 0.3 / sqrt(10) ** 5
    assert len(calls) == len(set(calls)) <= _fit_tuning.MAX_FITS  # no candidate fitted twice
    assert list(choice.trials.columns) == ["lr", "weight_decay", "holdout_rmse", "seconds", "on_all_ratings"]
    assert choice.trials["holdout_rmse"].min() == choice.rmse


def test_the_walk_goes_up_when_the_start_is_too_weak():
    score, _ = bowl(0.003, 3.0)
    choice = _fit_tuning.choose(score, 0.003, 0.3)
    assert choice.weight_decay > 0.3 and choice.lr == 0.003


def test_a_lower_penalty_that_overfits_at_the_start_rate_is_tried_at_a_higher_rate():
    calls = []

    def score(lr, weight_decay):
        """Flattened above weight decay 0.1; below it overfit at rates under 0.005, and a
        minimum at (0.009, 0.03) at higher rates."""
        calls.append((lr, weight_decay))
        if weight_decay > 0.1:
            return 1.0, 0.0
        if lr < 0.005:
            return 1.2, 0.0
        return 0.8 + 0.01 * (math.log(lr / 0.009) ** 2 + math.log(weight_decay / 0.03) ** 2), 0.0

    choice = _fit_tuning.choose(score, 0.003, 0.3)
    assert (choice.lr, choice.weight_decay) == (0.009, 0.03)
    assert choice.rmse == pytest.approx(0.8)
    assert len(calls) == len(set(calls)) <= _fit_tuning.MAX_FITS


def test_a_search_where_every_candidate_diverges_chooses_nothing():
    assert _fit_tuning.choose(lambda lr, wd: (math.inf, 0.0), 0.003, 0.3) is None


def test_the_hold_out_is_a_random_share_and_the_rest_trains():
    rng = np.random.default_rng(0)
    users = rng.integers(0, 5_000, 50_000).astype(np.int32)
    items = rng.integers(0, 300, 50_000).astype(np.int32)
    sample = (users, items, np.linspace(1, 5, 50_000, dtype=np.float32))
    train, held = _fit_tuning.split(sample, seed=3)
    assert len(train[0]) + len(held[0]) == 50_000
    # About the share asked for: less the pairs whose user would have nothing left to train on.
    assert 0.85 * _fit_tuning.held_out_count(50_000) < len(held[0]) <= _fit_tuning.held_out_count(50_000)
    assert set(held[0]) <= set(train[0]) and set(held[1]) <= set(train[1])
    assert 0.3 < np.mean(held[2] > 3) < 0.7  # from all over the copy, not its end
    pairs = set(zip(users.tolist(), items.tolist(), sample[2].tolist()))
    assert set(zip(*(a.tolist() for a in held))) <= pairs


# ----- the models ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_params_read_auto_before_and_the_choice_after_a_fit(kind, dense):
    model = MODELS[kind]()
    assert model.params["lr"] == "auto" and model.params["weight_decay"] == "auto"
    model.fit(dense)
    p = model.params
    tried = model.tuning
    assert len(tried) >= 3 and np.isfinite(tried["holdout_rmse"]).all()
    best = tried.loc[tried["holdout_rmse"].idxmin()]
    assert (p["lr"], p["weight_decay"]) == (best["lr"], best["weight_decay"])
    assert model.get_params()["lr"] is None and "weight_decay" not in repr(model)  # arguments stay unset
    assert len(model.history) == p["epochs"]


@pytest.mark.parametrize("kind", ["embedding-nn", "neumf"])
def test_the_choice_beats_a_penalty_that_flattens_the_network(kind, dense):
    train, test = embedrec.train_test_split(dense, test_size=0.1, seed=0)

    def rmse(model):
        model.fit(train)
        return embedrec.rmse(test["rating"], model.predict(test, unknown="mean"))
    fixed = MODELS[kind](lr=0.003, weight_decay=0.3)
    chosen = MODELS[kind]()
    fixed_rmse, chosen_rmse = rmse(fixed), rmse(chosen)
    assert chosen.params["weight_decay"] < 0.3
    assert chosen_rmse < 0.9 * fixed_rmse, (chosen_rmse, fixed_rmse)


def test_a_setting_given_or_loss_bce_keeps_the_fixed_values(dense):
    for model, lr, wd in ((embedrec.EmbeddingNN(8, 8, layers=(8,), lr=0.01, epochs=1), 0.01, 0.3),
                          (embedrec.NeuMF(8, (8, 4), weight_decay=0.1, epochs=1), 0.003, 0.1),
                          (embedrec.EmbeddingNN(8, 8, layers=(8,), combine="product", weight_decay=0.2, epochs=1),
                           0.003, 0.2),
                          (embedrec.MatrixFactorization(4, optimizer="adam", lr=0.01, epochs=1), 0.01, 0.05)):
        assert (model.params["lr"], model.params["weight_decay"]) == (lr, wd)
        model.fit(dense)
        assert model.tuning is None and len(model.history) == 1
    bce = embedrec.NeuMF(8, (8, 4), loss="bce", negatives=2, epochs=1)
    assert bce.params["lr"] == 0.003 and bce.params["weight_decay"] == 0.3
    bce.fit(dense[["user", "item"]])
    assert bce.tuning is None
    # The bare product network keeps its own fixed penalty where it does not search.
    assert embedrec.EmbeddingNN(combine="product")._fixed_params()["weight_decay"] == 0.1


def test_too_few_ratings_use_the_fixed_values():
    df = low_rank(40, 30, 10, noise=0.3, rank=4)
    assert len(df) < _fit_tuning.MIN_RATINGS
    model = embedrec.EmbeddingNN(4, 4, layers=(4,))
    model.fit(df)
    assert model.tuning is None and (model.params["lr"], model.params["weight_decay"]) == (0.003, 0.3)


def test_save_load_and_pickle_keep_the_choice(tmp_path, dense):
    import pickle

    for kind in ("adam", "neumf"):
        model = MODELS[kind]()
        model.fit(dense)
        model.save(tmp_path / f"{kind}.embedrec")
        for loaded in (embedrec.load(tmp_path / f"{kind}.embedrec"), pickle.loads(pickle.dumps(model))):
            assert loaded.params == model.params
            np.testing.assert_array_equal(loaded.predict(dense.head(50)), model.predict(dense.head(50)))
    # fold_in trains new users with the chosen rate and penalty.
    new = pd.DataFrame({"user": [-1, -1, -1], "item": list(dense["item"].iloc[:3]), "rating": [5.0, 1.0, 4.0]})
    model.fold_in(new)
    assert np.isfinite(model.predict(new)).all()


def test_a_large_fit_searches_on_a_sample_of_users(monkeypatch, capsys, dense):
    monkeypatch.setattr(embedrec.NeuMF, "_search_ratings", len(dense) // 4)
    model = MODELS["neumf"]()
    model.fit(dense, verbose=True)
    out = capsys.readouterr().out
    searched = int(out.split("sample of the users' ")[1].split()[0].replace(",", ""))
    assert 0.15 * len(dense) < searched < 0.35 * len(dense)
    assert "chosen: lr" in out and model.tuning is not None


def test_adam_checks_the_sample_choice_on_all_the_ratings(monkeypatch, capsys, dense):
    """Adam MF searching on a quarter of the users fits the sample's best and that pair scaled
    by sqrt(share) on all the ratings, and keeps the better of the two there."""
    monkeypatch.setattr(embedrec.MatrixFactorization, "_search_ratings", len(dense) // 4)
    model = MODELS["adam"](seed=0)
    model.fit(dense, verbose=True)
    out = capsys.readouterr().out
    assert "sample of the users'" in out and "checking 2 of them on all" in out
    trials = model.tuning
    checked = trials[trials["on_all_ratings"]]
    assert len(checked) == 2 and len(trials) > 2
    sample_best = trials[~trials["on_all_ratings"]].sort_values("holdout_rmse").iloc[0]
    first, scaled = checked.iloc[0], checked.iloc[1]
    assert (first["lr"], first["weight_decay"]) == (sample_best["lr"], sample_best["weight_decay"])
    factor = math.sqrt((len(dense) // 4) / len(dense))
    assert scaled["lr"] == pytest.approx(first["lr"] * factor)
    assert scaled["weight_decay"] == pytest.approx(first["weight_decay"] * factor)
    winner = checked.sort_values("holdout_rmse").iloc[0]
    assert (model.params["lr"], model.params["weight_decay"]) == (winner["lr"], winner["weight_decay"])
    # The networks take the sample's best as it is.
    monkeypatch.setattr(embedrec.NeuMF, "_search_ratings", len(dense) // 4)
    network = MODELS["neumf"]()
    network.fit(dense)
    assert not network.tuning["on_all_ratings"].any()


@pytest.mark.parametrize("how", ["stop", "interrupt"])
def test_a_stop_or_an_interrupt_during_the_search_leaves_the_model_as_it_was(monkeypatch, dense, how):
    model = MODELS["embedding-nn"](epochs=2)
    first = dense.iloc[: len(dense) // 2]
    model.fit(first)
    before, chosen = model.predict(first.head(100)), model.params
    original = _fit_tuning.choose

    def after_the_first_candidate(score, lr, weight_decay, report=None):
        def once(lr, weight_decay):
            result = score(lr, weight_decay)
            if how == "stop":
                model.stop()  # the next candidate's first epoch is cancelled
                return result
            raise KeyboardInterrupt
        return original(once, lr, weight_decay, report)
    monkeypatch.setattr(_fit_tuning, "choose", after_the_first_candidate)
    if how == "stop":
        history = model.fit(dense)
        assert history.interrupted and len(history) == 0
    else:
        with pytest.raises(KeyboardInterrupt):
            model.fit(dense)
    np.testing.assert_array_equal(model.predict(first.head(100)), before)
    assert model.params == chosen
    monkeypatch.setattr(_fit_tuning, "choose", original)
    model.fit(dense)  # and a later fit runs normally
    assert not model.history.interrupted and len(model.history) == 2


def test_fits_with_a_search_repeat_exactly(dense):
    a, b = MODELS["neumf"](seed=3), MODELS["neumf"](seed=3)
    a.fit(dense)
    b.fit(dense)
    assert a.params == b.params
    np.testing.assert_array_equal(a.user_embeddings, b.user_embeddings)
