"""Multi-task late-fusion network (PyTorch).

Towers: sentence embedding of the text (MiniLM, cached) plus a wide linear term on hashed word/char
n-grams (wide & deep: exact rare tokens such as obfuscations, which the encoder blurs), an MLP on the post's behavior features
(plus a has_behavior flag: at creation there is no behavior yet and the features are imputed as 0),
an MLP on the creator/user features. Concatenated into shared layers, then three heads:

- harmful (primary): binary cross-entropy, each example weighted by its class-balance weight times
  clip(log(1 + views), floor, cap) -- posts that reach many people matter more; the floor keeps
  posts with 0 views (log 1 = 0) in the loss;
- report rate: MSE on the post's observed reports / max(views, 1) (standardized by its training
  standard deviation so its scale is comparable to the other losses);
- harm types: four independent sigmoid heads (multi-label, not softmax).

Loss = alpha * harmful + beta * report rate + gamma * harm types.
"""

from __future__ import annotations

import copy
import logging
import math

import numpy as np
import pandas as pd

from training import text as text_encoder
from training.config import TrainConfig
from training.datasets import HARM_COLUMNS
from training.preprocess import balanced_weights, numeric_pipeline

log = logging.getLogger(__name__)


def view_weights(views, cap: float, floor: float) -> np.ndarray:
    """clip(log(1 + views), floor, cap); views < 0 or NaN count as 0 views."""
    v = np.nan_to_num(np.asarray(views, dtype=np.float64), nan=0.0)
    return np.clip(np.log1p(np.maximum(v, 0.0)), floor, cap)


def weighted_bce(logits, targets, weights):
    """sum_i w_i * BCE(logit_i, y_i) / sum_i w_i (a weighted mean)."""
    import torch.nn.functional as F

    per = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return (per * weights).sum() / weights.sum().clamp_min(1e-12)


def _torch_sparse(csr):
    """scipy CSR -> torch sparse COO (float32)."""
    import torch

    coo = csr.tocoo()
    idx = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    return torch.sparse_coo_tensor(
        idx, torch.from_numpy(coo.data.astype(np.float32)), coo.shape, check_invariants=False
    )


def stacked_wide(ngrams, y, w, groups, cfg: TrainConfig) -> dict:
    """The wide part as a logistic regression on the hashed n-grams (weights ``w``): its
    coefficients and intercept fitted on every row, and out-of-fold logits: the rows split into
    ``cfg.wide_stack_folds`` folds by ``groups`` (a post's scoring events stay together, seeded),
    each fold scored by the regression fitted on the other folds (0 where a fold's complement
    holds one class only)."""
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(y).astype(int)
    w = np.asarray(w, dtype=np.float64)

    def fit(rows):
        clf = LogisticRegression(
            C=cfg.wide_stack_C, solver="liblinear", max_iter=cfg.baseline_max_iter,
            random_state=cfg.seed,
        )  # fmt: skip
        return clf.fit(ngrams[rows], y[rows], sample_weight=w[rows])

    groups = np.asarray(groups)
    uniq = np.unique(groups)
    shuffled = np.random.default_rng([cfg.seed, 41]).permutation(uniq)
    fold_of = pd.Series(np.arange(len(uniq)) % cfg.wide_stack_folds, index=shuffled)
    fold = fold_of.reindex(groups).to_numpy()
    oof = np.zeros(len(y))
    for f in range(cfg.wide_stack_folds):
        out = fold == f
        if out.any() and len(np.unique(y[~out])) == 2:
            oof[out] = fit(~out).decision_function(ngrams[out])
    full = fit(np.ones(len(y), dtype=bool))
    return {"oof": oof, "coef": full.coef_.ravel(), "intercept": float(full.intercept_[0])}


def stack_logit(stack: dict, ngrams) -> np.ndarray:
    """The full-data wide regression's logit for rows of hashed n-grams (float32)."""
    return (ngrams @ stack["coef"] + stack["intercept"]).astype(np.float32)


