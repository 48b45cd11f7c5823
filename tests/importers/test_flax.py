"""import-flax against checkpoints written by a small Flax model with sabertooth's parameter layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flurka_export.importers.flax import FlaxImportError, UnmappedParametersWarning, import_flax_checkpoint

flax = pytest.importorskip("flax", reason="the Flax importer tests build a Flax model: pip install 'flurka-export[flax]'")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from flax import linen as nn  # noqa: E402
from flax.serialization import to_bytes  # noqa: E402

D, H, K, V, N_POS, FFN, C = 32, 4, 16, 40, 512, 48, 5
HEAD = D // H
P = 6


def _normal(std):
    return nn.initializers.normal(stddev=std)


class SonicMHA(nn.Module):
    """Linformer downsampling (one E pair per supported length) + a kernel feature map, as sabertooth's SONIC MHAs."""

    kind: str
    random_matrices: np.ndarray | None = None

    @nn.compact
    def __call__(self, x):
        e = {}
        for which in ("key", "value"):
            for n in (128, 512):
                e[which, n] = self.param(f"{which}_downsample_mat_{n}", _normal(1.0 / K), (K, n))
        n = x.shape[1]
        xk = jnp.einsum("ks,bsd->bkd", e["key", n], x)
        xv = jnp.einsum("ks,bsd->bkd", e["value", n], x)
        dense = lambda name: nn.DenseGeneral((H, HEAD), bias_init=_normal(0.1), name=name)  # noqa: E731
        q, k, v = dense("query")(x), dense("key")(xk), dense("value")(xv)
        if self.kind == "relu":
            fq, fk = nn.relu(q) + 1e-3, nn.relu(k) + 1e-3
        elif self.kind == "elu":
            fq, fk = nn.elu(q) + 1, nn.elu(k) + 1
        else:
            sigma = self.param("sigma", lambda r, s: 1.0 + 0.3 * jax.random.normal(r, s), (H, 1, HEAD))
            w = sigma * jnp.asarray(self.random_matrices[:H])

            def phi(t):
                t = t / (jnp.linalg.norm(t, axis=-1, keepdims=True) + 1e-3)
                u = jnp.einsum("bshd,hkd->bshk", t, w)
                return jnp.concatenate([jnp.sin(u), jnp.cos(u)], axis=-1) * 0.1

            fq, fk = phi(q), phi(k)
        s = jnp.einsum("bknm,bknh->bnmh", fk, v)
        z = fk.sum(axis=1)
        num = jnp.einsum("bqnm,bnmh->bqnh", fq, s)
        t = jnp.einsum("bqnm,bnm->bqn", fq, z)
        den = {"relu": t, "elu": t + 1e-6}.get(self.kind)
        if den is None:
            den = jnp.clip(jnp.abs(t), 1.0, 1e10)
        out = num / den[..., None]
        return nn.DenseGeneral(D, axis=(-2, -1), bias_init=_normal(0.1), name="out")(out)


class FastSelfAttention(nn.Module):
    kind: str
    random_matrices: np.ndarray | None = None

    @nn.compact
    def __call__(self, x):
        return SonicMHA(self.kind, self.random_matrices, name="mha")(x)


