"""Model families: BERT-style text encoder (classification, masked-LM and bare-encoder heads) and a ViT
classifier. Layer names follow no outside library; the importers map Hugging Face and Flax names onto them."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .activations import activation
from .attention import FlurkaSelfAttention, check_seq_len
from .config import FlurkaConfig


class EncoderLayer(nn.Module):
    def __init__(self, config: FlurkaConfig, layer_idx: int) -> None:
        super().__init__()
        d = config.hidden_size
        self.pre_norm = config.uses_pre_norm
        self.mask_keys = config.mask_keys_in_attention
        self.attention = FlurkaSelfAttention(config, layer_idx)
        self.norm1 = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.ffn = nn.Sequential(nn.Linear(d, config.ffn_size), activation(config.hidden_act),
                                 nn.Linear(config.ffn_size, d))
        self.norm2 = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        # mask_keys_in_attention=False reproduces models trained with an attention that never saw the mask.
        mask = mask if self.mask_keys else None
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
        self.position_offset = config.position_offset
        self.word_embeddings = nn.Embedding(config.vocab_size, d)
        rows = config.max_seq_len + config.position_offset
        self.position_embeddings = nn.Parameter(torch.randn(rows, d) * 0.02)
        if config.type_vocab_size:
            self.token_type_embeddings = nn.Embedding(config.type_vocab_size, d)
        self.norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.drop = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(EncoderLayer(config, i) for i in range(config.num_layers))
        # A pre-LN stack ends with a LayerNorm (post-LN blocks already end with one).
        self.final_norm = nn.LayerNorm(d, eps=config.layer_norm_eps) if config.uses_pre_norm else None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        n = input_ids.shape[1]
        check_seq_len(n, self.max_seq_len)
        x = self.word_embeddings(input_ids) + self.position_embeddings[self.position_offset:self.position_offset + n]
        if hasattr(self, "token_type_embeddings"):
            # No token_type_ids means segment 0 everywhere (single-sentence input), as in BERT.
            x = x + (self.token_type_embeddings(token_type_ids) if token_type_ids is not None
                     else self.token_type_embeddings.weight[0])
        x = self.drop(self.norm(x))
        for layer in self.layers:
            x = layer(x, attention_mask)
        return x if self.final_norm is None else self.final_norm(x)


class FlurkaForSequenceClassification(nn.Module):
    def __init__(self, config: FlurkaConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = TextEncoder(config)
        d = config.hidden_size
        self.pooler = nn.Sequential(nn.Linear(d, d), nn.Tanh()) if config.pooler else nn.Identity()
        self.classifier = nn.Linear(d, config.num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        h = self.encoder(input_ids, attention_mask, token_type_ids)
        return self.classifier(self.pooler(h[:, 0]))


class FlurkaForMaskedLM(nn.Module):
    def __init__(self, config: FlurkaConfig) -> None:
        super().__init__()
        self.config = config
        d = config.hidden_size
        self.encoder = TextEncoder(config)
        if config.mlm_transform:
            act = activation(config.mlm_act or config.hidden_act)
            self.transform = nn.Sequential(nn.Linear(d, d), act, nn.LayerNorm(d, eps=config.layer_norm_eps))
        else:
            self.transform = nn.Identity()
        if config.tie_word_embeddings:
            # One matrix for the input embedding and the output projection: stored once in the checkpoint.
            self.decoder_bias = nn.Parameter(torch.zeros(config.vocab_size))
        else:
            self.decoder = nn.Linear(d, config.vocab_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        h = self.transform(self.encoder(input_ids, attention_mask, token_type_ids))
        if self.config.tie_word_embeddings:
            return F.linear(h, self.encoder.word_embeddings.weight, self.decoder_bias)
        return self.decoder(h)


class FlurkaEncoder(nn.Module):
    """The bare text encoder: returns the last hidden state [B, N, D] (ONNX output `last_hidden_state`)."""

    def __init__(self, config: FlurkaConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = TextEncoder(config)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        return self.encoder(input_ids, attention_mask, token_type_ids)


class FlurkaViT(nn.Module):
    def __init__(self, config: FlurkaConfig) -> None:
        super().__init__()
        self.config = config
        d = config.hidden_size
        self.patch_embed = nn.Conv2d(config.num_channels, d, config.patch_size, stride=config.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.position_embeddings = nn.Parameter(torch.randn(1, config.num_patches + 1, d) * 0.02)
        self.layers = nn.ModuleList(EncoderLayer(config, i) for i in range(config.num_layers))
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


def build_model(config: FlurkaConfig) -> nn.Module:
    """A fresh model of config.task with config.attention in every layer (eval mode); the family's spec
    (models/specs/) says which class."""
    config.validate()
    return config.spec.build(config).eval()
