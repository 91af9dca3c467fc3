"""MatrixFactorization left at its defaults chooses weight decay, epochs and (with n_factors
unset) the width on a hold-out of its training ratings (embedrec._tuning): the choice follows
the data, lands near the best of a grid, is shown in params, kept by save / load, and an
interrupt or stop during it leaves the model as it was."""

import numpy as np
import pandas as pd
import pytest

import embedrec
from conftest import low_rank
from embedrec import _loading, _tuning


@pytest.fixture(scope="module")
def dense_clean():
    return low_rank(1500, 80, 50, noise=0.2, seed=1)


@pytest.fixture(scope="module")
def sparse_noisy():
    return low_rank(1500, 3000, 15, noise=1.2, seed=2)


def test_params_read_auto_before_and_the_choice_after_a_fit(dense_clean):
    model = embedrec.MatrixFactorization(n_factors=16)
    assert [model.params[k] for k in ("lr", "weight_decay", "epochs")] == ["auto"] * 3
    assert model.params["n_factors"] == 16
    model.fit(dense_clean)
    p = model.params
    assert p["lr"] == _tuning.START_LR and 0 < p["weight_decay"] < 10 and 1 <= p["epochs"] <= _tuning.MAX_EPOCHS
    assert len(model.history) == p["epochs"]
    # Tried: at least three weight decays a factor 2 apart, the choice between the extremes.
    tried = model.tuning
    assert len(tried) >= 3 and tried["weight_decay"].min() <= p["weight_decay"] <= tried["weight_decay"].max()
    assert np.isfinite(tried["holdout_rmse"]).all()
    # The constructor arguments stay unset: a clone chooses again on its own data.
    assert model.get_params()["weight_decay"] is None
    assert "weight_decay" not in repr(model)


def test_the_choice_follows_the_data(dense_clean, sparse_noisy):
    chosen = {}
    for name, df in (("dense", dense_clean), ("noisy", sparse_noisy)):
        model = embedrec.MatrixFactorization(n_factors=16)
        model.fit(df)
        chosen[name] = model.params["weight_decay"]
    # Many ratings per item and little noise want a weaker penalty than few and noisy ones.
    assert chosen["dense"] < chosen["noisy"] / 2, chosen


def test_the_choice_is_within_one_percent_of_a_grid():
    df = low_rank(2000, 400, 40, noise=0.6, seed=5)
    train, test = embedrec.train_test_split(df, test_size=0.1, seed=0)

    def rmse(**params):
        model = embedrec.MatrixFactorization(n_factors=32, **params)
        model.fit(train)
        return embedrec.rmse(test["rating"], model.predict(test, unknown="mean"))
    grid = min(rmse(lr=lr, weight_decay=wd, epochs=60) for lr in (0.005, 0.01, 0.02) for wd in (0.02, 0.05, 0.1))
    assert rmse() <= 1.01 * grid


def test_any_setting_given_keeps_the_fixed_defaults(ratings):
    model = embedrec.MatrixFactorization(n_factors=4, epochs=3)
    model.fit(ratings)
    assert len(model.history) == 3 and model.tuning is None
    assert model.params["weight_decay"] == 0.08 and model.params["lr"] == 0.007
    adam = embedrec.MatrixFactorization(n_factors=4, optimizer="adam")
    assert adam.params["epochs"] == 10


def test_too_few_ratings_use_the_fixed_defaults():
    df = low_rank(40, 30, 10, noise=0.3)
    assert len(df) < _tuning.MIN_RATINGS
    model = embedrec.MatrixFactorization(n_factors=4)
    model.fit(df)
    assert model.tuning is None and model.params["epochs"] == 60 and len(model.history) == 60


def test_save_and_load_keep_the_choice_and_fold_in_uses_it(tmp_path, dense_clean):
    model = embedrec.MatrixFactorization(n_factors=8)
    model.fit(dense_clean)
    model.save(tmp_path / "m.embedrec")
    loaded = embedrec.load(tmp_path / "m.embedrec")
    assert loaded.params == model.params
    new = pd.DataFrame({"user": [-1, -1, -1, -2], "item": list(dense_clean["item"].iloc[:4]),
                        "rating": [5.0, 1.0, 4.0, 2.0]})
    model.fold_in(new)
    loaded.fold_in(new)
    np.testing.assert_allclose(model.predict(new), loaded.predict(new), rtol=1e-6)