class FeedForward(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Dense(FFN, bias_init=_normal(0.1), name="intermediate")(x)
        return nn.Dense(D, bias_init=_normal(0.1), name="output")(jax.nn.gelu(x, approximate=False))


def _ln(name):
    return nn.LayerNorm(epsilon=1e-12, scale_init=_normal(1.0), bias_init=_normal(0.1), name=name)


class Block(nn.Module):
    kind: str
    random_matrices: np.ndarray | None = None

    @nn.compact
    def __call__(self, x):
        x = _ln("self_attention_layer_norm")(x + FastSelfAttention(self.kind, self.random_matrices,
                                                                   name="self_attention")(x))
        return _ln("output_layer_norm")(x + FeedForward(name="feed_forward")(x))


class Bert(nn.Module):
    kind: str
    layers: int = 2
    random_matrices: np.ndarray | None = None

    @nn.compact
    def __call__(self, ids):
        n = ids.shape[1]
        x = nn.Embed(V, D, name="word_embeddings")(ids)
        x = x + nn.Embed(N_POS, D, name="position_embeddings").embedding[None, :n]
        x = x + nn.Embed(2, D, name="type_embeddings")(jnp.zeros_like(ids))
        x = _ln("embeddings_layer_norm")(x)
        for i in range(self.layers):
            x = Block(self.kind, self.random_matrices, name=f"encoder_layer_{i}")(x)
        return jnp.tanh(nn.Dense(D, name="pooler")(x[:, 0]))


class Classifier(nn.Module):
    kind: str
    random_matrices: np.ndarray | None = None

    @nn.compact
    def __call__(self, ids):
        pooled = Bert(self.kind, random_matrices=self.random_matrices, name="bert")(ids)
        return _OutputProjection(C, name="classification")(pooled)


class _OutputProjection(nn.Module):
    n_out: int

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", _normal(0.2), (self.n_out, x.shape[-1]))  # sabertooth stores (n_out, D)
        return x @ kernel.T + self.param("bias", _normal(0.1), (self.n_out,))


KINDS = {"relu": "flurka-relu", "elu": "flurka-elu", "rfa": "flurka-rfa"}


def _write(tmp_path, kind, n=128, wrap=None):
    rm = np.random.default_rng(3).standard_normal((2 * H, P, HEAD)).astype(np.float32)
    model = Classifier(kind, rm if kind == "rfa" else None)
    ids = jax.random.randint(jax.random.PRNGKey(1), (2, n), 0, V)
    params = model.init(jax.random.PRNGKey(0), ids)["params"]
    path = tmp_path / f"{kind}.msgpack"
    path.write_bytes(to_bytes(wrap(params) if wrap else params))
    np.save(tmp_path / f"{HEAD}_{P}.npy", rm)
    return model, params, ids, path, tmp_path / f"{HEAD}_{P}.npy"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_attention_and_logits_match_flax(tmp_path, kind):
    model, params, ids, path, npy = _write(tmp_path, kind)
    ours, report = import_flax_checkpoint(path, tmp_path / "ckpt", attention=None if kind == "rfa" else KINDS[kind],
                                          seq_len=128, random_matrices=npy if kind == "rfa" else None)
    assert report.config.attention == KINDS[kind]
    assert report.config.max_seq_len == 128 and report.config.low_rank == K and report.unmapped == []
    # One attention layer on the same hidden states: within 1e-5.
    x = np.random.default_rng(0).standard_normal((2, 128, D)).astype(np.float32)
    mha = SonicMHA(kind, np.random.default_rng(3).standard_normal((2 * H, P, HEAD)).astype(np.float32)
                   if kind == "rfa" else None)
    ref = np.asarray(mha.apply({"params": params["bert"]["encoder_layer_1"]["self_attention"]["mha"]}, x))
    with torch.no_grad():
        got = ours.encoder.layers[1].attention(torch.from_numpy(x)).numpy()
    assert np.abs(got - ref).max() < 1e-5
    # The whole classifier (embeddings with folded type embeddings, post-norm blocks, pooler, head).
    logits_ref = np.asarray(model.apply({"params": params}, ids))
    with torch.no_grad():
        logits = ours(torch.from_numpy(np.array(ids)).long(), torch.ones(2, 128, dtype=torch.long)).numpy()
    assert np.abs(logits - logits_ref).max() < 1e-4


def test_train_state_wrapper_and_512_default(tmp_path):
    _, _, _, path, _ = _write(tmp_path, "elu", n=512, wrap=lambda p: {"step": 3, "params": p})
    _, report = import_flax_checkpoint(path, attention="flurka-elu")
    assert report.config.max_seq_len == 512
    assert any("N=[128]" in n for n in report.notes)


def test_ambiguous_attention_and_unmapped_are_named(tmp_path):
    _, params, _, _, _ = _write(tmp_path, "relu")
    with pytest.raises(FlaxImportError, match="--attention"):
        path = tmp_path / "relu.msgpack"
        import_flax_checkpoint(path)
    extra = flax.core.unfreeze(params) if hasattr(flax.core, "unfreeze") else dict(params)
    extra["bert"]["encoder_layer_0"]["self_attention"]["mha"]["mystery"] = np.ones(3, np.float32)
    bad = tmp_path / "extra.msgpack"
    bad.write_bytes(to_bytes(extra))
    with pytest.raises(FlaxImportError, match="encoder_layer_0/self_attention/mha/mystery"):
        import_flax_checkpoint(bad, attention="flurka-relu")
    with pytest.warns(UnmappedParametersWarning, match="mystery"):
        _, report = import_flax_checkpoint(bad, attention="flurka-relu", allow_unmapped=True)
    assert report.unmapped == ["bert/encoder_layer_0/self_attention/mha/mystery"]


def test_cli_import_flax(tmp_path, capsys):
    from flurka_export.cli import main
    from flurka_export.models import load_pretrained

    _, _, _, path, npy = _write(tmp_path, "rfa")
    rc = main(["import-flax", str(path), "-o", str(tmp_path / "ck"), "--seq-len", "128", "--random-matrices", str(npy)])
    assert rc == 0
    assert "flurka-rfa" in capsys.readouterr().out
    assert load_pretrained(tmp_path / "ck").config.num_features == P
    assert main(["import-flax", str(tmp_path / "nope.msgpack"), "-o", str(tmp_path / "x")]) == 1