def _build_net(n_text: int, n_beh: int, n_cre: int, cfg: TrainConfig, n_wide: int = 0):
    import torch
    from torch import nn

    class LateFusionNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.text = nn.Sequential(
                nn.Linear(n_text, cfg.hidden_text), nn.ReLU(), nn.Dropout(cfg.dropout)
            )
            self.behavior = nn.Sequential(
                nn.Linear(n_beh, cfg.hidden_tabular),
                nn.ReLU(),
                nn.Linear(cfg.hidden_tabular, cfg.hidden_tabular),
                nn.ReLU(),
            )
            self.creator = nn.Sequential(
                nn.Linear(n_cre, cfg.hidden_tabular),
                nn.ReLU(),
                nn.Linear(cfg.hidden_tabular, cfg.hidden_tabular),
                nn.ReLU(),
            )
            width = cfg.hidden_text + 2 * cfg.hidden_tabular
            self.shared = nn.Sequential(
                nn.Linear(width, cfg.hidden_shared),
                nn.ReLU(),
                nn.Dropout(cfg.dropout),
                nn.Linear(cfg.hidden_shared, cfg.hidden_shared),
                nn.ReLU(),
            )
            self.harmful = nn.Linear(cfg.hidden_shared, 1)
            # wide text part (wide & deep): a linear term on hashed word/char n-grams into the
            # harmful logit, for the exact rare tokens (obfuscations) a sentence encoder blurs.
            self.wide = nn.Parameter(torch.zeros(n_wide, 1)) if n_wide else None
            # numeric linear term (cfg.wide_numeric): the scaled behavior + creator features
            # straight into the harmful logit, as the logistic baseline reads them
            self.numeric = None
            if getattr(cfg, "wide_numeric", False):
                self.numeric = nn.Linear(n_beh + n_cre, 1, bias=False)
                nn.init.zeros_(self.numeric.weight)
            self.report_rate = nn.Linear(cfg.hidden_shared, 1)
            self.harm_types = nn.Linear(cfg.hidden_shared, len(HARM_COLUMNS))

        def forward(self, emb, beh, cre, ngrams=None, offset=None):
            z = torch.cat([self.text(emb), self.behavior(beh), self.creator(cre)], dim=1)
            h = self.shared(z)
            logit = self.harmful(h).squeeze(1)
            if self.wide is not None and ngrams is not None:
                logit = logit + torch.sparse.mm(_torch_sparse(ngrams), self.wide).squeeze(1)
            if self.numeric is not None:
                logit = logit + self.numeric(torch.cat([beh, cre], dim=1)).squeeze(1)
            if offset is not None:  # training a stacked wide part: its out-of-fold logit
                logit = logit + offset
            return logit, self.report_rate(h).squeeze(1), self.harm_types(h)

    return LateFusionNet()


def blend_logits(net_logit, base, weight: float, frame: pd.DataFrame) -> np.ndarray:
    """(1 - weight) x the net's harmful logit + weight x the baseline's logit on ``frame``."""
    from training import baseline

    return mix_logits(net_logit, baseline.predict(base, frame), weight)


def mix_logits(net_logit, base_probability, weight: float) -> np.ndarray:
    """(1 - weight) x the net's harmful logit + weight x the logit of the baseline's probability
    (clipped to [1e-7, 1 - 1e-7]); what :func:`blend_logits` computes, from scores already at hand
    (``TrainConfig.net_blend = "auto"`` tries several weights on the same scores)."""
    p = np.clip(np.asarray(base_probability, dtype=np.float64), 1e-7, 1 - 1e-7)
    return (1.0 - weight) * np.asarray(net_logit, dtype=np.float64) + weight * np.log(p / (1 - p))


def sigmoid(logit) -> np.ndarray:
    """The harmful probability of a logit, as :meth:`MultiTaskModel.predict_all` computes it."""
    return 1.0 / (1.0 + np.exp(-np.asarray(logit, dtype=np.float64)))


