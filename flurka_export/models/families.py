"""Model families: BERT-style encoder (classification, masked-LM heads) and a ViT classifier."""

from __future__ import annotations

import torch
from torch import nn

from .attention import FlurkaSelfAttention, check_seq_len
from .config import FlurkaConfig


class EncoderLayer(nn.Module):
    def __init__(self, config: FlurkaConfig, layer_idx: int, pre_norm: bool) -> None:
        super().__init__()
        d = config.hidden_size
        self.pre_norm = pre_norm
        self.attention = FlurkaSelfAttention(config, layer_idx)
        self.norm1 = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.ffn = nn.Sequential(nn.Linear(d, config.ffn_size), nn.GELU(), nn.Linear(config.ffn_size, d))
        self.norm2 = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if self.pre_norm:  # ViT
            x = x + self.drop(self.attention(self.norm1(x), mask))
            return x + self.drop(self.ffn(self.norm2(x)))
        x = self.norm1(x + self.drop(self.attention(x, mask)))  # BERT (post-norm)
        return self.norm2(x + self.drop(self.ffn(x)))


class TextEncoder(nn.Module):
    def __init__(self, config: FlurkaConfig) -> None:
        super().__init__()
        d = config.hidden_size
        self.max_seq_len = config.max_seq_len
        self.word_embeddings = nn.Embedding(config.vocab_size, d)
        self.position_embeddings = nn.Parameter(torch.randn(config.max_seq_len, d) * 0.02)
        self.norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.drop = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(EncoderLayer(config, i, pre_norm=False) for i in range(config.num_layers))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        n = input_ids.shape[1]
        check_seq_len(n, self.max_seq_len)
        x = self.word_embeddings(input_ids) + self.position_embeddings[:n]
        x = self.drop(self.norm(x))
        for layer in self.layers:
            x = layer(x, attention_mask)
        return x


class FlurkaForSequenceClassification(nn.Module):
    def __init__(self, config: FlurkaConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = TextEncoder(config)
        self.pooler = nn.Sequential(nn.Linear(config.hidden_size, config.hidden_size), nn.Tanh())
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.encoder(input_ids, attention_mask)
        return self.classifier(self.pooler(h[:, 0]))


class FlurkaForMaskedLM(nn.Module):
    def __init__(self, config: FlurkaConfig) -> None:
        super().__init__()
        self.config = config
        d = config.hidden_size
        self.encoder = TextEncoder(config)
        self.transform = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d, eps=config.layer_norm_eps))
        self.decoder = nn.Linear(d, config.vocab_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(self.transform(self.encoder(input_ids, attention_mask)))


class FlurkaViT(nn.Module):
    def __init__(self, config: FlurkaConfig) -> None:
        super().__init__()
        self.config = config
        d = config.hidden_size
        self.patch_embed = nn.Conv2d(config.num_channels, d, config.patch_size, stride=config.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.position_embeddings = nn.Parameter(torch.randn(1, config.num_patches + 1, d) * 0.02)
        self.layers = nn.ModuleList(EncoderLayer(config, i, pre_norm=True) for i in range(config.num_layers))
        self.norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.head = nn.Linear(d, config.num_labels)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        c, s = self.config.num_channels, self.config.image_size
        if pixel_values.dim() != 4 or tuple(pixel_values.shape[1:]) != (c, s, s):
            raise ValueError(f"pixel_values must have shape [B, {c}, {s}, {s}], got {tuple(pixel_values.shape)}")
        x = self.patch_embed(pixel_values).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1).to(x.dtype), x], dim=1) + self.position_embeddings
        for layer in self.layers:
            x = layer(x, None)
        return self.head(self.norm(x)[:, 0])


FAMILIES: dict[str, type[nn.Module]] = {
    "classify": FlurkaForSequenceClassification,
    "mlm": FlurkaForMaskedLM,
    "image": FlurkaViT,
}


def build_model(config: FlurkaConfig) -> nn.Module:
    """A fresh model of config.task with config.attention in every layer (eval mode)."""
    config.validate()
    return FAMILIES[config.task](config).eval()
