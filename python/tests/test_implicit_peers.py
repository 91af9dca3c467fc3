"""ImplicitMF and BPR side by side with the `implicit` library on the same generated data and
split, at the same factors: NDCG@10 over the whole catalogue, both libraries' top-10 lists
scored by the same code. Runs where the `compare` extra is installed (the test command's
Spark environment)."""

import numpy as np
import pytest

import embedrec
from embedrec.evaluation import per_user_metrics, relevant_csr
from implicit_data import interactions

implicit_als = pytest.importorskip("implicit.als")
implicit_bpr = pytest.importorskip("implicit.bpr")
sparse = pytest.importorskip("scipy.sparse")


@pytest.fixture(scope="module")
def split():
    df = interactions(n_users=600, n_items=200, per_user=20, groups=5, noise=0.2, seed=11)[["user", "item"]]
    return embedrec.leave_k_out(df, k=4, seed=3)


def their_ndcg(theirs, model, train, test):
    state = model._fitted
    u, i = state.users.rows(train["user"], "user"), state.items.rows(train["item"], "item")
    matrix = sparse.csr_matrix((np.ones(len(u), dtype=np.float32), (u, i)), shape=(len(state.users), len(state.items)))
    theirs.fit(matrix, show_progress=False)
    users, indptr, wanted = relevant_csr(state.users.rows(test["user"], "user"), state.items.rows(test["item"], "item"))
    top, _ = theirs.recommend(users, matrix[users], N=10, filter_already_liked_items=True)
    return per_user_metrics(np.asarray(top), indptr, wanted, 10, len(state.items))["ndcg"].mean()


@pytest.mark.parametrize("kind", ["als", "bpr"])
def test_ndcg_at_least_the_implicit_librarys(split, kind):
    train, test = split
    if kind == "als":
        ours = embedrec.ImplicitMF(32, seed=0)
        theirs = implicit_als.AlternatingLeastSquares(factors=32, iterations=15, random_state=0, num_threads=1)
    else:
        ours = embedrec.BPR(32, seed=0)
        theirs = implicit_bpr.BayesianPersonalizedRanking(factors=32, iterations=100, random_state=0, num_threads=1)
    ours.fit(train)
    mine = embedrec.ranking_metrics(ours, test, k=10)["ndcg"]
    assert mine >= their_ndcg(theirs, ours, train, test) - 0.01