class MultiTaskModel:
    """Preprocessing + network; ``predict_frame`` scores examples (probability of harmful)."""

    def __init__(self, cfg: TrainConfig, behavior_columns: list[str], creator_columns: list[str]):
        self.cfg = cfg
        self.behavior_columns = [*behavior_columns, "has_behavior"]
        self.creator_columns = [*creator_columns, "has_creator"]
        self.beh_pre = numeric_pipeline()
        self.cre_pre = numeric_pipeline()
        self.rate_scale = 1.0
        self.net = None
        self.history: list[dict] = []
        self.best_epoch: int | None = None

    # -- tensors ---------------------------------------------------------------------------
    def _inputs(self, frame: pd.DataFrame, embeddings: np.ndarray | None):
        import torch

        if embeddings is None:
            embeddings = text_encoder.encode(frame["text"].tolist(), self.cfg.encoder_batch_size)
        beh = self.beh_pre.transform(frame[self.behavior_columns]).astype(np.float32)
        cre = self.cre_pre.transform(frame[self.creator_columns]).astype(np.float32)
        ngrams = None
        if self.cfg.wide_ngrams:
            from training.baseline import _vectorizers

            word, char = _vectorizers(self.cfg, self.cfg.wide_ngrams)
            text = frame["text"].fillna("")
            ngrams = (word.transform(text) + char.transform(text)).tocsr()
        return (
            torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float32)),
            torch.from_numpy(beh),
            torch.from_numpy(cre),
            ngrams,
        )

    def _targets(self, frame: pd.DataFrame):
        import torch

        y = frame["is_harmful"].astype(np.float32).to_numpy()
        w = balanced_weights(y) * view_weights(
            frame["views_final"], self.cfg.view_weight_cap, self.cfg.view_weight_floor
        )
        rate = frame["report_rate"].fillna(0.0).to_numpy(np.float32) / self.rate_scale
        types = frame[list(HARM_COLUMNS)].astype(np.float32).to_numpy()
        return (
            torch.from_numpy(y),
            torch.from_numpy(w.astype(np.float32)),
            torch.from_numpy(rate.astype(np.float32)),
            torch.from_numpy(types),
        )

    def loss(self, outputs, targets):
        import torch.nn.functional as F

        logit, rate_pred, type_logits = outputs
        y, w, rate, types = targets
        primary = weighted_bce(logit, y, w)
        reports = F.mse_loss(rate_pred, rate)
        harm_types = F.binary_cross_entropy_with_logits(type_logits, types)
        total = self.cfg.alpha * primary + self.cfg.beta * reports + self.cfg.gamma * harm_types
        parts = {"primary": primary.item(), "reports": reports.item(), "types": harm_types.item()}
        return total, parts

    # -- training --------------------------------------------------------------------------
    def fit(
        self,
        train: pd.DataFrame,
        train_emb: np.ndarray,
        val: pd.DataFrame | None = None,
        val_emb: np.ndarray | None = None,
    ) -> MultiTaskModel:
        import torch

        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        self.beh_pre.fit(train[self.behavior_columns])
        self.cre_pre.fit(train[self.creator_columns])
        std = float(np.nanstd(train["report_rate"].to_numpy(dtype=np.float64)))
        self.rate_scale = std if std > 1e-9 else 1.0
        x = self._inputs(train, train_emb)
        t = self._targets(train)
        self.dims = (
            x[0].shape[1],
            x[1].shape[1],
            x[2].shape[1],
            0 if x[3] is None else x[3].shape[1],
        )
        self.net = _build_net(*self.dims[:3], cfg, *self.dims[3:])
        xv = tv = None
        if val is not None and len(val):
            xv, tv = self._inputs(val, val_emb), self._targets(val)
        stack = None
        if cfg.wide_stack and x[3] is not None:
            # the wide part is the n-gram logistic regression, fixed: the deep part learns what
            # it misses, trained on its out-of-fold logits (a logit it fitted itself would leave
            # no residual to learn); its full-data weights go into the net at the end
            posts = train["post_id"] if "post_id" in train else np.arange(len(train))
            stack = stacked_wide(x[3], t[0].numpy(), t[1].numpy(), posts, cfg)
            self.net.wide.requires_grad_(False)
            x = (*x[:3], None, torch.from_numpy(stack["oof"].astype(np.float32)))
            if xv is not None:
                xv = (*xv[:3], None, torch.from_numpy(stack_logit(stack, xv[3])))
        best_state = self._train_epochs(x, t, xv, tv, val)
        if best_state is not None:
            self.net.load_state_dict(best_state)
            log.info(
                "multitask: kept epoch %d (select_epoch=%s)", self.best_epoch, cfg.select_epoch
            )
        if stack is not None:
            with torch.no_grad():
                self.net.wide[:, 0] = torch.from_numpy(stack["coef"].astype(np.float32))
                self.net.harmful.bias += float(stack["intercept"])
        self.net.eval()
        return self

    def _train_epochs(self, x, t, xv, tv, val: pd.DataFrame | None):
        """The epochs; returns the kept epoch's weights (``cfg.select_epoch``), None without
        validation. ``x`` = (embeddings, behavior, creator, n-grams or None[, offset])."""
        import torch

        cfg = self.cfg
        linear = ("wide", "numeric.weight")
        named = list(self.net.named_parameters())
        wide = [p for n, p in named if n in linear and p.requires_grad]
        deep = [p for n, p in named if n not in linear]
        # the wide n-gram (and numeric) weights start at 0, the n-grams each see few examples: a
        # larger step size, no weight decay
        opt = torch.optim.AdamW(
            [{"params": deep}, {"params": wide, "lr": cfg.wide_lr, "weight_decay": 0.0}],
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
        )
        gen = torch.Generator().manual_seed(cfg.seed)
        n = len(t[0])
        best_state, best_val = None, math.inf
        for epoch in range(cfg.epochs):
            self.net.train()
            order = torch.randperm(n, generator=gen)
            total = 0.0
            for start in range(0, n, cfg.batch_size):
                idx = order[start : start + cfg.batch_size]
                rows = idx.numpy()
                ngrams = None if x[3] is None else x[3][rows]
                offset = x[4][idx] if len(x) > 4 else None
                out = self.net(x[0][idx], x[1][idx], x[2][idx], ngrams, offset)
                loss, _ = self.loss(out, tuple(tt[idx] for tt in t))
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            record = {"epoch": epoch + 1, "train_loss": total / max(n, 1)}
            if xv is not None:
                vloss, parts = self.evaluate_loss(xv, tv)
                record.update(val_loss=vloss, **{f"val_{k}": v for k, v in parts.items()})
                # Early stopping by selection: keep the epoch with the lowest validation loss of
                # the objective (cfg.select_epoch="val_loss") or the best validation PR-AUC at the
                # true prevalence (labels weighted by sampling_weight, "pr_auc").
                vscore = self._val_pr_auc(xv, val)
                record["val_pr_auc"] = vscore
                crit = vloss if cfg.select_epoch == "val_loss" else -vscore
                if crit < best_val:
                    best_val, best_state = crit, copy.deepcopy(self.net.state_dict())
                    self.best_epoch = epoch + 1
            self.history.append(record)
            log.info(
                "multitask epoch %d/%d: %s",
                epoch + 1,
                cfg.epochs,
                ", ".join(f"{k}={v:.4f}" for k, v in record.items() if k != "epoch"),
            )
        return best_state

    def _val_pr_auc(self, x, val: pd.DataFrame) -> float:
        import torch
        from sklearn.metrics import average_precision_score

        self.net.eval()
        with torch.no_grad():
            logit = self.net(*x)[0].numpy()
        y = val["is_harmful"].astype(int).to_numpy()
        if y.min() == y.max():
            return 0.0
        return float(
            average_precision_score(y, logit, sample_weight=val["sampling_weight"].to_numpy())
        )

    def evaluate_loss(self, x, t) -> tuple[float, dict]:
        import torch

        self.net.eval()
        with torch.no_grad():
            loss, parts = self.loss(self.net(*x), t)
        return float(loss), parts

    def blend_with(self, base, weight: float) -> MultiTaskModel:
        """Blend the harmful output with the fitted baseline ``base``: logit = (1 - weight) x the
        net's + weight x the baseline's (``TrainConfig.net_blend``; 0 = the net alone)."""
        if isinstance(weight, str) or not 0.0 <= weight <= 1.0:
            raise ValueError(f"net_blend={weight!r}: use a weight in [0, 1]")
        self.blend = (base, float(weight)) if weight > 0 else None
        return self

    # -- pickling: the network class is built lazily (torch is a heavy import), so pickle weights --
    def __getstate__(self):
        state = dict(self.__dict__)
        if state.get("net") is not None:
            state["net"] = {k: v.detach().clone() for k, v in state["net"].state_dict().items()}
        return state

    def __setstate__(self, state):
        weights = state.get("net")
        self.__dict__.update(state)
        if weights is not None:
            self.net = _build_net(*self.dims[:3], self.cfg, *self.dims[3:])
            self.net.load_state_dict(weights)
            self.net.eval()

    # -- inference -------------------------------------------------------------------------
    def predict_all(self, frame: pd.DataFrame, embeddings: np.ndarray | None = None) -> dict:
        """Harmful probability, predicted report rate and harm-type probabilities."""
        import torch

        self.net.eval()
        x = self._inputs(frame, embeddings)
        with torch.no_grad():
            logit, rate, types = self.net(*x)
        harmful_logit = logit.numpy().astype(np.float64)
        blend = getattr(self, "blend", None)  # models pickled before the blend have none
        if blend is not None:
            harmful_logit = blend_logits(harmful_logit, blend[0], blend[1], frame)
        return {
            "harmful": sigmoid(harmful_logit),
            "report_rate": (rate.numpy() * self.rate_scale).astype(np.float64),
            "harm_types": torch.sigmoid(types).numpy().astype(np.float64),
        }

    def predict(self, frame: pd.DataFrame, embeddings: np.ndarray | None = None) -> np.ndarray:
        return self.predict_all(frame, embeddings)["harmful"]

    def net_logit(self, frame: pd.DataFrame, embeddings: np.ndarray | None = None) -> np.ndarray:
        """The network's own harmful logit (no blend): with the baseline's probability,
        :func:`mix_logits` gives any blend's logit without running the network again."""
        import torch

        self.net.eval()
        with torch.no_grad():
            logit = self.net(*self._inputs(frame, embeddings))[0]
        return logit.numpy().astype(np.float64)
