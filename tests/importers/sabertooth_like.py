"""Small Flax models with the authors' (sabertooth) module names, tree layout and inference behaviour,
written for these tests: BertModel (learned positions, type embeddings, post-LN blocks, tanh pooler),
FastSelfAttention (wraps `mha`, ignores the padding mask), their attention modules with the conditions
under which they downsample, BertForSequenceClassification and BertForPreTraining (tied MLM output,
sentence-order head `classification`). RFA uses the first num_heads matrices of the bank instead of a
random draw per call: the fixed choice the importer documents."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

ACT = {"gelu": lambda x: jax.nn.gelu(x, approximate=False), "gelu_new": nn.gelu, "relu": nn.relu}


class KernelMHA(nn.Module):
    """Their Lin*/Perf/RNNs/RFA/Lin modules: query/key/value/out DenseGeneral, optional E_128/E_512, sigma."""

    attention_type: str
    num_heads: int
    head_dim: int
    k: int
    up_train: bool
    bank: Any = None

    def _downsamples(self, n: int, switch: bool) -> bool:
        if n not in (128, 512):
            return False
        return {"LinPerfMHA": self.up_train and switch, "LinRNNsMHA": (not self.up_train) or switch,
                "LinRFAMHA": True, "LinMHA": True}.get(self.attention_type, False)

    @nn.compact
    def __call__(self, x, switch=True):
        h, d = self.num_heads, self.head_dim
        low_rank = self.attention_type.startswith("Lin")
        mats = {}
        if low_rank:
            for which in ("key", "value"):
                for n in (128, 512):
                    mats[which, n] = self.param(f"{which}_downsample_mat_{n}", nn.initializers.normal(1 / self.k),
                                                (self.k, n))
        xk = xv = x
        if low_rank and self._downsamples(x.shape[1], switch):
            xk = jnp.einsum("ks,bsd->bkd", mats["key", x.shape[1]], x)
            xv = jnp.einsum("ks,bsd->bkd", mats["value", x.shape[1]], x)
        dense = lambda name: nn.DenseGeneral((h, d), name=name)  # noqa: E731
        q, k, v = dense("query")(x), dense("key")(xk), dense("value")(xv)
        kind = self.attention_type.removeprefix("Lin")
        if kind == "MHA":
            att = nn.softmax(jnp.einsum("bqnh,bknh->bnqk", q, k) / jnp.sqrt(d))
            out = jnp.einsum("bnqk,bknh->bqnh", att, v)
        else:
            if kind == "PerfMHA":
                fq, fk = nn.relu(q) + 1e-3, nn.relu(k) + 1e-3
            elif kind == "RNNsMHA":
                fq, fk = nn.elu(q) + 1, nn.elu(k) + 1
            else:
                sigma = self.param("sigma", nn.initializers.constant(1.0), (h, 1, d))
                w = sigma * jnp.asarray(self.bank[:h])  # tau = 1

                def phi(t):
                    t = t / (jnp.linalg.norm(t, axis=-1, keepdims=True) + 1e-3)
                    u = jnp.einsum("bshd,hkd->bshk", t, w)
                    return jnp.concatenate([jnp.sin(u), jnp.cos(u)], axis=-1) * 0.1

                fq, fk = phi(q), phi(k)
            s = jnp.einsum("bknm,bknh->bnmh", fk, v)
            t = jnp.einsum("bqnm,bnm->bqn", fq, fk.sum(axis=1))
            den = {"PerfMHA": t, "RNNsMHA": t + 1e-6}.get(kind)
            den = jax.lax.clamp(1.0, jnp.abs(t), 10e9) if den is None else den
            out = jnp.einsum("bqnm,bnmh->bqnh", fq, s) / den[..., None]
        return nn.DenseGeneral(x.shape[-1], axis=(-2, -1), name="out")(out)


class FastSelfAttention(nn.Module):
    cfg: dict

    @nn.compact
    def __call__(self, x, mask, switch=True):  # the mask is accepted and ignored, as in their code
        c = self.cfg
        return KernelMHA(c["attention_type"], c["heads"], c["hidden"] // c["heads"], c["k"], c["up_train"],
                         c.get("bank"), name="mha")(x, switch)


class SelfAttention(nn.SelfAttention):  # VanillaMHA: flax attention with the padding mask
    def __call__(self, x, mask, switch=True):
        return super().__call__(x, mask=mask[:, None, None, :].astype(bool), deterministic=True)


class FeedForward(nn.Module):
    cfg: dict

    @nn.compact
    def __call__(self, x):
        h = ACT[self.cfg["act"]](nn.Dense(self.cfg["ffn"], name="intermediate")(x))
        return nn.Dense(x.shape[-1], name="output")(h)


class TransformerBlock(nn.Module):
    cfg: dict

    @nn.compact
    def __call__(self, x, mask, switch=True):
        c = self.cfg
        if c["attention_type"] == "VanillaMHA":
            attn = SelfAttention(num_heads=c["heads"], qkv_features=c["hidden"], name="self_attention")
        else:
            attn = FastSelfAttention(c, name="self_attention")
        x = nn.LayerNorm(epsilon=1e-12, name="self_attention_layer_norm")(x + attn(x, mask, switch))
        return nn.LayerNorm(epsilon=1e-12, name="output_layer_norm")(x + FeedForward(c, name="feed_forward")(x))


class BertModel(nn.Module):
    cfg: dict

    def setup(self):
        c = self.cfg
        self.word_embeddings = nn.Embed(c["vocab"], c["hidden"])
        self.position_embeddings = nn.Embed(512, c["hidden"])
        self.type_embeddings = nn.Embed(2, c["hidden"])
        self.embeddings_layer_norm = nn.LayerNorm(epsilon=1e-12)
        self.encoder_layers = [TransformerBlock(c, name=f"encoder_layer_{i}") for i in range(c["layers"])]
        self.pooler = nn.Dense(c["hidden"])

    def __call__(self, ids, mask, types, switch=True):
        x = self.word_embeddings(ids) + self.position_embeddings.embedding[None, : ids.shape[1]]
        x = self.embeddings_layer_norm(x + self.type_embeddings(types))
        for block in self.encoder_layers:
            x = block(x, mask, switch)
        return x, jnp.tanh(self.pooler(x[:, 0]))


class OutputProjection(nn.Module):
    n_out: int | None = None

    @nn.compact
    def __call__(self, x, kernel=None):
        if kernel is None:
            kernel = self.param("kernel", nn.initializers.normal(0.02), (self.n_out, x.shape[-1]))
        return x @ kernel.T + self.param("bias", nn.initializers.zeros, (kernel.shape[0],))


class BertForSequenceClassification(nn.Module):
    cfg: dict

    @nn.compact
    def __call__(self, ids, mask, types, switch=True):
        _, pooled = BertModel(self.cfg, name="bert")(ids, mask, types, switch)
        return OutputProjection(n_out=self.cfg["classes"], name="classification")(pooled)


class BertForPreTraining(nn.Module):
    cfg: dict

    @nn.compact
    def __call__(self, ids, mask, types, switch=True):
        bert = BertModel(self.cfg, name="bert")
        seq, pooled = bert(ids, mask, types, switch)
        h = ACT[self.cfg["act"]](nn.Dense(self.cfg["hidden"], name="predictions_transform_dense")(seq))
        h = nn.LayerNorm(epsilon=1e-12, name="predictions_transform_layernorm")(h)
        table = bert.variables["params"]["word_embeddings"]["embedding"]
        mlm = OutputProjection(name="predictions_output")(h, table)
        return mlm, OutputProjection(n_out=2, name="classification")(pooled)


def randomize(params, seed: int = 0, std: float = 0.2):
    """Every leaf random (biases, LayerNorm scales, sigma included), so that no swapped tensor goes unnoticed."""
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(lambda a: jnp.asarray(rng.normal(0.0, std, a.shape), a.dtype), params)