def test_a_large_fit_searches_on_a_sample_of_users(monkeypatch, capsys, dense_clean):
    monkeypatch.setattr(_tuning, "FULL_SEARCH_RATINGS", len(dense_clean) // 4)
    model = embedrec.MatrixFactorization(n_factors=8)
    model.fit(dense_clean, verbose=True)
    out = capsys.readouterr().out
    assert "sample of the users" in out
    searched = int(out.split("sample of the users' ")[1].split()[0].replace(",", ""))
    assert 0.15 * len(dense_clean) < searched < 0.35 * len(dense_clean)
    assert model.tuning is not None and len(model.history) == model.params["epochs"]
    rmse = embedrec.rmse(dense_clean["rating"], model.predict(dense_clean))
    assert rmse < 0.8 * dense_clean["rating"].std()


def test_the_user_sample_takes_about_its_share():
    rows = np.arange(100_000, dtype=np.int32)
    share = _loading.sampled_users(rows, 0.3).mean()
    assert 0.29 < share < 0.31
    # The same rows are picked whatever slice they come in.
    np.testing.assert_array_equal(_loading.sampled_users(rows[5:9], 0.3), _loading.sampled_users(rows, 0.3)[5:9])


@pytest.mark.parametrize("how", ["stop", "interrupt"])
def test_a_stop_or_an_interrupt_during_the_search_leaves_the_model_as_it_was(monkeypatch, dense_clean, how):
    model = embedrec.MatrixFactorization(n_factors=8)
    first = dense_clean.iloc[: len(dense_clean) // 2]
    model.fit(first)
    before, chosen = model.predict(first.head(100)), model.params
    original = _tuning._run_trial

    def first_trial_then_stop(*args, **kwargs):
        trial = original(*args, **kwargs)
        if how == "stop":
            model.stop()  # the next candidate's first epoch is cancelled
            return trial
        raise KeyboardInterrupt
    monkeypatch.setattr(_tuning, "_run_trial", first_trial_then_stop)
    if how == "stop":
        history = model.fit(dense_clean)
    else:
        with pytest.raises(KeyboardInterrupt):
            model.fit(dense_clean)
        history = model.history
    # Nothing was trained: the model is the earlier fit, whole, and says so.
    if how == "stop":
        assert history.interrupted and len(history) == 0
    np.testing.assert_array_equal(model.predict(first.head(100)), before)
    assert model.params == chosen
    monkeypatch.setattr(_tuning, "_run_trial", original)
    model.fit(dense_clean)  # and a later fit runs normally
    assert not model.history.interrupted and len(model.history) == model.params["epochs"]


def test_an_unfitted_model_stays_unfitted_after_an_interrupted_search(monkeypatch, dense_clean):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(_tuning, "_run_trial", interrupted)
    model = embedrec.MatrixFactorization(n_factors=8)
    with pytest.raises(KeyboardInterrupt):
        model.fit(dense_clean)
    with pytest.raises(embedrec.NotFittedError):
        model.predict(dense_clean.head(3))


def test_a_chosen_width_survives_save_load_and_pickle(tmp_path, dense_clean):
    import pickle

    model = embedrec.MatrixFactorization(seed=1)
    model.fit(dense_clean)
    assert model.params["n_factors"] != "auto"
    model.save(tmp_path / "w.embedrec")
    for loaded in (embedrec.load(tmp_path / "w.embedrec"), pickle.loads(pickle.dumps(model))):
        assert loaded.params == model.params
        assert loaded.user_embeddings.shape == model.user_embeddings.shape
        np.testing.assert_array_equal(loaded.predict(dense_clean.head(50)), model.predict(dense_clean.head(50)))


def test_n_factors_left_unset_is_chosen_too(dense_clean):
    model = embedrec.MatrixFactorization()
    assert model.params["n_factors"] == "auto"
    model.fit(dense_clean)
    k = model.params["n_factors"]
    assert k in _tuning.WIDTHS and model.user_embeddings.shape[1] == k
    tried = model.tuning
    assert tried["n_factors"].iloc[0] == _tuning.WIDTHS[0] and k in set(tried["n_factors"])
    # The width with the best hold-out RMSE is the one kept.
    assert tried.loc[tried["holdout_rmse"].idxmin(), "n_factors"] == k
    # Fixed settings keep 100 factors.
    assert embedrec.MatrixFactorization(epochs=5).params["n_factors"] == 100


def test_deterministic_fits_with_a_search_repeat_exactly():
    df = low_rank(3000, 2000, 170, noise=0.5, seed=3)
    # Enough for two threads (200,000 ratings each) once the hold-out is set aside.
    assert len(df) - _tuning.held_out_count(len(df)) > 400_000

    def fitted():
        model = embedrec.MatrixFactorization(n_factors=8, deterministic=True, n_threads=2, seed=4)
        model.fit(df)
        return model
    a, b = fitted(), fitted()
    assert a.params == b.params
    np.testing.assert_array_equal(a.user_embeddings, b.user_embeddings)


def test_a_file_without_chosen_settings_loads_with_the_fixed_defaults(tmp_path, dense_clean):
    # Files written before settings were chosen record none: their fits used the fixed values.
    model = embedrec.MatrixFactorization(n_factors=8, epochs=3)
    model.fit(dense_clean)
    model.set_params(epochs=None)  # as such a file's parameters read
    model._fitted.spec.epochs = None
    model.save(tmp_path / "old.embedrec")
    loaded = embedrec.load(tmp_path / "old.embedrec")
    p = loaded.params
    assert (p["lr"], p["weight_decay"], p["epochs"], p["n_factors"]) == (0.007, 0.08, 60, 8)
    new = pd.DataFrame({"user": [-1, -1], "item": list(dense_clean["item"].iloc[:2]), "rating": [5.0, 1.0]})
    loaded.fold_in(new)  # uses the weight decay the file's fit trained with
    assert np.isfinite(loaded.predict(new)).all()
